"""Bracketed quantiles against numpy on large arrays of many shapes."""

from __future__ import annotations

import numpy as np
import pytest

from tabpipe.data.quantiles import BRACKET_ABOVE, median, quantiles

N = BRACKET_ABOVE + 1001
RNG = np.random.default_rng(7)
SHAPES = {
    "normal": RNG.normal(50, 10, N),
    "lognormal": RNG.lognormal(3, 1, N),
    "few integers": RNG.integers(0, 10, N).astype(np.float64),
    "extreme outliers": np.where(RNG.random(N) < 0.001, 1e6, RNG.normal(0, 1, N)),
    "constant": np.ones(N),
    "sorted": np.arange(N, dtype=np.float64),
    "reversed": np.arange(N, dtype=np.float64)[::-1].copy(),
    "two values": np.r_[np.zeros(N // 2), np.ones(N - N // 2)],
    "even length": RNG.normal(0, 1, N + 1),
    "sample misses the tail": np.r_[np.zeros(N - 50), np.full(50, 7.0)],
}


@pytest.mark.parametrize("name", SHAPES)
def test_same_as_numpy_bit_for_bit(name: str) -> None:
    values = SHAPES[name]
    before = values.copy()
    qs = [0.0, 0.01, 0.25, 0.5, 0.75, 0.999, 1.0]
    assert quantiles(values, qs) == [float(v) for v in np.quantile(values, qs)]
    assert median(values) == float(np.median(values))
    np.testing.assert_array_equal(values, before)  # the input is not reordered


def test_small_arrays_go_to_numpy() -> None:
    values = np.array([3.0, 1.0, 2.0, 10.0])
    assert quantiles(values, [0.5]) == [2.5] and median(values) == 2.5


@pytest.mark.parametrize("seed", range(8))
def test_random_quantiles_of_heavy_tails(seed: int) -> None:
    rng = np.random.default_rng(seed)
    values = rng.standard_t(3, BRACKET_ABOVE + seed * 997)
    qs = [float(q) for q in rng.random(6)]
    assert quantiles(values, qs) == [float(v) for v in np.quantile(values, qs)]
