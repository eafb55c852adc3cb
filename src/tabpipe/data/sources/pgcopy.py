"""PostgreSQL fast path: ``COPY (query) TO STDOUT`` streamed through Arrow's CSV reader.

Row-by-row fetching costs Python work per value; PostgreSQL's own COPY sends
CSV blocks that pyarrow parses in C, with column types taken from the
query's result description. Values come out with the same Arrow types as the
generic path, so the snapshot id is the same either way.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from tabpipe.data.snapshots import Staging

#: PostgreSQL type OIDs -> Arrow types; anything else is read as text.
_TYPES: dict[int, pa.DataType] = {
    16: pa.bool_(),
    20: pa.int64(),
    21: pa.int64(),
    23: pa.int64(),
    26: pa.int64(),
    700: pa.float64(),
    701: pa.float64(),
    1700: pa.float64(),
    1082: pa.date32(),
    1114: pa.timestamp("us"),
    1184: pa.timestamp("us", tz="UTC"),
}
BLOCK = 8 << 20


class _CopyStream:
    """A read(size) file over psycopg's COPY blocks, for Arrow's streaming CSV reader."""

    closed = False

    def __init__(self, copy: Any) -> None:
        self.copy = copy
        self.buffer = bytearray()
        self.done = False

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        while not self.done and (size < 0 or len(self.buffer) < size):
            block = self.copy.read()
            if not block:
                self.done = True
                break
            self.buffer += block
        if size < 0:
            size = len(self.buffer)
        out = bytes(self.buffer[:size])
        del self.buffer[:size]
        return out

    def close(self) -> None:
        self.closed = True


class _BackgroundWriter:
    """Writes batches to Parquet in a thread, so parsing and writing overlap (bounded queue)."""

    def __init__(self, target: Path) -> None:
        self.target = target
        self.queue: queue.Queue[pa.RecordBatch | None] = queue.Queue(maxsize=4)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        writer: pq.ParquetWriter | None = None
        try:
            while (batch := self.queue.get()) is not None:
                if writer is None:
                    writer = pq.ParquetWriter(self.target, batch.schema)
                writer.write_batch(batch)
        except BaseException as exc:
            self.error = exc
            while self.queue.get() is not None:  # drain so the producer never blocks
                pass
        finally:
            if writer is not None:
                writer.close()

    def put(self, batch: pa.RecordBatch) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put(batch)

    def __enter__(self) -> _BackgroundWriter:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.queue.put(None)
        self.thread.join()
        if self.error is not None:
            raise self.error


def copy_to_parquet(
    dbapi_conn: Any,
    query: str,
    params: tuple[Any, ...],
    staging: Staging,
    *,
    watermark: str | None,
    on_column_warning: Callable[[str], None],
) -> tuple[int, Any]:
    """Stream ``query`` into one Parquet part; return the row count and the watermark's max."""
    with dbapi_conn.cursor() as cur:
        cur.execute("SET LOCAL TIME ZONE 'UTC'")
        cur.execute("SET LOCAL DateStyle = 'ISO'")
        cur.execute(f"SELECT * FROM ({query}) AS tabpipe_q LIMIT 0", params or None)
        names = [d.name for d in cur.description]
        oids = [d.type_code for d in cur.description]
    types = {n: _TYPES.get(oid, pa.string()) for n, oid in zip(names, oids, strict=True)}
    for name, oid in zip(names, oids, strict=True):
        if oid == 1700:
            on_column_warning(f"column {name!r}: exact decimals read as floating point")
    convert = pacsv.ConvertOptions(
        column_types=types,
        null_values=[""],
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
        true_values=["t"],
        false_values=["f"],
    )
    read = pacsv.ReadOptions(column_names=names, block_size=BLOCK)
    parse = pacsv.ParseOptions(newlines_in_values=True)
    rows, high = 0, None
    target = staging.next_part()
    with (
        dbapi_conn.cursor() as cur,
        cur.copy(f"COPY ({query}) TO STDOUT (FORMAT csv)", params or None) as copy,
    ):
        stream = _CopyStream(copy)
        try:
            reader = pacsv.open_csv(
                stream, read_options=read, parse_options=parse, convert_options=convert
            )
        except pa.ArrowInvalid:
            if stream.done and not stream.buffer:  # no rows at all
                return 0, None
            raise
        with _BackgroundWriter(target) as writer:
            for batch in reader:
                writer.put(batch)
                rows += batch.num_rows
                if watermark and batch.num_rows:
                    top = pc.max(batch.column(names.index(watermark))).as_py()
                    if top is not None and (high is None or top > high):
                        high = top
    if rows == 0:
        target.unlink(missing_ok=True)
    return rows, high


__all__ = ["copy_to_parquet"]
