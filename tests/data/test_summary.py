"""Numeric summaries against numpy and pandas, on large arrays of many shapes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tabpipe.data.quantiles import BRACKET_ABOVE, sorted_quantiles
from tabpipe.data.summary import (
    BINS,
    DISTINCT_SAMPLE,
    distinct_count,
    finite_values,
    histogram_counts,
    summarise,
)

N = BRACKET_ABOVE + 2_345
RNG = np.random.default_rng(11)
SHAPES = {
    "normal with gaps": np.where(RNG.random(N) < 0.05, np.nan, RNG.normal(50, 10, N)),
    "lognormal": RNG.lognormal(3, 1, N),
    "few integers": RNG.integers(-3, 7, N).astype(np.float64),
    "wide integers": RNG.integers(0, 10**6, N).astype(np.float64),
    "huge integers": RNG.integers(0, 2**50, N).astype(np.float64),
    "extreme outliers": np.where(RNG.random(N) < 0.001, 1e6, RNG.normal(0, 1, N)),
    "infinities": np.where(RNG.random(N) < 0.01, np.inf, RNG.normal(0, 1, N)),
    "constant": np.full(N, 4.0),
    "small": RNG.normal(0, 1, 37),
}


@pytest.mark.parametrize("name", SHAPES)
def test_summary_equals_numpy(name: str) -> None:
    values = SHAPES[name]
    finite = finite_values(values)
    summary = summarise(finite, values.size, int(np.isnan(values).sum()))
    assert summary.count == values.size - int(np.isnan(values).sum())
    assert summary.minimum == finite.min() and summary.maximum == finite.max()
    assert summary.mean == float(finite.mean())
    assert summary.std == pytest.approx(float(finite.std(ddof=1)), rel=1e-12)
    if summary.std:
        z = (finite - finite.mean()) / finite.std(ddof=1)
        assert summary.skew == pytest.approx(float(np.mean(z**3)), rel=1e-9, abs=1e-12)
    assert [summary.q25, summary.q50, summary.q75] == [
        float(v) for v in np.quantile(finite, [0.25, 0.5, 0.75])
    ]
    assert summary.median == float(np.median(finite))
    assert summary.distinct_head == len(np.unique(finite[:DISTINCT_SAMPLE]))
    assert sum(summary.counts) == finite.size
    low, high = float(finite.min()), float(finite.max())
    if high - low >= BINS or not (low.is_integer() and high.is_integer()):
        counts, edges = np.histogram(
            finite, bins=BINS, range=(low, high if high > low else low + 1)
        )
        assert list(summary.counts) == counts.tolist() and list(summary.edges) == edges.tolist()
    else:  # one bar per value
        assert list(summary.counts) == np.bincount((finite - low).astype(np.int64)).tolist()


def test_an_empty_column_has_no_statistics() -> None:
    summary = summarise(np.empty(0), 5, 5)
    assert summary.count == 0 and summary.minimum is None and summary.counts == ()


@pytest.mark.parametrize(
    "values",
    [
        np.array([0.0, -0.0, 1.0, 1.0, 3.0]),
        RNG.integers(-50, 50, 10_000).astype(np.float64),
        RNG.integers(0, 10**9, 10_000).astype(np.float64),  # too wide for a bitmap
        np.r_[RNG.integers(0, 100, 10_000).astype(np.float64), 0.5],  # one fraction
        RNG.normal(size=10_000),
        np.array([7.0]),
        np.empty(0),
    ],
)
def test_distinct_count_is_exact(values: np.ndarray) -> None:
    assert distinct_count(values) == len(pd.unique(values))


def test_histogram_of_few_integers_has_a_bar_per_value() -> None:
    values = np.array([2.0, 3.0, 3.0, 5.0])
    edges, counts = histogram_counts(values, 2.0, 5.0, BINS)
    assert counts == [1, 2, 0, 1] and edges == [1.5, 2.5, 3.5, 4.5, 5.5]


@pytest.mark.parametrize("n", [1, 2, 5, 101, 20_000])
def test_quantiles_of_a_sorted_array_equal_numpy(n: int) -> None:
    values = np.sort(RNG.standard_t(2, n))
    qs = [float(q) for q in np.linspace(0, 1, 21)]
    assert sorted_quantiles(values, qs) == [float(v) for v in np.quantile(values, qs)]
