"""Turning JSON records (from files, APIs and messages) into Parquet parts."""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from tabpipe.data.snapshots import Staging
from tabpipe.errors import SourceError

#: Records buffered before a Parquet part is written.
PART_RECORDS = 50_000


def flatten(record: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested objects become dotted columns: ``{"a": {"b": 1}}`` -> ``{"a.b": 1}``."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


class RecordWriter:
    """Buffers records and writes them to the staging folder as Parquet parts, in order.

    A record that is not a JSON object, or whose values cannot form a column
    with the others of its part, is a bad row: counted, sampled, quarantined
    when asked, never dropped silently.
    """

    def __init__(
        self, staging: Staging, *, keep_bad: bool = True, part_records: int = PART_RECORDS
    ):
        self.staging = staging
        self.keep_bad = keep_bad
        self.part_records = part_records
        self.rows = 0
        self._buffer: list[dict[str, Any]] = []
        self._positions: list[str] = []

    def add(self, record: Any, position: str) -> None:
        if not isinstance(record, dict):
            self.staging.bad(
                position,
                f"not a JSON object but {type(record).__name__}",
                repr(record),
                keep=self.keep_bad,
            )
            return
        self._buffer.append(flatten(record))
        self._positions.append(position)
        if len(self._buffer) >= self.part_records:
            self.flush()

    def flush(self) -> None:
        if not self._buffer:
            return
        try:
            table = pa.Table.from_pylist(self._buffer)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            table = self._table_skipping_bad()
        if table.num_rows:
            pq.write_table(table, self.staging.next_part())
            self.rows += table.num_rows
        self._buffer, self._positions = [], []

    def _table_skipping_bad(self) -> pa.Table:
        """Columns whose values mix kinds (text and numbers, say) are read as text, and said so."""
        kinds: dict[str, set[str]] = {}
        for record in self._buffer:
            for key, value in record.items():
                if value is not None:
                    kind = (
                        "number"
                        if isinstance(value, int | float) and not isinstance(value, bool)
                        else type(value).__name__
                    )
                    kinds.setdefault(key, set()).add(kind)
        mixed = sorted(k for k, v in kinds.items() if len(v) > 1)
        for column in mixed:
            self.staging.warnings.append(
                f"column {column!r} mixes {', '.join(sorted(kinds[column]))} values near "
                f"{self._positions[0]}; read as text"
            )
        rows = [
            {k: (_text(v) if k in mixed and v is not None else v) for k, v in r.items()}
            for r in self._buffer
        ]
        try:
            return pa.Table.from_pylist(rows)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise SourceError(
                f"records near {self._positions[0]} cannot form a table: {exc}"
            ) from exc

    def close(self) -> None:
        self.flush()


__all__ = ["PART_RECORDS", "RecordWriter", "flatten"]


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)
