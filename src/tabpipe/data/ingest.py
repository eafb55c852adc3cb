"""Ingestion: any source into a registered snapshot, and a file into a DataFrame.

:func:`ingest` is the one entry point: it stages the source's rows, then
commits them as a snapshot (see :mod:`tabpipe.data.snapshots`). MQTT streams
write one snapshot per window through :mod:`tabpipe.data.sources.mqtt`.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pandas as pd

from tabpipe.data.snapshots import (
    IngestReport,
    SnapshotRecord,
    SnapshotStore,
    Staging,
    duck,
    merge_parts,
    plain_dtypes,
)
from tabpipe.data.sources.files import ingest_files
from tabpipe.data.sources.spec import (
    FileSource,
    HttpSource,
    MqttSource,
    SnapshotRef,
    SqlSource,
)
from tabpipe.engine.base import Engine
from tabpipe.errors import SourceError

AnySource = FileSource | SqlSource | HttpSource | MqttSource | SnapshotRef


def ingest(
    source: AnySource,
    store: SnapshotStore,
    *,
    name: str | None = None,
    engine: Engine | None = None,
) -> tuple[SnapshotRecord, IngestReport]:
    """Read ``source`` into an immutable snapshot; identical data yields the same id.

    With an ``engine``, the files of a glob or folder are read one task per file
    (:mod:`tabpipe.data.sources.many`); the snapshot is the same on every engine.
    Raises :class:`SourceError` naming the source, the position and the cause;
    a failure leaves no registered snapshot.
    """
    started = time.perf_counter()
    name = name or source.stem
    if isinstance(source, SnapshotRef):
        record = store.resolve(source.ref)
        report = IngestReport(
            name=record.name,
            source=source.describe(),
            snapshot_id=record.id,
            rows=record.rows,
            columns=record.columns,
            reused=True,
        )
        return record, report
    if isinstance(source, MqttSource):
        from tabpipe.data.sources.mqtt import collect

        records = collect(source, store, name=name, follow=False)
        if not records:
            raise SourceError(
                f"mqtt {source.host}:{source.port} {', '.join(source.topics)}: no message arrived "
                f"within {source.window_seconds} s; nothing registered"
            )
        return records[-1]
    report = IngestReport(name=name, source=source.describe())
    with store.staging() as staging:
        parent_id = _read(source, store, staging, report, name, engine)
        if parent_id == "unchanged":
            parent = store.latest(name)
            assert parent is not None
            report.snapshot_id, report.rows, report.columns = parent.id, parent.rows, parent.columns
            report.reused, report.seconds = True, time.perf_counter() - started
            return parent, report
        record = store.commit(staging, report, parent_id=parent_id)
    report.seconds = time.perf_counter() - started
    return record, report


def _read(
    source: AnySource,
    store: SnapshotStore,
    staging: Staging,
    report: IngestReport,
    name: str,
    engine: Engine | None = None,
) -> str | None:
    """Stage the rows; return the parent snapshot id ("unchanged": no new rows)."""
    if isinstance(source, FileSource):
        if engine is not None:
            from tabpipe.data.sources.many import ingest_many

            ingest_many(source, staging, engine)
        else:
            ingest_files(source, staging)
        return None
    if isinstance(source, SqlSource):
        from tabpipe.data.sources.sql import ingest_sql

        return ingest_sql(source, staging, report, parent=store.latest(name))
    if isinstance(source, HttpSource):
        from tabpipe.data.sources.http import ingest_http

        ingest_http(source, staging)
        return None
    raise SourceError(f"cannot ingest a source of kind {source.kind!r} here")


def read_source(source: FileSource) -> pd.DataFrame:
    """Read a file source (any supported format) into a DataFrame, without registering it."""
    with tempfile.TemporaryDirectory(prefix="tabpipe-read-") as tmp:
        staging = Staging(Path(tmp))
        ingest_files(source, staging)
        if staging.has_parts:
            merge_parts(staging)
        con = duck(Path(tmp))
        try:
            frame = plain_dtypes(
                con.execute("SELECT * FROM read_parquet(?)", [str(staging.data)]).df()
            )
        finally:
            con.close()
    if frame.empty:
        raise SourceError(f"{source.path}: holds a header but no data rows")
    return frame


__all__ = ["AnySource", "ingest", "read_source"]
