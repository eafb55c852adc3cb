"""Exact quantiles of a large array without partitioning all of it.

A strided sample brackets each wanted order statistic; one comparison pass
counts the values below the bracket and keeps the few inside it, and only those
are partitioned. The counts prove the bracket holds the order statistic (else
the whole array is partitioned, as ``numpy.quantile`` would), so the result is
exactly ``numpy.quantile(values, qs)`` (linear interpolation).
"""

from __future__ import annotations

import numpy as np

#: arrays at least this long use brackets; shorter ones go to numpy.quantile
BRACKET_ABOVE = 100_000
_SAMPLE = 20_000
_SLACK = 0.01


def quantiles(values: np.ndarray, qs: list[float]) -> list[float]:
    """``numpy.quantile(values, qs)`` for finite float64 ``values`` (not modified)."""
    n = values.size
    if n < BRACKET_ABOVE:
        return [float(v) for v in np.quantile(values, qs)]
    # the virtual index, weight and interpolation of numpy's "linear" method
    virtual = (n - 1) * np.asarray(qs, dtype=np.float64)
    below = np.floor(virtual)
    gamma = virtual - below
    ranks = sorted({int(min(max(r, 0), n - 1)) for b in below for r in (b, b + 1)})
    stats = _order_statistics(values, ranks)
    out = []
    for b, t in zip(below, gamma, strict=True):
        lo = np.float64(stats[int(min(max(b, 0), n - 1))])
        hi = np.float64(stats[int(min(max(b + 1, 0), n - 1))])
        diff = hi - lo
        out.append(float(hi - diff * (1 - t) if t >= 0.5 else lo + diff * t))
    return out


def _order_statistics(values: np.ndarray, ranks: list[int]) -> dict[int, float]:
    n = values.size
    sample = np.sort(values[:: max(1, n // _SAMPLE)])
    out: dict[int, float] = {}
    for rank in ranks:
        p = rank / max(n - 1, 1)
        lo = sample[max(int((p - _SLACK) * (sample.size - 1)), 0)]
        hi = sample[min(int(np.ceil((p + _SLACK) * (sample.size - 1))), sample.size - 1)]
        under = int(np.count_nonzero(values < lo))
        # a value repeated across the whole bracket (few distinct values)
        if lo == hi and under <= rank < int(np.count_nonzero(values <= lo)):
            out[rank] = float(lo)
            continue
        inside = values[(values >= lo) & (values <= hi)]
        if under <= rank < under + inside.size:
            k = rank - under
            out[rank] = float(np.partition(inside, k)[k])
        else:  # the sample missed: partition everything
            out[rank] = float(np.partition(values, rank)[rank])
    return out


def median(values: np.ndarray) -> float:
    """``numpy.median(values)`` for finite float64 ``values`` (not modified)."""
    n = values.size
    if n < BRACKET_ABOVE:
        return float(np.median(values))
    ranks = [(n - 1) // 2, n // 2]
    stats = _order_statistics(values, sorted(set(ranks)))
    return float(np.mean(np.array([stats[ranks[0]], stats[ranks[1]]])))
