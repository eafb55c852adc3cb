"""One version per bundle: a unique index on ``model_versions (name, bundle_id)``.

``register`` returns the existing version of a bundle; the index makes that
hold when two processes register the same bundle at once (the loser retries
and finds the winner's row).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tabpipe.errors import StoreError

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

INDEX = "uq_model_versions_name_bundle"


def upgrade() -> None:
    duplicates = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT name, bundle_id, COUNT(*) AS n FROM model_versions "
                "GROUP BY name, bundle_id HAVING COUNT(*) > 1"
            )
        )
        .all()
    )
    if duplicates:
        listed = ", ".join(f"{d.name!r} bundle {d.bundle_id} ({d.n} versions)" for d in duplicates)
        raise StoreError(
            f"cannot add {INDEX}: these models hold one bundle in several versions: {listed}. "
            "Keep one version per bundle (repoint aliases first), then run `tabpipe db upgrade`."
        )
    op.create_index(INDEX, "model_versions", ["name", "bundle_id"], unique=True)


def downgrade() -> None:
    op.drop_index(INDEX, table_name="model_versions")
