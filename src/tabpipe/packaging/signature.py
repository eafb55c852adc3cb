"""The input signature of a bundle, and the strict conversion of request data to model feeds.

This module is on the serving path: it needs numpy and pydantic only (no pandas).

Validation happens here, once, at the edge. :meth:`Signature.check` returns
the model feeds plus what it counted on the way (unseen categories, values out
of the training range); anything that cannot be fed losslessly raises
:class:`~tabpipe.errors.RequestError` naming the column and the row.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel

from tabpipe.data.columnar import DISTINCT_ABOVE, map_distinct
from tabpipe.data.dates import to_epoch_seconds
from tabpipe.data.rules import ColumnRules, apply_rules, clean_value, finish_number
from tabpipe.errors import PayloadTooLargeError, RequestError

MISSING_CATEGORY = ""
MISSING_MARKERS = frozenset({"", "?", "na", "n/a", "nan", "null", "none", "-", "--"})
_FLOAT32_MAX = float(np.finfo(np.float32).max)
#: Requests up to this many rows are checked value by value (no numpy overhead per column).
SCALAR_ROWS = 32
#: Distinct raw values whose category text each categorical column remembers (few-rows path).
MEMO_SIZE = 1024

#: What happens to a category the model never saw: ``ignore`` feeds it (one-hot
#: encoders treat it as "none of the known ones") and counts it; ``reject``
#: answers the request with an error naming the column.
UnseenPolicy = Literal["ignore", "reject"]


class ColumnSpec(BaseModel):
    """One input column: its kind, what was seen in training, and whether it is required.

    ``nullable`` columns accept missing values (the pipeline imputes them);
    infinities are never accepted. A column with ``required=False`` may be
    left out of a request and is then fed as missing. A ``datetime`` column takes
    a date as text (``formats`` first, then ISO 8601) or epoch seconds and is fed
    as float64 epoch seconds; a ``text`` column is fed as its lower-cased string (the
    TF-IDF step then needs no locale-dependent lower-casing inside ONNX).
    """

    name: str
    kind: Literal["numeric", "categorical", "datetime", "text"]
    required: bool = True
    nullable: bool = True
    categories: list[str] | None = None
    minimum: float | None = None
    maximum: float | None = None
    median: float | None = None
    rules: ColumnRules | None = None
    #: datetime: the text formats training parsed (``strptime`` codes), tried first.
    formats: list[str] = []

    @property
    def datatype(self) -> str:
        """The Open Inference Protocol datatype of this column."""
        return "FP32" if self.kind == "numeric" else "BYTES"

    @cached_property
    def known(self) -> frozenset[str] | None:
        return None if self.categories is None else frozenset(self.categories)

    @cached_property
    def scalar(self) -> _ScalarPlan | None:
        """The few-rows check of this column (None for datetime and text columns)."""
        return _ScalarPlan(self) if self.kind in ("numeric", "categorical") else None


@dataclass
class Checked:
    """Feeds of shape (rows, 1) per column, and what validation counted per column."""

    feeds: dict[str, np.ndarray]
    rows: int
    unseen: dict[str, int] = field(default_factory=dict)
    out_of_range: dict[str, int] = field(default_factory=dict)
    #: warnings of the data contract check (set by the server), and per-row flags
    contract: list[str] = field(default_factory=list)
    contract_flags: list[list[str]] | None = None

    def warnings(self) -> list[str]:
        """Readable notes for the response; empty when nothing was unusual."""
        notes = [
            f"column {c!r}: {n} value(s) outside the training range"
            for c, n in self.out_of_range.items()
        ]
        notes += [
            f"column {c!r}: {n} category value(s) not seen in training (encoded as unknown)"
            for c, n in self.unseen.items()
        ]
        return notes + self.contract


class Signature(BaseModel):
    columns: list[ColumnSpec]
    unseen_categories: UnseenPolicy = "ignore"

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def to_feeds(self, data: Mapping[str, Sequence[Any] | np.ndarray]) -> dict[str, np.ndarray]:
        """Validate column data and cast it to model feeds of shape (rows, 1)."""
        return self.check(data).feeds

    def check(
        self, data: Mapping[str, Sequence[Any] | np.ndarray], *, max_rows: int | None = None
    ) -> Checked:
        """Validate column data against the signature; count unusual values.

        Extra columns are ignored. A missing required column, a value that
        cannot be cast losslessly, a missing value in a non-nullable column, an
        infinity, an unseen category under the ``reject`` policy, columns of
        unequal length or more than ``max_rows`` rows raise :class:`RequestError`.
        """
        rows = self._rows(data, max_rows)
        checked = Checked(feeds={}, rows=rows)
        few = rows <= SCALAR_ROWS
        reject = self.unseen_categories == "reject"
        feeds = checked.feeds
        for col in self.columns:
            values = data.get(col.name)
            if values is None:
                values = [None] * rows
            if few and not isinstance(values, np.ndarray):
                plan = col.scalar
                if plan is not None and plan.col is col:  # not a copy's stale plan
                    feed = plan.feed(values, checked, reject)
                    if feed is not None:
                        feeds[col.name] = feed
                        continue
            feeds[col.name] = self._column(col, values, rows, checked)
        return checked

    def _column(
        self, col: ColumnSpec, values: Sequence[Any] | np.ndarray, rows: int, checked: Checked
    ) -> np.ndarray:
        """One column's feed by the general path (any size, any kind); raises naming the row."""
        if col.rules is not None:
            if rows <= SCALAR_ROWS and not isinstance(values, np.ndarray):
                values = [clean_value(v, col.rules) for v in values]
            else:
                values = apply_rules(values, col.rules)
        if col.kind == "numeric":
            return self._numeric(col, values, checked).reshape(-1, 1)
        if col.kind == "datetime":
            return _datetimes(col, values).reshape(-1, 1)
        if col.kind == "text":
            texts = self._categorical(col, values, checked)
            lowered = map_distinct(texts, lambda text, _: text.lower())
            return lowered.reshape(-1, 1)
        return self._categorical(col, values, checked).reshape(-1, 1)

    def _rows(self, data: Mapping[str, Sequence[Any] | np.ndarray], max_rows: int | None) -> int:
        rows = -1
        uneven = False
        missing = []
        for c in self.columns:
            if c.name in data:
                n = len(data[c.name])
                if rows < 0:
                    rows = n
                elif n != rows:
                    uneven = True
            elif c.required:
                missing.append(c.name)
        if missing:
            raise RequestError(
                f"missing required column(s) {', '.join(map(repr, missing))}; the model needs: "
                f"{', '.join(self.names)}",
                field=missing[0],
            )
        if uneven:
            lengths = {c.name: len(data[c.name]) for c in self.columns if c.name in data}
            detail = ", ".join(f"{k}={v}" for k, v in lengths.items())
            raise RequestError(f"columns have different lengths: {detail}")
        if rows <= 0:
            raise RequestError("the request holds no rows")
        if max_rows is not None and rows > max_rows:
            raise PayloadTooLargeError(
                f"{rows} rows in one request; the limit is {max_rows} (split the request)"
            )
        return rows

    @staticmethod
    def _numeric(
        col: ColumnSpec, values: Sequence[Any] | np.ndarray, checked: Checked
    ) -> np.ndarray:
        if len(values) <= SCALAR_ROWS and not isinstance(values, np.ndarray):
            return _numeric_scalars(col, values, checked)
        wide = _numeric(values, col.name)
        finite = np.isfinite(wide)
        if not finite.all():
            nan = np.isnan(wide)
            if (~finite & ~nan).any():
                row = int(np.flatnonzero(~finite & ~nan)[0])
                raise RequestError(
                    f"column {col.name!r}, row {row}: {wide[row]} is not a finite number "
                    f"(or does not fit a 32-bit float)",
                    field=col.name,
                )
            if not col.nullable:
                row = int(np.flatnonzero(nan)[0])
                raise RequestError(
                    f"column {col.name!r}, row {row}: a value is required (the column is not "
                    "nullable)",
                    field=col.name,
                )
        if col.minimum is not None and col.maximum is not None:
            with np.errstate(invalid="ignore"):
                outside = int(np.count_nonzero((wide < col.minimum) | (wide > col.maximum)))
            if outside:
                checked.out_of_range[col.name] = outside
        return wide.astype(np.float32)

    def _categorical(
        self, col: ColumnSpec, values: Sequence[Any] | np.ndarray, checked: Checked
    ) -> np.ndarray:
        reject = self.unseen_categories == "reject"
        known = col.known
        if len(values) > DISTINCT_ABOVE:  # a large column: each distinct value checked once
            texts = map_distinct(values, lambda value, row: _category(col, value, row, reject))
            if known is not None:
                unseen_rows = map_distinct(
                    texts, lambda text, _: text != MISSING_CATEGORY and text not in known, bool
                )
                unseen = int(np.count_nonzero(unseen_rows))
                if unseen:
                    checked.unseen[col.name] = unseen
            return texts
        out = np.empty(len(values), dtype=object)
        unseen = 0
        for i, value in enumerate(values):  # the rule of _category, inline (the serving path)
            if isinstance(value, list | dict | tuple):
                _category(col, value, i, reject)  # raises
            text = category_text(value)
            if text == MISSING_CATEGORY:
                if not col.nullable:
                    _category(col, value, i, reject)  # raises
            elif known is not None and text not in known:
                if reject:
                    _category(col, value, i, reject)  # raises
                unseen += 1
            out[i] = text
        if unseen:
            checked.unseen[col.name] = unseen
        return out


class _ScalarPlan:
    """The few-rows check of one numeric or categorical column, with its settings at hand.

    :meth:`feed` handles the ordinary values (numbers, known or unseen categories)
    exactly as the general path does; at the first value it does not handle (text
    in a numeric column, a missing value where none is allowed, anything refused)
    it returns None and the column goes through the general path, which decides
    and words the error. A categorical column remembers the category text of up
    to :data:`MEMO_SIZE` distinct raw values.
    """

    __slots__ = (
        "col",
        "feed",
        "high",
        "known",
        "low",
        "memo",
        "name",
        "nullable",
        "ranged",
        "rules",
    )

    def __init__(self, col: ColumnSpec) -> None:
        self.col = col
        self.name = col.name
        #: ``feed(values, checked, reject)``: the (rows, 1) feed, or None for the general path
        self.feed = self._numbers if col.kind == "numeric" else self._texts
        self.rules = col.rules
        self.nullable = col.nullable
        self.ranged = col.minimum is not None and col.maximum is not None
        self.low = col.minimum if col.minimum is not None else -math.inf
        self.high = col.maximum if col.maximum is not None else math.inf
        self.known = col.known
        self.memo: dict[Any, tuple[str, bool, np.ndarray]] = {}

    def _numbers(self, values: Sequence[Any], checked: Checked, reject: bool) -> np.ndarray | None:
        rules = self.rules
        out = np.empty((len(values), 1), dtype=np.float32)
        outside = 0
        for i, value in enumerate(values):
            kind = type(value)
            if kind is float or kind is int:
                x = float(value) if rules is None else finish_number(float(value), rules)
            elif value is None and rules is None:
                x = math.nan
            elif rules is not None and (value is None or kind is str):
                x = clean_value(value, rules)
                if type(x) is not float:
                    return None
            else:
                return None
            if math.isnan(x):  # missing
                if not self.nullable:
                    return None
            elif not -_FLOAT32_MAX <= x <= _FLOAT32_MAX:
                return None
            elif self.ranged and (x < self.low or x > self.high):
                outside += 1
            out[i, 0] = x
        if outside:
            checked.out_of_range[self.name] = outside
        return out

    def _lookup(self, value: Any) -> tuple[str, bool, np.ndarray] | None:
        """The remembered entry of a raw value (made on first sight); None: the general path."""
        kind = type(value)
        key = value if kind is str else ((kind, value) if kind is int or kind is float else None)
        found = self.memo.get(key) if key is not None else None
        if found is None:
            found = self._remember(key, value)
        return found

    def _texts(self, values: Sequence[Any], checked: Checked, reject: bool) -> np.ndarray | None:
        if len(values) == 1:  # one row: the remembered feed itself (read-only, shared)
            found = self._lookup(values[0])
            if found is None:
                return None
            if found[1]:
                if reject:
                    return None
                checked.unseen[self.name] = 1
            return found[2]
        out = np.empty((len(values), 1), dtype=object)
        unseen = 0
        for i, value in enumerate(values):
            found = self._lookup(value)
            if found is None:
                return None
            if found[1]:
                if reject:
                    return None
                unseen += 1
            out[i, 0] = found[0]
        if unseen:
            checked.unseen[self.name] = unseen
        return out

    def _remember(self, key: Any, value: Any) -> tuple[str, bool, np.ndarray] | None:
        """Category text, whether training did not see it, and the one-row feed of a raw
        value, remembered under ``key`` (None: not remembered)."""
        found = self._text(value)
        if found is None:
            return None
        feed = np.empty((1, 1), dtype=object)
        feed[0, 0] = found[0]
        feed.flags.writeable = False
        entry = (found[0], found[1], feed)
        if key is not None:
            if len(self.memo) >= MEMO_SIZE:
                self.memo.clear()
            self.memo[key] = entry
        return entry

    def _text(self, value: Any) -> tuple[str, bool] | None:
        """The category text of one raw value and whether training did not see it; None
        when the general path must decide (it refuses the value)."""
        cleaned = clean_value(value, self.rules) if self.rules is not None else value
        if isinstance(cleaned, list | dict | tuple):
            return None
        text = category_text(cleaned)
        if text == MISSING_CATEGORY:
            return (text, False) if self.nullable else None
        return text, self.known is not None and text not in self.known


def _category(col: ColumnSpec, value: Any, row: int, reject: bool) -> str:
    """One value of a categorical column as its category text; raises naming the row."""
    if isinstance(value, list | dict | tuple):
        raise RequestError(
            f"column {col.name!r}, row {row}: expected one category value, got "
            f"{type(value).__name__}",
            field=col.name,
        )
    text = category_text(value)
    if text == MISSING_CATEGORY:
        if not col.nullable:
            raise RequestError(
                f"column {col.name!r}, row {row}: a value is required (the column is not nullable)",
                field=col.name,
            )
    elif reject and col.known is not None and text not in col.known:
        raise RequestError(
            f"column {col.name!r}, row {row}: category {text!r} was not seen in "
            f"training; known: {', '.join(sorted(col.known)[:20])}",
            field=col.name,
        )
    return text


def _datetimes(col: ColumnSpec, values: Sequence[Any] | np.ndarray) -> np.ndarray:
    """Dates as float64 epoch seconds (NaN where missing); raises naming the row."""
    if isinstance(values, np.ndarray) and values.dtype.kind == "M":
        stamps = values.astype("datetime64[us]")
        out = (stamps - np.datetime64(0, "us")).astype(np.int64).astype(np.float64) / 1e6
        out[np.isnat(stamps)] = np.nan
    elif isinstance(values, np.ndarray) and values.dtype.kind in "fiu":
        out = values.astype(np.float64)
    else:
        out = map_distinct(values, lambda value, row: _date(col, value, row), np.float64)
    bad = np.isinf(out)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise RequestError(f"column {col.name!r}, row {row}: not a finite date", field=col.name)
    if not col.nullable and np.isnan(out).any():
        row = int(np.flatnonzero(np.isnan(out))[0])
        raise RequestError(
            f"column {col.name!r}, row {row}: a value is required (the column is not nullable)",
            field=col.name,
        )
    return out


def _date(col: ColumnSpec, value: Any, row: int) -> float:
    try:
        return to_epoch_seconds(value, col.formats, MISSING_MARKERS)
    except ValueError as exc:
        raise RequestError(f"column {col.name!r}, row {row}: {exc}", field=col.name) from exc


def _numeric_scalars(col: ColumnSpec, values: Sequence[Any], checked: Checked) -> np.ndarray:
    """The same checks as the vectorised path, in plain Python (faster for a few rows)."""
    out: list[float] = []
    low, high = col.minimum, col.maximum
    ranged = low is not None and high is not None
    outside = 0
    for i, value in enumerate(values):
        kind = type(value)
        x = float(value) if kind is float or kind is int else _to_number(value, col.name, i)
        if math.isnan(x):
            if not col.nullable:
                raise RequestError(
                    f"column {col.name!r}, row {i}: a value is required (the column is not "
                    "nullable)",
                    field=col.name,
                )
        elif not -_FLOAT32_MAX <= x <= _FLOAT32_MAX:
            raise RequestError(
                f"column {col.name!r}, row {i}: {x} is not a finite number "
                f"(or does not fit a 32-bit float)",
                field=col.name,
            )
        elif ranged and (x < low or x > high):  # type: ignore[operator]
            outside += 1
        out.append(x)
    if outside:
        checked.out_of_range[col.name] = outside
    return np.array(out, dtype=np.float32)


def _numeric(values: Sequence[Any] | np.ndarray, name: str) -> np.ndarray:
    """Values as float64 (NaN for missing); raises on anything that is not a number."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "fiu":
        wide = values.astype(np.float64)
    elif all(type(v) is float or type(v) is int for v in values):
        wide = np.asarray(values, dtype=np.float64)
    else:
        wide = map_distinct(values, lambda value, row: _to_number(value, name, row), np.float64)
    with np.errstate(over="ignore"):
        too_big = np.abs(wide) > _FLOAT32_MAX
    if too_big.any():
        wide[too_big] = np.inf
    return wide


def _to_number(value: Any, name: str, row: int) -> float:
    if value is None:
        return math.nan
    if isinstance(value, bool | np.bool_):
        raise RequestError(
            f"column {name!r}, row {row}: expected a number, got a boolean", field=name
        )
    if isinstance(value, int | float | np.integer | np.floating):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in MISSING_MARKERS:
            return math.nan
        try:
            return float(text.replace(",", ""))
        except ValueError:
            pass
    shown = repr(value) if len(repr(value)) < 60 else repr(value)[:57] + "..."
    raise RequestError(f"column {name!r}, row {row}: expected a number, got {shown}", field=name)


def category_text(value: Any) -> str:
    """The string a raw value becomes as a category (the same rule as in training)."""
    if value is None:
        return MISSING_CATEGORY
    if isinstance(value, str):
        text = value.strip()
        return MISSING_CATEGORY if text.lower() in MISSING_MARKERS else text
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return MISSING_CATEGORY
        if float(value).is_integer():
            return str(int(value))
    return str(value)
