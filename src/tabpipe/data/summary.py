"""The statistics of one numeric column, computed once from one copy of its values.

Cleaning decides with some of them (range, median, distinct values) and the
profile shows all of them, so ``tabpipe eda`` computes them while cleaning and
hands them to the profile when the profiled rows and values are the ones
summarised. Every figure is exact except ``distinct_head``, which counts the
distinct values among the first :data:`DISTINCT_SAMPLE` ones (the profile says so).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tabpipe.data.quantiles import quantiles_and_median

#: the profile counts the distinct values of a numeric column among this many first ones
DISTINCT_SAMPLE = 200_000
#: equal-width histogram bars
BINS = 30
#: whole numbers spanning at most this many times their count are counted in a bitmap
_BITMAP_SPAN = 8


@dataclass(frozen=True)
class NumericSummary:
    """Statistics of the finite values of a float64 column (NaN is missing)."""

    size: int
    missing: int
    minimum: float | None = None
    maximum: float | None = None
    mean: float | None = None
    std: float | None = None
    skew: float | None = None
    q25: float | None = None
    q50: float | None = None
    q75: float | None = None
    #: ``numpy.median`` of the finite values (may differ from q50 in the last bit)
    median: float | None = None
    distinct_head: int = 0
    edges: tuple[float, ...] = ()
    counts: tuple[int, ...] = ()

    @property
    def count(self) -> int:
        """The number of present (non-missing) values."""
        return self.size - self.missing


def finite_values(values: np.ndarray) -> np.ndarray:
    """The finite values of a float64 array, in order (a new array)."""
    finite: np.ndarray = values[np.isfinite(values)]
    return finite


def summarise(finite: np.ndarray, size: int, missing: int) -> NumericSummary:
    """The summary of ``finite`` (the finite values of a column of ``size`` values, of
    which ``missing`` are NaN); ``finite`` is not modified."""
    n = finite.size
    if n == 0:
        return NumericSummary(size=size, missing=missing)
    mean = float(finite.mean())
    deviation = finite - mean
    # einsum, not np.dot: BLAS would hand each product to its own threads (slow next to the
    # column threads, and its sums depend on how many it uses); einsum is one pass, no copy
    squares = float(np.einsum("i,i->", deviation, deviation))
    std = float(np.sqrt(squares / (n - 1))) if n > 1 else 0.0
    cubes = float(np.einsum("i,i,i->", deviation, deviation, deviation))
    skew = cubes / n / std**3 if std > 0 else 0.0
    del deviation
    low, high = float(finite.min()), float(finite.max())
    (q25, q50, q75), middle = quantiles_and_median(finite, [0.25, 0.5, 0.75])
    edges, counts = histogram_counts(finite, low, high, BINS)
    return NumericSummary(
        size=size,
        missing=missing,
        minimum=low,
        maximum=high,
        mean=mean,
        std=std,
        skew=skew,
        q25=q25,
        q50=q50,
        q75=q75,
        median=middle,
        distinct_head=distinct_count(finite[:DISTINCT_SAMPLE]),
        edges=tuple(edges),
        counts=tuple(counts),
    )


def distinct_count(finite: np.ndarray) -> int:
    """The number of distinct values of ``finite`` (exact); whole numbers of a narrow
    range are marked in a bitmap instead of a hash table."""
    if finite.size == 0:
        return 0
    low, high = float(finite.min()), float(finite.max())
    if low == high:
        return 1
    span = high - low
    if span <= _BITMAP_SPAN * finite.size and low.is_integer() and high.is_integer():
        offsets = finite - low
        positions = offsets.astype(np.int64)
        if np.array_equal(positions, offsets):  # every value is a whole number
            seen = np.zeros(int(span) + 1, dtype=bool)
            seen[positions] = True
            return int(np.count_nonzero(seen))
    import pandas as pd

    return len(pd.unique(finite))


def histogram_counts(
    finite: np.ndarray, low: float, high: float, bins: int
) -> tuple[list[float], list[int]]:
    """Bar edges and counts of finite values whose minimum and maximum are known:
    one bar per value for a few small integers, else ``bins`` equal-width bars."""
    if high - low < bins and low.is_integer() and high.is_integer():
        offsets = finite - low  # in [0, bins): whole exactly when the cast keeps them
        head = offsets[:10_000]
        if np.array_equal(head.astype(np.int64), head):
            positions = offsets.astype(np.int64)
            if np.array_equal(positions, offsets):
                counts = np.bincount(positions)
                edges = np.arange(low - 0.5, high + 1.0)
                return [float(e) for e in edges], [int(c) for c in counts]
    counts, edges = np.histogram(finite, bins=bins, range=(low, high if high > low else low + 1))
    return [float(e) for e in edges], [int(c) for c in counts]
