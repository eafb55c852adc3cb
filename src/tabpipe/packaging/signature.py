"""The input signature of a bundle, and the conversion of request data to model feeds.

This module is on the serving path: it needs numpy and pydantic only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel

from tabpipe.errors import RequestError

MISSING_CATEGORY = ""
MISSING_MARKERS = frozenset({"", "?", "na", "n/a", "nan", "null", "none", "-", "--"})


class ColumnSpec(BaseModel):
    """One input column: its kind, what was seen in training, and whether it is required."""

    name: str
    kind: Literal["numeric", "categorical"]
    required: bool = True
    nullable: bool = True
    categories: list[str] | None = None
    minimum: float | None = None
    maximum: float | None = None
    median: float | None = None

    @property
    def datatype(self) -> str:
        """The Open Inference Protocol datatype of this column."""
        return "FP32" if self.kind == "numeric" else "BYTES"


class Signature(BaseModel):
    columns: list[ColumnSpec]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def to_feeds(self, data: Mapping[str, Sequence[Any] | np.ndarray]) -> dict[str, np.ndarray]:
        """Validate column data and cast it to model feeds of shape (rows, 1).

        Extra columns are ignored. A missing column, a value that cannot be
        cast losslessly, or columns of unequal length raise :class:`RequestError`
        naming the column and row.
        """
        missing = [c.name for c in self.columns if c.name not in data]
        if missing:
            raise RequestError(
                f"missing column(s) {', '.join(map(repr, missing))}; the model needs: "
                f"{', '.join(self.names)}",
                field=missing[0],
            )
        lengths = {len(data[c.name]) for c in self.columns}
        if len(lengths) != 1:
            raise RequestError(f"columns have different lengths: {sorted(lengths)}")
        if lengths == {0}:
            raise RequestError("the request holds no rows")
        feeds = {}
        for col in self.columns:
            values = data[col.name]
            if col.kind == "numeric":
                feeds[col.name] = _numeric(values, col.name).reshape(-1, 1)
            else:
                feeds[col.name] = _categorical(values).reshape(-1, 1)
        return feeds


def _numeric(values: Sequence[Any] | np.ndarray, name: str) -> np.ndarray:
    if isinstance(values, np.ndarray) and values.dtype.kind in "fiu":
        return values.astype(np.float32)
    try:
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            return np.asarray(values, dtype=np.float32)
    except TypeError:
        pass
    out = np.empty(len(values), dtype=np.float32)
    for i, value in enumerate(values):
        out[i] = _to_number(value, name, i)
    return out


def _to_number(value: Any, name: str, row: int) -> float:
    if value is None:
        return math.nan
    if isinstance(value, bool):
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
    raise RequestError(f"column {name!r}, row {row}: expected a number, got {value!r}", field=name)


def _categorical(values: Sequence[Any] | np.ndarray) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        out[i] = category_text(value)
    return out


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
