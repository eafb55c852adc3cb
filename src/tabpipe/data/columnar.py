"""Per-value checks of a large column run once per distinct value, then spread to the rows.

Batch scoring checks millions of rows whose text and object columns repeat a few
distinct values. :func:`map_distinct` applies a per-value function to each distinct
value (and to each missing one) instead of each row, and reports the first failing
row, so the result and the error are those of a row-by-row loop. Only columns whose
values are all of one kind are grouped (``1``, ``1.0`` and ``True`` hash alike but are
not the same value to a check); any other column, and any small one, is checked row by
row, so callers get the same array either way.

pandas is imported lazily, only for a column of more than :data:`DISTINCT_ABOVE` rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tabpipe.errors import RequestError

#: Columns up to this many rows are checked value by value.
DISTINCT_ABOVE = 2048
#: pandas ``infer_dtype`` kinds whose equal values are equal to every check.
_GROUPABLE = frozenset({"string", "integer", "floating", "mixed-integer-float", "boolean", "empty"})


def object_array(values: Sequence[Any] | np.ndarray) -> np.ndarray:
    """``values`` as a one-dimensional object array (nested lists stay whole values)."""
    if isinstance(values, np.ndarray) and values.dtype == object:
        return values
    out = np.empty(len(values), dtype=object)
    out[:] = list(values) if not isinstance(values, np.ndarray) else values
    return out


def groupable(array: np.ndarray) -> bool:
    """Whether equal values of ``array`` are the same value to any check (one kind of value)."""
    import pandas as pd

    return pd.api.types.infer_dtype(array, skipna=True) in _GROUPABLE


def map_distinct(
    values: Sequence[Any] | np.ndarray,
    fn: Callable[[Any, int], Any],
    dtype: Any = object,
) -> np.ndarray:
    """``fn(value, row)`` for every row; once per distinct value on a large groupable column.

    ``fn`` raises :class:`RequestError` (naming ``row``) for a bad value; the error
    raised here is the one the row-by-row loop would raise first.
    """
    if len(values) > DISTINCT_ABOVE:
        array = object_array(values)
        if groupable(array):
            return _by_distinct(array, fn, dtype)
    out = np.empty(len(values), dtype=dtype)
    for i, value in enumerate(values):
        out[i] = fn(value, i)
    return out


def _by_distinct(array: np.ndarray, fn: Callable[[Any, int], Any], dtype: Any) -> np.ndarray:
    import pandas as pd

    codes, uniques = pd.factorize(array, use_na_sentinel=True)
    codes = np.asarray(codes)
    present = np.flatnonzero(codes >= 0)
    _, first = np.unique(codes[present], return_index=True)
    firsts = present[first]  # the first row of each distinct value (they are in that order)
    mapped = np.empty(len(uniques) + 1, dtype=dtype)
    failed: list[int] = []
    for j, value in enumerate(uniques):
        try:
            mapped[j] = fn(value, int(firsts[j]))
        except RequestError:
            failed.append(int(firsts[j]))
            break  # later distinct values first appear later
    missing = np.flatnonzero(codes < 0)
    by_type: dict[type, Any] = {}
    for row in missing:  # None, NaN, NaT: grouped by type (their checks differ)
        value = array[row]
        if type(value) not in by_type:
            try:
                by_type[type(value)] = fn(value, int(row))
            except RequestError:
                failed.append(int(row))
                break
    if failed:
        bad = min(failed)
        fn(array[bad], bad)  # raises the row loop's error for that row
    out: np.ndarray = mapped[codes]
    if len(by_type) == 1:
        out[missing] = next(iter(by_type.values()))
    else:
        for row in missing:
            out[row] = by_type[type(array[row])]
    return out
