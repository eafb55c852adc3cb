"""Snapshots: immutable Parquet tables with a content id, registered in the metadata store.

A source reader writes into a :class:`Staging` folder under the artifact
store's temporary area. Only :meth:`SnapshotStore.commit` gives it an id (a
hash of the data computed by DuckDB while streaming over the Parquet file),
moves it into ``artifacts/table/<id>/`` and inserts the metadata record. A
failure before that leaves nothing registered, and the staging folder is
removed. Identical data yields the same id, and the second copy is discarded.

On an object-store workspace the folder is published to the store (temporary
keys, then its ``.complete`` marker) before the metadata row is inserted: the
row is the commit point, and readers read through the local artifact cache.

The content id covers the column names and types, the row count and every
value with its row position. It uses DuckDB's row hash, so the same data
read from a CSV, a database or an API gets the same id, whatever the file
layout; a DuckDB upgrade that changes its hash function would give new ids
for old data (never a wrong match).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
from pydantic import BaseModel
from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from tabpipe import metadata as md
from tabpipe.artifacts import TABLE, ArtifactStore
from tabpipe.data.sources.spec import SNAPSHOT_ID, SNAPSHOT_REF
from tabpipe.errors import NotFoundError, SourceError, StoreError

DATA_FILE = "data.parquet"
ID_SCHEME = "tabpipe-snapshot-v1"
MAX_SAMPLES = 20
#: DuckDB's memory cap while converting and hashing: keeps ingestion well under 2 GB.
DUCKDB_MEMORY = "1GB"
STALE_SECONDS = 24 * 3600


def duck(temp_dir: Path | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with a memory cap, spilling to ``temp_dir``."""
    con = duckdb.connect(":memory:", config={"memory_limit": DUCKDB_MEMORY})
    if temp_dir is not None:
        con.execute(f"SET temp_directory = '{_sql_str(str(temp_dir))}'")
    return con


def _sql_str(text: str) -> str:
    return text.replace("'", "''")


def plain_dtypes(frame: pd.DataFrame) -> pd.DataFrame:
    """Numbers with missing values as float64 with NaN, as pandas reads a CSV.

    DuckDB hands over integer columns with NULLs as nullable ``Int64`` (``pd.NA``);
    the rest of tabpipe, like scikit-learn, expects NaN.
    """
    for name in frame.columns:
        dtype = frame[name].dtype
        if isinstance(dtype, pd.api.extensions.ExtensionDtype) and dtype.kind in "iuf":
            plain: Any = "float64" if frame[name].hasnans else str(dtype).lower()
            frame[name] = frame[name].astype(plain)
    return frame


class BadRow(BaseModel):
    """One row that could not be read: where it was, why, and its raw text."""

    position: str
    cause: str
    raw: str


class IngestReport(BaseModel):
    """What one ingest did. Row-level problems are counted here, never dropped silently."""

    name: str
    source: dict[str, Any]
    snapshot_id: str | None = None
    rows: int = 0
    columns: int = 0
    bad_rows: int = 0
    bad_row_samples: list[BadRow] = []
    quarantine: str | None = None
    warnings: list[str] = []
    reused: bool = False
    parent_id: str | None = None
    seconds: float = 0.0


@dataclass(frozen=True)
class SnapshotRecord:
    id: str
    name: str
    rows: int
    columns: int
    path: Path
    created_at: datetime | None = None
    location: str = ""
    schema: dict[str, str] = field(default_factory=dict)
    source: dict[str, Any] = field(default_factory=dict)
    parent_id: str | None = None

    @property
    def data(self) -> Path:
        """The local data file (on an object-store workspace, its place in the cache)."""
        return self.path / DATA_FILE

    @classmethod
    def from_row(cls, row: dict[str, Any], local: Path | None = None) -> SnapshotRecord:
        """A record from its metadata row; ``local`` is its folder in this workspace."""
        return cls(
            id=row["id"],
            name=row["name"],
            rows=row["rows"],
            columns=row["columns"],
            path=local or Path(row["path"]),
            location=row["path"],
            created_at=row["created_at"],
            schema=dict(row["schema"]),
            source=dict(row["source"]),
            parent_id=row["parent_id"],
        )


class Staging:
    """A temporary folder a reader writes a snapshot into, plus its bad-row bookkeeping."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.data = folder / DATA_FILE
        self.parts = folder / "parts"
        self.quarantine = folder / "quarantine.jsonl"
        self.bad_rows = 0
        self.samples: list[BadRow] = []
        self.warnings: list[str] = []
        self._part = 0

    def next_part(self) -> Path:
        """A fresh Parquet part path; parts are merged into ``data.parquet`` in order."""
        self.parts.mkdir(exist_ok=True)
        self._part += 1
        return self.parts / f"part-{self._part:06d}.parquet"

    @property
    def has_parts(self) -> bool:
        return self._part > 0

    def bad(self, position: str, cause: str, raw: str, *, keep: bool = True) -> None:
        """Count a bad row, sample it, and (when quarantining) append it to the quarantine file."""
        self.bad_rows += 1
        row = BadRow(position=position, cause=cause, raw=raw[:2000])
        if len(self.samples) < MAX_SAMPLES:
            self.samples.append(row)
        if keep:
            with self.quarantine.open("a", encoding="utf-8") as fh:
                fh.write(row.model_dump_json() + "\n")


def merge_parts(staging: Staging) -> None:
    """Concatenate the Parquet parts, in order, into one file (DuckDB, streaming)."""
    parts = sorted(staging.parts.glob("part-*.parquet"))
    if not parts:
        return
    if len(parts) == 1:
        parts[0].rename(staging.data)
        shutil.rmtree(staging.parts, ignore_errors=True)
        return
    con = duck(staging.folder)
    try:
        pattern = _sql_str(str(staging.parts / "part-*.parquet"))
        con.execute(
            f"COPY (SELECT * FROM read_parquet('{pattern}', union_by_name=true)) "
            f"TO '{_sql_str(str(staging.data))}' (FORMAT parquet)"
        )
    finally:
        con.close()
    shutil.rmtree(staging.parts, ignore_errors=True)


def describe_parquet(path: Path) -> tuple[str, int, dict[str, str]]:
    """Content id, row count and schema (column -> DuckDB type) of a Parquet file."""
    con = duck(path.parent)
    try:
        quoted = _sql_str(str(path))
        schema = {
            str(r[0]): str(r[1])
            for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet('{quoted}')").fetchall()
        }
        rows, total = con.execute(
            f"SELECT count(*), coalesce(sum(hash(t)::HUGEINT), 0)::VARCHAR "
            f"FROM read_parquet('{quoted}', file_row_number=true) t"
        ).fetchone() or (0, "0")
    finally:
        con.close()
    payload = json.dumps(
        {"scheme": ID_SCHEME, "schema": list(schema.items()), "rows": rows, "hash": total}
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:32], int(rows), schema


class SnapshotStore:
    """Registers, finds, reads and compares snapshots of one workspace."""

    def __init__(self, meta: md.MetadataStore, artifacts: ArtifactStore) -> None:
        self.meta = meta
        self.artifacts = artifacts

    # writing ---------------------------------------------------------------
    @contextmanager
    def staging(self) -> Iterator[Staging]:
        """A temporary folder, removed when the block ends (committed or not)."""
        self._remove_stale_staging()
        folder = self.artifacts.tmp / f"snapshot-{uuid.uuid4().hex}"
        folder.mkdir(parents=True)
        try:
            yield Staging(folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _remove_stale_staging(self) -> None:
        """Staging folders of killed ingests (older than a day) are never registered: remove them."""
        cutoff = time.time() - STALE_SECONDS
        for folder in self.artifacts.tmp.glob("snapshot-*"):
            try:
                if folder.stat().st_mtime < cutoff:
                    shutil.rmtree(folder, ignore_errors=True)
            except OSError:
                continue

    def commit(
        self,
        staging: Staging,
        report: IngestReport,
        *,
        parent_id: str | None = None,
    ) -> SnapshotRecord:
        """Hash the staged data, move it into place and register it (or reuse an identical one)."""
        if staging.has_parts:
            merge_parts(staging)
        if not staging.data.exists():
            raise SourceError(
                f"{report.name}: the source produced no data file; nothing registered"
            )
        snapshot_id, rows, schema = describe_parquet(staging.data)
        if rows == 0:
            raise SourceError(
                f"{report.name}: the source returned no data rows; nothing registered"
            )
        report.snapshot_id, report.rows, report.columns = snapshot_id, rows, len(schema)
        report.parent_id = parent_id
        report.bad_rows, report.bad_row_samples = staging.bad_rows, staging.samples
        report.warnings = [*report.warnings, *staging.warnings]
        self._keep_quarantine(staging, report)
        existing = self.get_or_none(snapshot_id)
        if existing is not None and self.artifacts.exists(TABLE.kind, snapshot_id):
            report.reused = True
            return existing
        self._move_into_place(staging, snapshot_id, report)
        if existing is not None:
            return existing
        values = {
            "id": snapshot_id,
            "name": report.name,
            "rows": rows,
            "columns": len(schema),
            "schema": schema,
            "source": report.source,
            "parent_id": parent_id,
            "path": self.artifacts.location(TABLE.kind, snapshot_id),
        }
        self.meta.transaction(lambda conn: _insert_if_absent(conn, values))
        return self.get(snapshot_id)

    def _keep_quarantine(self, staging: Staging, report: IngestReport) -> None:
        if not staging.quarantine.exists():
            return
        folder = self.artifacts.root / "quarantine"
        folder.mkdir(parents=True, exist_ok=True)
        stamp = md.utcnow().strftime("%Y%m%dT%H%M%S")
        target = folder / f"{report.name}-{stamp}-{uuid.uuid4().hex[:6]}.jsonl"
        shutil.move(str(staging.quarantine), target)
        report.quarantine = str(target)
        if self.artifacts.remote is not None:
            report.quarantine = self.artifacts.remote.put_file(target, f"quarantine/{target.name}")

    def _move_into_place(self, staging: Staging, snapshot_id: str, report: IngestReport) -> None:
        for leftover in ("parts", "quarantine.jsonl"):
            path = staging.folder / leftover
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
        for tmp in staging.folder.glob("*.tmp"):
            shutil.rmtree(tmp, ignore_errors=True) if tmp.is_dir() else tmp.unlink()
        (staging.folder / "report.json").write_text(
            report.model_dump_json(indent=2), encoding="utf-8"
        )
        try:
            self.artifacts.commit(staging.folder, TABLE.kind, snapshot_id)
        except StoreError as exc:
            raise StoreError(f"snapshot {snapshot_id} of {report.name!r}: {exc}") from exc

    # reading -----------------------------------------------------------------
    def _record(self, row: dict[str, Any]) -> SnapshotRecord:
        return SnapshotRecord.from_row(row, self.artifacts.path(TABLE.kind, row["id"]))

    def get_or_none(self, snapshot_id: str) -> SnapshotRecord | None:
        row = self.meta.one(select(md.snapshots).where(md.snapshots.c.id == snapshot_id))
        return self._record(row) if row else None

    def get(self, snapshot_id: str) -> SnapshotRecord:
        record = self.get_or_none(snapshot_id)
        if record is None:
            raise NotFoundError(
                f"no snapshot with id {snapshot_id!r}; `tabpipe data list` shows the snapshots"
            )
        return record

    def list(self, name: str | None = None) -> list[SnapshotRecord]:
        """Snapshots, oldest first (optionally only those of one name)."""
        query = select(md.snapshots).order_by(md.snapshots.c.created_at, md.snapshots.c.id)
        if name is not None:
            query = query.where(md.snapshots.c.name == name)
        return [self._record(r) for r in self.meta.all(query)]

    def latest(self, name: str) -> SnapshotRecord | None:
        found = self.list(name)
        return found[-1] if found else None

    def resolve(self, ref: str) -> SnapshotRecord:
        """An id, a unique id prefix (6+ digits), ``name@latest`` or ``name@N`` (1 = oldest)."""
        if SNAPSHOT_ID.match(ref):
            return self.get(ref)
        match = SNAPSHOT_REF.match(ref)
        if match:
            name, which = match.group("name"), match.group("which")
            found = self.list(name)
            if not found:
                names = sorted({r.name for r in self.list()})
                raise NotFoundError(
                    f"no snapshot named {name!r}; known names: {', '.join(names) or '(none)'}"
                )
            if which == "latest":
                return found[-1]
            index = int(which)
            if not 1 <= index <= len(found):
                raise NotFoundError(
                    f"{ref}: snapshot {name!r} has versions 1..{len(found)} (1 is the oldest)"
                )
            return found[index - 1]
        if len(ref) >= 6 and all(c in "0123456789abcdef" for c in ref):
            hits = [r for r in self.list() if r.id.startswith(ref)]
            if len(hits) == 1:
                return hits[0]
            if len(hits) > 1:
                raise NotFoundError(f"snapshot id prefix {ref!r} is ambiguous; give more digits")
        raise NotFoundError(
            f"no snapshot {ref!r}; give an id, an id prefix, 'name@latest' or 'name@N'"
        )

    def data_file(self, record: SnapshotRecord) -> Path:
        """The snapshot's local Parquet file (downloaded into the cache when remote)."""
        try:
            data = self.artifacts.fetch(TABLE.kind, record.id) / DATA_FILE
        except StoreError as exc:
            raise StoreError(f"snapshot {record.id} at {record.location}: {exc}") from exc
        if not data.exists():
            raise StoreError(f"snapshot {record.id}: its data file {data} is missing")
        return data

    def frame(self, record: SnapshotRecord) -> pd.DataFrame:
        """The whole snapshot as a DataFrame (the types DuckDB gives, as at ingest)."""
        data = self.data_file(record)
        con = duck()
        try:
            return plain_dtypes(con.execute("SELECT * FROM read_parquet(?)", [str(data)]).df())
        finally:
            con.close()

    def head(self, record: SnapshotRecord, rows: int = 5) -> pd.DataFrame:
        con = duck()
        try:
            return plain_dtypes(
                con.execute(
                    f"SELECT * FROM read_parquet(?) LIMIT {int(rows)}",
                    [str(self.data_file(record))],
                ).df()
            )
        finally:
            con.close()

    def diff(self, old: SnapshotRecord, new: SnapshotRecord) -> SnapshotDiff:
        added = [c for c in new.schema if c not in old.schema]
        removed = [c for c in old.schema if c not in new.schema]
        changed = {
            c: (old.schema[c], new.schema[c])
            for c in old.schema
            if c in new.schema and old.schema[c] != new.schema[c]
        }
        return SnapshotDiff(
            old=old.id,
            new=new.id,
            rows_old=old.rows,
            rows_new=new.rows,
            added=added,
            removed=removed,
            type_changes=changed,
        )

    def sql(self, query: str) -> pd.DataFrame:
        """Run SQL with DuckDB; each snapshot name is a view of its latest snapshot."""
        con = duck(self.artifacts.tmp)
        try:
            latest: dict[str, SnapshotRecord] = {}
            for record in self.list():
                latest[record.name] = record
            for name, record in latest.items():
                path = _sql_str(str(self.data_file(record)))
                con.execute(f"CREATE VIEW \"{name}\" AS SELECT * FROM read_parquet('{path}')")
            try:
                return con.execute(query).df()
            except duckdb.Error as exc:
                views = ", ".join(latest) or "(no snapshots yet)"
                raise SourceError(f"query failed: {exc}; tables available: {views}") from exc
        finally:
            con.close()


class SnapshotDiff(BaseModel):
    old: str
    new: str
    rows_old: int
    rows_new: int
    added: list[str]
    removed: list[str]
    type_changes: dict[str, tuple[str, str]]

    @property
    def row_change(self) -> int:
        return self.rows_new - self.rows_old


__all__ = [
    "BadRow",
    "IngestReport",
    "SnapshotDiff",
    "SnapshotRecord",
    "SnapshotStore",
    "Staging",
    "describe_parquet",
    "duck",
]


def _insert_if_absent(conn: Connection, values: dict[str, Any]) -> None:
    """Record a snapshot once; a concurrent ingest of the same data makes this retry and skip."""
    s = md.snapshots
    if conn.execute(select(s.c.id).where(s.c.id == values["id"])).first() is None:
        conn.execute(insert(s).values(created_at=md.utcnow(), **values))
