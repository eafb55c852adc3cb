"""Where things live: the artifact folder and the metadata store.

The workspace is the only part of tabpipe that reads and writes artifacts;
stages receive and return objects.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import select

from tabpipe import metadata as md
from tabpipe.artifacts import ArtifactStore
from tabpipe.data.ingest import AnySource, ingest
from tabpipe.data.snapshots import IngestReport, SnapshotRecord, SnapshotStore
from tabpipe.errors import NotFoundError

DEFAULT_ROOT = "tabpipe-workspace"


def workspace_root(root: str | Path | None = None) -> Path:
    """The workspace folder: ``root``, else ``$TABPIPE_WORKSPACE``, else ./tabpipe-workspace."""
    return Path(root or os.environ.get("TABPIPE_WORKSPACE", DEFAULT_ROOT)).resolve()


def store_url(root: Path, db_url: str | None = None) -> str:
    """The metadata store URL: ``db_url``, else ``$TABPIPE_DB_URL``, else SQLite in ``root``."""
    return db_url or os.environ.get("TABPIPE_DB_URL") or f"sqlite:///{root / 'metadata.db'}"


class Workspace:
    """A folder of artifacts plus a metadata store (SQLite inside the folder by default)."""

    def __init__(self, root: str | Path | None = None, db_url: str | None = None) -> None:
        self.root = workspace_root(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.meta = md.MetadataStore(store_url(self.root, db_url))
        self.artifacts = ArtifactStore(self.root / "artifacts")

    def close(self) -> None:
        self.meta.dispose()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # snapshots -------------------------------------------------------------
    @property
    def snapshots(self) -> SnapshotStore:
        return SnapshotStore(self.meta, self.artifacts)

    def ingest(
        self, source: AnySource, name: str | None = None
    ) -> tuple[SnapshotRecord, pd.DataFrame]:
        """Read a source into an immutable snapshot (or resolve a snapshot reference).

        Identical data yields the same id; returns the record and its rows.
        """
        record, _report = ingest(source, self.snapshots, name=name)
        return record, self.snapshots.frame(record)

    def ingest_report(
        self, source: AnySource, name: str | None = None
    ) -> tuple[SnapshotRecord, IngestReport]:
        """Like :meth:`ingest`, without loading the rows; returns the ingest report."""
        return ingest(source, self.snapshots, name=name)

    def snapshot(self, snapshot_id: str) -> pd.DataFrame:
        return self.snapshots.frame(self.snapshots.resolve(snapshot_id))

    # bundles -----------------------------------------------------------------
    def bundle_path(self, bundle_id: str) -> Path:
        return self.artifacts.path("bundle", bundle_id)

    def run(self, run_id: str) -> dict[str, Any]:
        row = self.meta.one(select(md.runs).where(md.runs.c.id == run_id))
        if row is None:
            raise NotFoundError(f"no run with id {run_id!r}")
        return row
