"""Dates as numbers: the one conversion training and serving share.

A datetime feature reaches the model as float64 seconds since 1970-01-01 (UTC;
a naive datetime is read as UTC, an aware one is converted). Training converts
the parsed column with :func:`epoch_seconds` (pandas); a request value goes
through :func:`to_epoch_seconds`, which parses text with the formats cleaning
found in training first, then the other known formats, then ISO 8601. float64
holds whole seconds exactly for any date a model meets (float32 would round
present-day epoch seconds to about two minutes).

This module is on the serving path: it needs numpy only (pandas only in
:func:`epoch_seconds`, which training calls).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

#: Text formats cleaning recognises as dates (``strptime`` codes), tried in this order.
DATE_FORMATS = (
    "%Y-%m-%d",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y/%m/%d",
    "%d/%m/%Y",
    "%m/%d/%Y",
    "%d.%m.%Y",
    "%d-%m-%Y",
    "%d %b %Y",
    "%b %d, %Y",
    "%d %B %Y",
    "%B %d, %Y",
)
SECONDS_PER_DAY = 86_400.0
_EPOCH = datetime(1970, 1, 1)
_EPOCH64 = np.datetime64("1970-01-01T00:00:00", "us")


def to_epoch_seconds(
    value: Any, formats: Sequence[str] = (), markers: Collection[str] = ()
) -> float:
    """One raw value as epoch seconds; NaN for a missing one.

    Accepts a ``datetime``/``date``, a ``numpy.datetime64``, a number (already epoch
    seconds) or text in one of ``formats``, :data:`DATE_FORMATS` or ISO 8601.
    ``markers`` are texts that mean missing (compared stripped and case-folded).
    Raises ``ValueError`` for anything else.
    """
    if value is None:
        return math.nan
    if isinstance(value, bool | np.bool_):
        raise ValueError("expected a date, got a boolean")
    if isinstance(value, datetime):
        return _seconds(value)
    if isinstance(value, date):
        return _seconds(datetime(value.year, value.month, value.day))
    if isinstance(value, np.datetime64):
        if np.isnat(value):
            return math.nan
        return float((value.astype("datetime64[us]") - _EPOCH64).astype(np.int64)) / 1e6
    if isinstance(value, int | float | np.integer | np.floating):
        return float(value)
    if isinstance(value, str):
        return _parse_text(value, formats, markers)
    raise ValueError(f"expected a date, got {type(value).__name__}")


def _parse_text(value: str, formats: Sequence[str], markers: Collection[str]) -> float:
    text = value.strip()
    if text.casefold() in markers or not text:
        return math.nan
    for fmt in (*formats, *(f for f in DATE_FORMATS if f not in formats)):
        try:
            return _seconds(datetime.strptime(text, fmt))
        except ValueError:
            continue
    try:
        return _seconds(datetime.fromisoformat(text))
    except ValueError:
        pass
    shown = ", ".join(formats or DATE_FORMATS[:3])
    raise ValueError(f"cannot read {value!r} as a date (expected e.g. {shown} or ISO 8601)")


def _seconds(moment: datetime) -> float:
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return (moment - _EPOCH).total_seconds()


def epoch_seconds(column: pd.Series) -> np.ndarray:
    """A parsed (datetime64) training column as float64 epoch seconds, NaN where missing."""
    import pandas as pd

    if not pd.api.types.is_datetime64_any_dtype(column):
        column = pd.to_datetime(column, errors="coerce", format="mixed")
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        column = column.dt.tz_convert("UTC").dt.tz_localize(None)
    stamps = column.to_numpy(dtype="datetime64[us]")
    missing = np.isnat(stamps)
    out = (stamps - _EPOCH64).astype(np.int64).astype(np.float64) / 1e6
    out[missing] = np.nan
    return out
