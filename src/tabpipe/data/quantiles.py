"""Exact quantiles of a large array without partitioning all of it.

A strided sample brackets each wanted order statistic (brackets that overlap are
merged, so neighbouring ranks share one); one comparison pass per bracket counts
the values below it and keeps the few inside it, and only those are partitioned.
The counts prove the bracket holds the order statistic (else the whole array is
partitioned, as ``numpy.quantile`` would), so the result is exactly
``numpy.quantile(values, qs)`` (linear interpolation) and ``numpy.median(values)``.
"""

from __future__ import annotations

import numpy as np

#: arrays at least this long use brackets; shorter ones go to numpy.quantile
BRACKET_ABOVE = 100_000
_SAMPLE = 20_000
_SLACK = 0.01


def quantiles(values: np.ndarray, qs: list[float]) -> list[float]:
    """``numpy.quantile(values, qs)`` for finite float64 ``values`` (not modified)."""
    return quantiles_and_median(values, qs)[0]


def median(values: np.ndarray) -> float:
    """``numpy.median(values)`` for finite float64 ``values`` (not modified)."""
    if values.size < BRACKET_ABOVE:
        return float(np.median(values))
    n = values.size
    ranks = [(n - 1) // 2, n // 2]
    stats = _order_statistics(values, sorted(set(ranks)))
    return _mean_of(stats[ranks[0]], stats[ranks[1]])


def quantiles_and_median(values: np.ndarray, qs: list[float]) -> tuple[list[float], float]:
    """``(numpy.quantile(values, qs), numpy.median(values))`` from one set of order
    statistics, for finite float64 ``values`` (not modified)."""
    n = values.size
    if n < BRACKET_ABOVE:
        return [float(v) for v in np.quantile(values, qs)], float(np.median(values))
    middle = [(n - 1) // 2, n // 2]
    wanted = {r for pair in _ranks(n, qs) for r in pair[:2]}
    stats = _order_statistics(values, sorted(wanted | set(middle)))
    return _interpolate(stats, n, qs), _mean_of(stats[middle[0]], stats[middle[1]])


def sorted_quantiles(ordered: np.ndarray, qs: list[float]) -> list[float]:
    """``numpy.quantile(ordered, qs)`` of an array already sorted ascending (no NaN)."""
    n = ordered.size
    ranks = {r for pair in _ranks(n, qs) for r in pair[:2]}
    return _interpolate({r: float(ordered[r]) for r in ranks}, n, qs)


def _ranks(n: int, qs: list[float]) -> list[tuple[int, int, float]]:
    """Per quantile, the two ranks and the weight of numpy's "linear" method."""
    virtual = (n - 1) * np.asarray(qs, dtype=np.float64)
    below = np.floor(virtual)
    gamma = virtual - below
    return [
        (int(min(max(b, 0), n - 1)), int(min(max(b + 1, 0), n - 1)), float(t))
        for b, t in zip(below, gamma, strict=True)
    ]


def _interpolate(stats: dict[int, float], n: int, qs: list[float]) -> list[float]:
    """numpy's linear interpolation between the order statistics (bit for bit)."""
    out = []
    for low, high, t in _ranks(n, qs):
        lo, hi = np.float64(stats[low]), np.float64(stats[high])
        diff = hi - lo
        out.append(float(hi - diff * (1 - t) if t >= 0.5 else lo + diff * t))
    return out


def _mean_of(a: float, b: float) -> float:
    """The mean of two order statistics as ``numpy.median`` computes it."""
    return float(np.mean(np.array([a, b])))


def _order_statistics(values: np.ndarray, ranks: list[int]) -> dict[int, float]:
    """The values of the given ranks (ascending) in sorted order."""
    n = values.size
    sample = np.sort(values[:: max(1, n // _SAMPLE)])
    last = sample.size - 1
    brackets: list[tuple[float, float, list[int]]] = []
    for rank in ranks:
        p = rank / max(n - 1, 1)
        lo = float(sample[max(int((p - _SLACK) * last), 0)])
        hi = float(sample[min(int(np.ceil((p + _SLACK) * last)), last)])
        if brackets and lo <= brackets[-1][1]:  # overlaps the previous bracket: one pass
            start, end, group = brackets[-1]
            brackets[-1] = (start, max(end, hi), [*group, rank])
        else:
            brackets.append((lo, hi, [rank]))
    out: dict[int, float] = {}
    for lo, hi, group in brackets:
        at_least = values >= lo
        under = n - int(np.count_nonzero(at_least))
        at_least &= values <= hi
        inside = values[at_least]
        del at_least
        if all(under <= rank < under + inside.size for rank in group):
            ks = [rank - under for rank in group]
            parted = np.partition(inside, ks)
            out.update((rank, float(parted[k])) for rank, k in zip(group, ks, strict=True))
        else:  # the sample missed: partition everything
            parted = np.partition(values, group)
            out.update((rank, float(parted[rank])) for rank in group)
    return out
