"""Drift statistics per feature, against a reference prepared once.

- numeric: two-sample Kolmogorov-Smirnov (asymptotic p-value), Wasserstein-1
  distance divided by the reference standard deviation (the effect size), PSI
  on the reference deciles; all from one merge of two sorted arrays.
- categorical: chi-squared test of homogeneity, Jensen-Shannon distance (base 2,
  the effect size), PSI, and the share of current rows in unseen categories.
- missing share: a two-proportion z-test with the absolute change as effect.

A decision needs both: the p-value after Benjamini-Hochberg correction across
every test of the window below ``alpha``, and the effect above its threshold.
On big data a p-value alone flags everything; on small data an effect alone is
noise. A window with fewer than ``min_rows`` rows is reported as too small.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel
from scipy import special, stats

from tabpipe.monitoring.spec import EffectSpec

Kind = Literal["numeric", "categorical"]
EPS = 1e-4
PSI_BINS = 10
GRID = 4096


class DriftTest(BaseModel):
    """One test in one window."""

    feature: str
    kind: Literal["numeric", "categorical", "missing"]
    test: Literal["ks", "chi2", "z"]
    statistic: float
    p_value: float
    p_adjusted: float = 1.0
    effect_name: Literal["wasserstein_norm", "jensen_shannon", "missing_delta"]
    effect: float
    threshold: float
    psi: float | None = None
    unseen_share: float | None = None
    n_reference: int
    n_current: int
    significant: bool = False
    alarm: bool = False


@dataclass
class NumericRef:
    sorted_values: np.ndarray
    grid: np.ndarray
    std: float
    edges: np.ndarray
    props: np.ndarray
    missing: int
    total: int


@dataclass
class CategoricalRef:
    counts: pd.Series
    missing: int
    total: int


Ref = NumericRef | CategoricalRef


def numeric_reference(values: np.ndarray) -> NumericRef:
    values = np.asarray(values, dtype=np.float64)
    nan = np.isnan(values)
    clean = np.sort(values[~nan])
    std = float(clean.std()) if clean.size else 0.0
    if clean.size:
        at = (np.linspace(0, 1, PSI_BINS + 1)[1:-1] * (clean.size - 1)).astype(np.int64)
        edges = np.unique(clean[at])
    else:
        edges = np.array([])
    props = _bin_props(clean, edges)
    grid = (
        clean[(np.linspace(0, 1, GRID + 1) * (clean.size - 1)).astype(np.int64)]
        if clean.size
        else clean
    )
    return NumericRef(clean, np.unique(grid), std, edges, props, int(nan.sum()), values.size)


def categorical_reference(values: pd.Series, missing_text: str = "") -> CategoricalRef:
    counts = values.value_counts(dropna=False)
    missing = int(counts.get(missing_text, 0))
    return CategoricalRef(counts.drop(missing_text, errors="ignore"), missing, len(values))


def _bin_props(sorted_values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    idx = np.searchsorted(sorted_values, edges, side="right")
    counts = np.diff(np.concatenate([[0], idx, [sorted_values.size]]))
    return counts / max(sorted_values.size, 1)


def psi(ref: np.ndarray, cur: np.ndarray) -> float:
    r = np.clip(ref, EPS, None)
    c = np.clip(cur, EPS, None)
    return float(np.sum((c - r) * np.log(c / r)))


def numeric_test(name: str, ref: NumericRef, values: np.ndarray, effect: float) -> DriftTest:
    values = np.asarray(values, dtype=np.float64)
    cur = values[~np.isnan(values)]
    n, m = ref.sorted_values.size, cur.size
    if n == 0 or m == 0:
        return DriftTest(
            feature=name,
            kind="numeric",
            test="ks",
            statistic=0.0,
            p_value=1.0,
            effect_name="wasserstein_norm",
            effect=0.0,
            threshold=effect,
            n_reference=n,
            n_current=m,
        )
    if n + m <= EXACT_LIMIT:
        cur = np.sort(cur)
        d, w = ks_wasserstein(ref.sorted_values, cur)
        cur_props = _bin_props(cur, ref.edges)
    else:
        d, w, cur_props = _on_grid(ref, cur)
    en = math.sqrt(n * m / (n + m))
    p = float(special.kolmogorov((en + 0.12 + 0.11 / en) * d))
    scale = ref.std if ref.std > 0 else 1.0
    return DriftTest(
        feature=name,
        kind="numeric",
        test="ks",
        statistic=d,
        p_value=min(max(p, 0.0), 1.0),
        effect_name="wasserstein_norm",
        effect=w / scale,
        threshold=effect,
        psi=psi(ref.props, cur_props),
        n_reference=n,
        n_current=m,
    )


def _on_grid(ref: NumericRef, cur: np.ndarray) -> tuple[float, float, np.ndarray]:
    """KS, Wasserstein and PSI bins of a large sample without sorting it.

    Both CDFs are evaluated on the reference's 4096-quantile grid (plus the
    current extremes): the KS statistic is exact up to one grid cell of mass
    (about 1/4096), Wasserstein is a Riemann sum on that grid.
    """
    edges = np.unique(np.concatenate([ref.grid, [cur.min(), cur.max()]]))
    f_ref = np.searchsorted(ref.sorted_values, edges, side="right") / ref.sorted_values.size
    cells = np.searchsorted(edges, cur, side="left")
    f_cur = np.cumsum(np.bincount(cells, minlength=edges.size + 1))[: edges.size] / cur.size
    gap = np.abs(f_ref - f_cur)
    w = float(np.sum((gap[:-1] + gap[1:]) / 2 * np.diff(edges)))
    bins = np.bincount(np.searchsorted(ref.edges, cur, side="right"), minlength=ref.edges.size + 1)
    return float(gap.max()), w, bins / cur.size


EXACT_LIMIT = 200_000


def ks_wasserstein(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """KS statistic and Wasserstein-1 distance of two sorted samples without NaN.

    KS is exact (both empirical CDFs at every sample point, ties included).
    Wasserstein is exact for small samples and equal sizes; for large samples
    of unequal size it integrates the quantile functions on the finer grid
    (error below one grid step).
    """
    n, m = a.size, b.size
    if n + m <= EXACT_LIMIT:
        merged = np.concatenate([a, b])
        merged.sort(kind="stable")
        gap = np.abs(
            np.searchsorted(a, merged, side="right") / n
            - np.searchsorted(b, merged, side="right") / m
        )
        return float(gap.max()), float(np.sum(gap[:-1] * np.diff(merged)))
    a_le_a = _count_le_self(a)
    b_le_b = _count_le_self(b)
    d_a = np.abs(a_le_a / n - np.searchsorted(b, a, side="right") / m).max()
    d_b = np.abs(np.searchsorted(a, b, side="right") / n - b_le_b / m).max()
    if n == m:
        w = float(np.abs(a - b).mean())
    else:
        k = max(n, m)
        u = (np.arange(k) + 0.5) / k
        w = float(np.abs(a[(u * n).astype(np.int64)] - b[(u * m).astype(np.int64)]).mean())
    return float(max(d_a, d_b)), w


def _count_le_self(sorted_values: np.ndarray) -> np.ndarray:
    """For each element of a sorted array, how many elements are <= it (ties resolved)."""
    if sorted_values.size < 2 or bool(np.all(sorted_values[1:] != sorted_values[:-1])):
        return np.arange(1, sorted_values.size + 1, dtype=np.float64)
    return np.searchsorted(sorted_values, sorted_values, side="right").astype(np.float64)


def categorical_test(
    name: str, ref: CategoricalRef, values: pd.Series, effect: float, missing_text: str = ""
) -> DriftTest:
    counts = values.value_counts(dropna=False).drop(missing_text, errors="ignore")
    table = pd.concat([ref.counts, counts], axis=1, keys=["ref", "cur"]).fillna(0.0)
    n, m = int(table["ref"].sum()), int(table["cur"].sum())
    if n == 0 or m == 0:
        return DriftTest(
            feature=name,
            kind="categorical",
            test="chi2",
            statistic=0.0,
            p_value=1.0,
            effect_name="jensen_shannon",
            effect=0.0,
            threshold=effect,
            n_reference=n,
            n_current=m,
        )
    r = table["ref"].to_numpy(float) / n
    c = table["cur"].to_numpy(float) / m
    unseen = float(table.loc[table["ref"] == 0, "cur"].sum() / m)
    if len(table) < 2:
        chi2, p = 0.0, 1.0
    else:
        chi2, p, _, _ = stats.chi2_contingency(table.to_numpy(float).T, correction=False)
    return DriftTest(
        feature=name,
        kind="categorical",
        test="chi2",
        statistic=float(chi2),
        p_value=float(p),
        effect_name="jensen_shannon",
        effect=_js(r, c),
        threshold=effect,
        psi=psi(r, c),
        unseen_share=unseen,
        n_reference=n,
        n_current=m,
    )


def _js(p: np.ndarray, q: np.ndarray) -> float:
    mid = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(p > 0, p * np.log2(p / mid), 0.0).sum()
        kl_q = np.where(q > 0, q * np.log2(q / mid), 0.0).sum()
    return float(math.sqrt(max((kl_p + kl_q) / 2, 0.0)))


def missing_test(name: str, ref: Ref, missing: int, total: int, effect: float) -> DriftTest:
    n1, n2 = ref.total, total
    p1, p2 = ref.missing / max(n1, 1), missing / max(n2, 1)
    pooled = (ref.missing + missing) / max(n1 + n2, 1)
    se = math.sqrt(pooled * (1 - pooled) * (1 / max(n1, 1) + 1 / max(n2, 1)))
    z = (p2 - p1) / se if se > 0 else 0.0
    p = float(2 * stats.norm.sf(abs(z))) if se > 0 else 1.0
    return DriftTest(
        feature=name,
        kind="missing",
        test="z",
        statistic=z,
        p_value=p,
        effect_name="missing_delta",
        effect=abs(p2 - p1),
        threshold=effect,
        n_reference=n1,
        n_current=n2,
    )


def benjamini_hochberg(p_values: Iterable[float]) -> np.ndarray:
    """Adjusted p-values (step-up, monotone), in the input order."""
    p = np.asarray(list(p_values), dtype=np.float64)
    if p.size == 0:
        return p
    order = np.argsort(p)
    ranked = p[order] * p.size / np.arange(1, p.size + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty_like(p)
    out[order] = np.minimum(ranked, 1.0)
    return out


def decide(tests: list[DriftTest], alpha: float) -> list[DriftTest]:
    """Correct across the window's tests; an alarm needs significance AND a large effect."""
    adjusted = benjamini_hochberg(t.p_value for t in tests)
    out = []
    for t, q in zip(tests, adjusted, strict=True):
        significant = bool(q < alpha)
        out.append(
            t.model_copy(
                update={
                    "p_adjusted": float(q),
                    "significant": significant,
                    "alarm": significant and t.effect >= t.threshold,
                }
            )
        )
    return out


class Reference:
    """Per-feature reference statistics, computed once and reused for every window."""

    def __init__(self, kinds: dict[str, Kind], refs: dict[str, Ref]) -> None:
        self.kinds = kinds
        self.refs = refs

    @classmethod
    def build(cls, frame: pd.DataFrame, kinds: dict[str, Kind], threads: int = 2) -> Reference:
        def one(name: str) -> Ref:
            if kinds[name] == "numeric":
                return numeric_reference(frame[name].to_numpy(np.float64, na_value=np.nan))
            return categorical_reference(frame[name])

        with ThreadPoolExecutor(threads) as pool:
            refs = dict(zip(kinds, pool.map(one, kinds), strict=True))
        return cls(kinds, refs)


def drift_tests(
    reference: Reference,
    current: pd.DataFrame,
    effects: EffectSpec,
    alpha: float,
    *,
    prediction: str | None = None,
    threads: int = 2,
) -> list[DriftTest]:
    """Every test for every feature of ``current`` (plus missing shares), decided together."""

    def one(name: str) -> list[DriftTest]:
        ref = reference.refs[name]
        is_pred = name == prediction
        if isinstance(ref, NumericRef):
            values = current[name].to_numpy(np.float64, na_value=np.nan)
            thr = effects.prediction if is_pred else effects.numeric
            main = numeric_test(name, ref, values, thr)
            missing = int(np.isnan(values).sum())
        else:
            series = current[name]
            thr = effects.prediction if is_pred else effects.categorical
            main = categorical_test(name, ref, series, thr)
            missing = int((series == "").sum())
        out = [main]
        if ref.missing or missing:
            out.append(missing_test(name, ref, missing, len(current), effects.missing))
        return out

    names = [n for n in reference.kinds if n in current]
    with ThreadPoolExecutor(threads) as pool:
        tests = [t for group in pool.map(one, names) for t in group]
    return decide(tests, alpha)


__all__ = [
    "DriftTest",
    "Reference",
    "benjamini_hochberg",
    "categorical_test",
    "decide",
    "drift_tests",
    "missing_test",
    "numeric_test",
    "psi",
]
