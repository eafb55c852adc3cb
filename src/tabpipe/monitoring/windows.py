"""Cutting the prediction log into windows: by rows or a time span, on logging or event time.

By default the time is ``ts``, when a prediction was logged. With
``monitoring.time_column`` it is the data's own time, read from a feature
(``in_<column>``) or from the logged user key (``key``, whose request column the
log records in ``key_name``), so backfilled or batch-scored rows land in the
windows they belong to.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tabpipe.errors import MonitoringError
from tabpipe.monitoring.spec import MonitoringSpec, parse_duration
from tabpipe.packaging.bundle import Manifest
from tabpipe.packaging.signature import MISSING_CATEGORY
from tabpipe.serving.predlog import INPUT_PREFIX

EVENT_TIME = "event_time"


def assign_windows(frame: pd.DataFrame, spec: MonitoringSpec, time: str = "ts") -> pd.Series:
    """The window index of each row of ``frame`` (ordered by ``time``)."""
    if spec.window.rows is not None:
        return pd.Series(np.arange(len(frame)) // spec.window.rows, index=frame.index)
    step = parse_duration(spec.window.every or "1d")
    start = frame[time].min()
    windows: pd.Series = ((frame[time] - start) // pd.Timedelta(step)).astype(int)
    return windows


def _time_source(log: pd.DataFrame, column: str, manifest: Manifest) -> str:
    """The log column holding ``column``: its input ``in_<column>``, or the user ``key``."""
    if column in manifest.signature.names:
        return INPUT_PREFIX + column
    if "key_name" in log and (log["key_name"] == column).any():
        return "key"
    features = ", ".join(manifest.signature.names)
    raise MonitoringError(
        f"time_column {column!r} is neither a feature of {manifest.name} ({features}) nor the "
        f"logged user key; set monitoring.time_column to one of them, or serve with "
        f"--log-key {column} so the log keeps it"
    )


def event_time(
    log: pd.DataFrame, column: str, manifest: Manifest
) -> tuple[pd.DataFrame, list[str]]:
    """``log`` with an ``event_time`` column from ``column``, ordered by it, and notes.

    Accepted rows whose time does not parse (ISO 8601 text or Unix seconds) and
    rejected requests (no inputs) are set aside and reported, never windowed.
    """
    source = _time_source(log, column, manifest)
    values = log[source]
    if pd.api.types.is_numeric_dtype(values):
        times = pd.to_datetime(values, unit="s", utc=True, errors="coerce")
    else:
        text = values.where(values.notna() & ~values.isin(["", MISSING_CATEGORY]))
        times = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
    notes = []
    accepted = log["status"] == "ok"
    bad = accepted & times.isna()
    if bad.any():
        first = log.loc[bad].iloc[0]
        notes.append(
            f"{int(bad.sum())} logged rows have no readable {column!r} time (ISO 8601 text or "
            f"Unix seconds), e.g. request {first['request_id']} row {first['row']} with "
            f"{first[source]!r}; they are left out of the windows"
        )
    rejected = int((~accepted).sum())
    if rejected:
        notes.append(f"{rejected} rejected requests carry no {column!r} time and are in no window")
    keep = log.loc[accepted & times.notna()].assign(**{EVENT_TIME: times[accepted & times.notna()]})
    return keep.sort_values(EVENT_TIME, kind="stable").reset_index(drop=True), notes


__all__ = ["EVENT_TIME", "assign_windows", "event_time"]
