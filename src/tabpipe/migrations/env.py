"""Alembic environment of the metadata store.

Configured in code by :mod:`tabpipe.migrations`: the caller passes an open
connection (already inside its transaction and, on PostgreSQL, holding the
migration lock) in ``config.attributes["connection"]``. There is no
``alembic.ini`` and no offline (SQL script) mode.
"""

from __future__ import annotations

from alembic import context

from tabpipe.metadata import metadata

connection = context.config.attributes.get("connection")
if connection is None or context.is_offline_mode():
    raise RuntimeError(
        "tabpipe migrations run on an open connection: use `tabpipe db upgrade` "
        "or tabpipe.migrations.upgrade_store"
    )
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
