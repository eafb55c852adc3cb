"""Where things live: the artifact folder and the metadata store.

The workspace is the only part of tabpipe that reads and writes artifacts;
stages receive and return objects.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import insert, select

from tabpipe import metadata as md
from tabpipe.artifacts import TABLE, ArtifactStore
from tabpipe.config import SourceSpec
from tabpipe.data.ingest import content_id, read_source
from tabpipe.errors import NotFoundError

DEFAULT_ROOT = "tabpipe-workspace"


@dataclass(frozen=True)
class SnapshotRecord:
    id: str
    name: str
    rows: int
    columns: int
    path: Path


class Workspace:
    """A folder of artifacts plus a metadata store (SQLite inside the folder by default)."""

    def __init__(self, root: str | Path | None = None, db_url: str | None = None) -> None:
        self.root = Path(root or os.environ.get("TABPIPE_WORKSPACE", DEFAULT_ROOT)).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        url = db_url or os.environ.get("TABPIPE_DB_URL") or f"sqlite:///{self.root / 'metadata.db'}"
        self.meta = md.MetadataStore(url)
        self.artifacts = ArtifactStore(self.root / "artifacts")

    def close(self) -> None:
        self.meta.dispose()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # snapshots -------------------------------------------------------------
    def ingest(self, source: SourceSpec, name: str) -> tuple[SnapshotRecord, pd.DataFrame]:
        """Read a source into an immutable snapshot; identical data yields the same id."""
        frame = read_source(source)
        snapshot_id = content_id(frame)
        path = self.artifacts.put(TABLE, snapshot_id, frame)
        if self.meta.one(select(md.snapshots).where(md.snapshots.c.id == snapshot_id)) is None:
            with self.meta.begin() as conn:
                exists = conn.execute(
                    select(md.snapshots.c.id).where(md.snapshots.c.id == snapshot_id)
                ).first()
                if exists is None:
                    conn.execute(
                        insert(md.snapshots).values(
                            id=snapshot_id,
                            name=name,
                            created_at=md.utcnow(),
                            rows=len(frame),
                            columns=frame.shape[1],
                            schema={str(c): str(t) for c, t in frame.dtypes.items()},
                            source={"kind": "file", "path": source.path, "format": source.format},
                            parent_id=None,
                            path=str(path),
                        )
                    )
        record = SnapshotRecord(snapshot_id, name, len(frame), frame.shape[1], path)
        return record, frame

    def snapshot(self, snapshot_id: str) -> pd.DataFrame:
        return self.artifacts.get(TABLE, snapshot_id)

    # bundles -----------------------------------------------------------------
    def bundle_path(self, bundle_id: str) -> Path:
        return self.artifacts.path("bundle", bundle_id)

    def run(self, run_id: str) -> dict[str, Any]:
        row = self.meta.one(select(md.runs).where(md.runs.c.id == run_id))
        if row is None:
            raise NotFoundError(f"no run with id {run_id!r}")
        return row
