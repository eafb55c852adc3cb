"""The prediction log writer: every prediction, appended as Parquet parts, never in the way.

``record()`` only appends a small record to a bounded in-memory buffer; a background
thread turns queued records into Arrow tables and writes them as atomic part
files ``<workspace>/predictions/<model>/part-<time>-<id>.parquet`` (written to a
hidden temporary name, then renamed). A full queue drops the record and counts
it (``stats.dropped``, logged); a failed write is counted and logged too. A
request never waits on the log and never fails because of it.

Each logged row holds: ``request_id``, ``row`` (index in the request), ``ts``
(UTC), ``model``, ``version``, ``source`` (http or batch), ``status`` (ok or
error), ``error``, ``latency_ms`` (per request), ``key`` (the user key column,
when configured, and ``key_name``, the request column it came from), ``flags``
(data-quality flags such as ``unseen:col``, ``range:col``, ``missing:col``,
``contract:<rule>:col``), one ``in_<column>`` per validated input,
``prediction`` and ``proba_<class>`` per class. Read it with
:mod:`tabpipe.monitoring.logstore`.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, Field

from tabpipe.packaging.bundle import Manifest
from tabpipe.packaging.signature import MISSING_CATEGORY
from tabpipe.serving.runtime import Prediction

log = logging.getLogger("tabpipe.predlog")

INPUT_PREFIX = "in_"
PART_GLOB = "part-*.parquet"
#: The writer builds a part this many records at a time (see :func:`build_table`).
SLICE_RECORDS = 256


def _pause() -> None:
    """Hand the GIL to the request path if it waits for it (the writer thread's steps).

    A thread that wants the GIL waits for its holder to release it, or for the
    switch interval (5 ms) to pass: without a release after each short step,
    the event loop would wait that long whenever the writer holds the GIL.
    """
    time.sleep(0)


def _go_on() -> None:
    """No pause (a part built on the caller's own thread)."""


Pause = Callable[[], None]


def _release(records: list[_Record]) -> None:
    """Empty ``records`` a slice at a time, with a pause after each.

    Freeing a part's thousands of records (their arrays, dicts, predictions) at
    once holds the GIL for milliseconds, as long as building a whole part would.
    """
    while records:
        del records[-SLICE_RECORDS:]
        _pause()


class LogSettings(BaseModel):
    """How the prediction log batches, where its user key comes from, how long parts live."""

    enabled: bool = True
    queue_size: int = Field(50_000, ge=1, description="Records held in memory before dropping.")
    flush_rows: int = Field(5_000, ge=1, description="Write a part once this many rows wait.")
    flush_seconds: float = Field(1.0, gt=0, description="...or once the oldest waited this long.")
    retention_days: float | None = Field(
        90.0, gt=0, description="Parts older than this are pruned; null keeps all."
    )
    key_column: str | None = Field(
        None, description="A request column holding a user key for late labels (not a feature)."
    )


def key_text(value: Any) -> str | None:
    """The canonical text of a user key: dates without a time as ``YYYY-MM-DD``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, datetime):
        if (value.hour, value.minute, value.second, value.microsecond) == (0, 0, 0, 0):
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def log_folder(workspace: Path, model: str) -> Path:
    return Path(workspace) / "predictions" / model


def open_log(
    workspace: Path,
    model: str,
    settings: LogSettings,
    on_part: Callable[[Path], None] | None = None,
) -> PredictionLog:
    """The server's log for ``model`` (a no-op log when disabled in the settings)."""
    return PredictionLog(log_folder(workspace, model), model, settings, on_part)


@dataclass
class LogStats:
    recorded: int = 0
    written_rows: int = 0
    parts: int = 0
    dropped: int = 0
    failed_writes: int = 0
    last_error: str | None = None


@dataclass
class _Record:
    ts: float
    request_id: str
    version: int
    manifest: Manifest | None
    feeds: dict[str, np.ndarray] | None
    prediction: Prediction | None
    latency_ms: float
    keys: list[Any] | None
    source: str
    error: str | None = None
    rows: int = field(default=1)
    #: data-quality flags found on the request path (the data contract), per row
    flags: list[list[str]] | None = None


class PredictionLog:
    """A bounded in-memory buffer drained by one background thread into Parquet parts.

    The request path only appends to a deque (no lock, no thread wake-up); the
    writer wakes every ``flush_seconds``, or early once ``flush_rows`` rows wait,
    and writes what has gathered in one part.
    """

    def __init__(
        self,
        folder: Path,
        model: str,
        settings: LogSettings | None = None,
        on_part: Callable[[Path], None] | None = None,
    ) -> None:
        self.folder = Path(folder)
        #: called with each part once written (an object-store workspace uploads it)
        self.on_part = on_part
        self.model = model
        self.settings = settings or LogSettings()
        self.stats = LogStats()
        self._buffer: deque[_Record | _Marker] = deque()
        self._waiting_rows = 0  # approximate (updated without a lock): only a wake-up hint
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._closed = not self.settings.enabled
        self._thread = threading.Thread(target=self._drain, name="tabpipe-predlog", daemon=True)
        if self.settings.enabled:
            self.folder.mkdir(parents=True, exist_ok=True)
            prune(self.folder, self.settings.retention_days)
            self._thread.start()

    # producer side -----------------------------------------------------------------
    def record(
        self,
        request_id: str,
        version: int,
        manifest: Manifest,
        feeds: dict[str, np.ndarray],
        prediction: Prediction,
        started: float,
        columns: Mapping[str, Any] | None = None,
        source: str = "http",
        flags: list[list[str]] | None = None,
    ) -> None:
        """Queue one request's rows; never raises, never blocks.

        ``started`` is the request's ``time.perf_counter()`` at arrival; ``columns``
        the raw request columns, where the configured key column is found.
        """
        latency_ms = (time.perf_counter() - started) * 1000
        key = self.settings.key_column
        keys = list(columns[key]) if key and columns is not None and key in columns else None
        rows = len(prediction.values)
        self._put(
            _Record(
                time.time(),
                request_id or uuid.uuid4().hex,
                version,
                manifest,
                feeds,
                prediction,
                latency_ms,
                keys,
                source,
                None,
                rows,
                flags,
            )
        )

    def record_error(
        self, request_id: str, version: int, error: str, started: float, source: str = "http"
    ) -> None:
        """Queue a failed request (one row with status ``error``)."""
        latency_ms = (time.perf_counter() - started) * 1000
        self._put(
            _Record(
                time.time(),
                request_id or uuid.uuid4().hex,
                version,
                None,
                None,
                None,
                latency_ms,
                None,
                source,
                error[:500],
                1,
            )
        )

    def _put(self, rec: _Record) -> None:
        if self._closed:
            if self.settings.enabled:
                self.stats.dropped += rec.rows
            return
        if len(self._buffer) >= self.settings.queue_size:
            self.stats.dropped += rec.rows
            if self.stats.dropped == rec.rows or self.stats.dropped % 10_000 < rec.rows:
                log.warning(
                    "prediction log queue is full (%d records); %d rows dropped so far. "
                    "Raise prediction_log.queue_size or lower flush_seconds.",
                    self.settings.queue_size,
                    self.stats.dropped,
                )
            return
        self._buffer.append(rec)  # deque.append is atomic: no lock on the request path
        self.stats.recorded += rec.rows
        self._waiting_rows += rec.rows
        if self._waiting_rows >= self.settings.flush_rows:
            self._wake.set()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far is written; False on timeout."""
        if not self._thread.is_alive():
            return not any(isinstance(r, _Record) for r in self._buffer)
        marker = _Marker(stop=False)
        self._buffer.append(marker)
        self._wake.set()
        return marker.done.wait(timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Flush and stop the writer thread (graceful shutdown)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if not self._thread.is_alive():
            return
        self._buffer.append(_Marker(stop=True))
        self._wake.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("prediction log: could not stop the writer within %.1f s", timeout)

    # consumer side -----------------------------------------------------------------
    def _drain(self) -> None:
        pending: list[_Record] = []
        pending_rows = 0
        oldest = 0.0
        while True:
            wait = self.settings.flush_seconds
            if pending:
                wait = max(0.0, oldest + self.settings.flush_seconds - time.monotonic())
            self._wake.wait(wait)
            self._wake.clear()
            taken = 0
            while self._buffer:
                item = self._buffer.popleft()
                taken += 1
                if taken % SLICE_RECORDS == 0:
                    _pause()
                if isinstance(item, _Marker):
                    self._write(pending)
                    pending, pending_rows = [], 0
                    item.done.set()
                    if item.stop:
                        return
                    continue
                if not pending:
                    oldest = time.monotonic()
                pending.append(item)
                pending_rows += item.rows
                self._waiting_rows -= item.rows
                if pending_rows >= self.settings.flush_rows:
                    self._write(pending)
                    pending, pending_rows = [], 0
            if pending and time.monotonic() - oldest >= self.settings.flush_seconds:
                self._write(pending)
                pending, pending_rows = [], 0

    def _write(self, records: list[_Record]) -> None:
        """Write ``records`` as one part, then empty the list (see :func:`_release`)."""
        if not records:
            return
        try:
            table = build_table(self.model, records, self.settings.key_column, yield_gil=True)
            part = write_part(self.folder, table)
            self.stats.written_rows += table.num_rows
            self.stats.parts += 1
        except Exception as exc:  # counted and logged; the server goes on
            self.stats.failed_writes += 1
            self.stats.last_error = f"{type(exc).__name__}: {exc}"
            log.error("prediction log: a part could not be written: %s", self.stats.last_error)
            return
        finally:
            _release(records)
        self.share(part)

    def share(self, part: Path) -> None:
        """Hand a written part (log or labels) to ``on_part``; a failure is only logged."""
        if self.on_part is None:
            return
        try:
            self.on_part(part)
        except Exception as exc:  # the part is kept locally; the next sync uploads it
            log.error("prediction log: part %s could not be shared: %s", part.name, exc)


@dataclass
class _Marker:
    """Put in the buffer by ``flush`` (and ``close``): set once everything before it is written."""

    stop: bool
    done: threading.Event = field(default_factory=threading.Event)


def write_part(folder: Path, table: pa.Table) -> Path:
    """Write ``table`` as a new part file atomically (temporary name, then rename)."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    final = folder / f"part-{stamp}-{uuid.uuid4().hex[:8]}.parquet"
    tmp = folder / f".tmp-{final.name}"
    try:
        pq.write_table(table, tmp, compression="zstd")
        tmp.replace(final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return final


def prune(folder: Path, retention_days: float | None, now: datetime | None = None) -> list[Path]:
    """Delete parts written more than ``retention_days`` ago; returns what was deleted."""
    if retention_days is None or not folder.exists():
        return []
    cutoff = (now or datetime.now(UTC)) - timedelta(days=retention_days)
    removed = []
    for part in folder.glob(PART_GLOB):
        written = _part_time(part)
        if written is not None and written < cutoff:
            part.unlink(missing_ok=True)
            removed.append(part)
    return removed


def _part_time(part: Path) -> datetime | None:
    try:
        return datetime.strptime(part.name.split("-")[1], "%Y%m%dT%H%M%S%f").replace(tzinfo=UTC)
    except (IndexError, ValueError):
        return None


def log_batch(
    workspace: Path,
    manifest: Manifest,
    version: int,
    columns: dict[str, Any],
    prediction: Prediction,
    latency_ms: float,
    *,
    key_column: str | None = None,
    feeds: dict[str, np.ndarray] | None = None,
) -> Path | None:
    """Log a batch scoring synchronously as one part; a failure is logged, never raised.

    ``feeds`` are the batch's checked model feeds when the caller has them; else
    ``columns`` are checked again.
    """
    try:
        if feeds is None:
            feeds = manifest.signature.to_feeds(columns)
        keys = list(columns[key_column]) if key_column and key_column in columns else None
        rec = _Record(
            time.time(),
            uuid.uuid4().hex,
            version,
            manifest,
            feeds,
            prediction,
            latency_ms,
            keys,
            "batch",
            None,
            len(prediction.values),
        )
        folder = log_folder(workspace, manifest.name)
        folder.mkdir(parents=True, exist_ok=True)
        return write_part(folder, build_table(manifest.name, [rec], key_column))
    except Exception as exc:
        log.error("prediction log: the batch of %s could not be logged: %s", manifest.name, exc)
        return None


# building the Arrow table ------------------------------------------------------------
def build_table(
    model: str, records: list[_Record], key_name: str | None, *, yield_gil: bool = False
) -> pa.Table:
    """The Arrow table of ``records``; ``key_name`` is the request column of the user key.

    With ``yield_gil`` (the writer thread) the table is built in slices of
    ``SLICE_RECORDS`` records, each column of a slice as one step, with a pause
    (:func:`_pause`) after every step: the event loop never waits on this thread
    for more than one step's work (tens of microseconds) at a time.
    """
    pause = _pause if yield_gil else _go_on
    if yield_gil and len(records) > SLICE_RECORDS:
        tables = []
        for start in range(0, len(records), SLICE_RECORDS):
            pause()
            tables.append(_build(model, records[start : start + SLICE_RECORDS], key_name, pause))
        return pa.concat_tables(tables, promote_options="permissive")
    return _build(model, records, key_name, pause)


def _build(model: str, records: list[_Record], key_name: str | None, pause: Pause) -> pa.Table:
    ok = [r for r in records if r.error is None and r.prediction is not None]
    bad = [r for r in records if r.error is not None]
    tables = [_ok_table(model, group, key_name, pause) for group in _by_version(ok)]
    if bad:
        tables.append(_error_table(model, bad))
    return pa.concat_tables(tables, promote_options="permissive")


def _by_version(records: list[_Record]) -> list[list[_Record]]:
    groups: dict[int, list[_Record]] = {}
    for rec in records:
        groups.setdefault(rec.version, []).append(rec)
    return list(groups.values())


def _base_columns(model: str, records: list[_Record]) -> dict[str, pa.Array]:
    """Per-request values repeated over each request's rows (by Arrow ``take``, not Python)."""
    counts = np.fromiter((r.rows for r in records), np.int64, len(records))
    total = int(counts.sum())
    if total == len(records):  # one row per request, the common case: nothing to repeat
        rows = np.zeros(total, np.int32)
        index = None
    else:
        index = pa.array(np.repeat(np.arange(len(records)), counts))
        starts = np.repeat(np.cumsum(counts) - counts, counts)
        rows = (np.arange(total) - starts).astype(np.int32)

    def per_request(values: list[Any], kind: pa.DataType) -> pa.Array:
        array = pa.array(values, kind)
        return array if index is None else array.take(index)

    ts = [int(r.ts * 1e6) for r in records]
    return {
        "request_id": per_request([r.request_id for r in records], pa.string()),
        "row": pa.array(rows, pa.int32()),
        "ts": per_request(ts, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
        "model": pa.array([model] * total, pa.string()),
        "version": per_request([r.version for r in records], pa.int32()),
        "source": per_request([r.source for r in records], pa.string()),
        "latency_ms": per_request([r.latency_ms for r in records], pa.float64()),
    }


def _error_table(model: str, records: list[_Record]) -> pa.Table:
    cols = _base_columns(model, records)
    cols["status"] = pa.array(["error"] * len(records), pa.string())
    cols["error"] = pa.array([r.error for r in records], pa.string())
    return pa.table(cols)


def _ok_table(
    model: str, records: list[_Record], key_name: str | None, pause: Pause = _go_on
) -> pa.Table:
    """The rows of successful requests; ``pause()`` after each column (see :func:`build_table`)."""
    manifest = records[0].manifest
    assert manifest is not None
    n = sum(r.rows for r in records)
    cols = _base_columns(model, records)
    pause()
    cols["status"] = pa.array(["ok"] * n, pa.string())
    cols["error"] = pa.nulls(n, pa.string())
    if key_name is not None:
        keys = [k for r in records for k in (r.keys or [None] * r.rows)]
        cols["key"] = pa.array([key_text(k) for k in keys], pa.string())
        cols["key_name"] = pa.array([key_name] * n, pa.string())
    flags = _Flags(records, n)
    for spec in manifest.signature.columns:
        pause()
        values = np.concatenate([r.feeds[spec.name] for r in records if r.feeds]).reshape(-1)
        if spec.kind in ("numeric", "datetime"):  # a datetime is logged as epoch seconds
            numbers = values.astype(np.float64)
            cols[INPUT_PREFIX + spec.name] = pa.array(numbers, from_pandas=True)
            _numeric_flags(spec.name, numbers, spec.minimum, spec.maximum, flags)
        else:
            texts = values.astype(str)
            cols[INPUT_PREFIX + spec.name] = pa.array(texts, pa.string())
            _category_flags(spec.name, texts, spec.categories, flags)
    pause()
    cols["flags"] = flags.array()
    pause()
    outputs = [v for r in records for v in (r.prediction.values if r.prediction else [])]
    if manifest.task == "regression":
        cols["prediction"] = pa.array(np.asarray(outputs, dtype=np.float64), from_pandas=True)
    else:
        cols["prediction"] = pa.array([str(v) for v in outputs], pa.string())
        pause()
        proba = np.vstack(
            [r.prediction.proba for r in records if r.prediction and r.prediction.proba is not None]
        )
        for i, cls in enumerate(manifest.classes or []):
            cols[f"proba_{cls}"] = pa.array(proba[:, i], pa.float64())
    return pa.table(cols)


class _Flags:
    """The ``flags`` list column, built from boolean masks per flag (no Python loop per row).

    A row's flags are those found on the request path (the data contract) first, then
    one per masked check in the order the checks were added.
    """

    def __init__(self, records: list[_Record], rows: int) -> None:
        self.rows = rows
        self._labels: list[str] = []
        self._masks: list[np.ndarray] = []
        self._given: list[tuple[int, str]] = []  # (row, flag) found on the request path
        offset = 0
        for rec in records:
            for i, row_flags in enumerate(rec.flags or ()):
                self._given += [(offset + i, flag) for flag in row_flags]
            offset += rec.rows

    def add(self, label: str, mask: np.ndarray) -> None:
        if mask.any():
            self._labels.append(label)
            self._masks.append(mask)

    def array(self) -> pa.Array:
        labels = np.asarray([flag for _, flag in self._given] + self._labels, dtype=object)
        given_rows = np.fromiter((row for row, _ in self._given), np.int64, len(self._given))
        if self._masks:
            hit_rows, hit_checks = np.nonzero(np.column_stack(self._masks))
        else:
            hit_rows = hit_checks = np.zeros(0, np.int64)
        rows = np.concatenate([given_rows, hit_rows])
        which = np.concatenate([np.arange(len(self._given)), hit_checks + len(self._given)])
        order = np.lexsort((which, rows))  # by row, then given flags first, then checks
        offsets = np.zeros(self.rows + 1, np.int32)
        np.cumsum(np.bincount(rows, minlength=self.rows), out=offsets[1:])
        values = pa.array(labels[which[order]].tolist(), pa.string())
        return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), values)


def _numeric_flags(
    name: str, values: np.ndarray, low: float | None, high: float | None, flags: _Flags
) -> None:
    flags.add(f"missing:{name}", np.isnan(values))
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return
    with np.errstate(invalid="ignore"):
        flags.add(f"range:{name}", (values < low) | (values > high))


def _category_flags(
    name: str, texts: np.ndarray, categories: list[str] | None, flags: _Flags
) -> None:
    missing = texts == MISSING_CATEGORY
    flags.add(f"missing:{name}", missing)
    if not categories:
        return
    flags.add(f"unseen:{name}", ~np.isin(texts, np.asarray(categories, dtype=str)) & ~missing)


__all__ = [
    "LogSettings",
    "LogStats",
    "PredictionLog",
    "log_batch",
    "log_folder",
    "open_log",
    "prune",
    "write_part",
]
