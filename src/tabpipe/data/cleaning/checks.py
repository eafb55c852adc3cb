"""Row- and column-level checks: outliers, duplicates, problem columns, leakage, the target."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tabpipe.config import CleaningSpec, Task
from tabpipe.data.cleaning.report import Finding, TargetSummary
from tabpipe.data.quantiles import median, quantiles, sorted_quantiles

_LEAK_SAMPLE = 50_000
_LEAK_MIN_ROWS = 50
_FENCE_SAMPLE = 200_000
_BINS = 20
_BUCKETS = 1 << 22
_PREFILTER_ABOVE = 1 << 17


def outlier_bounds(values: np.ndarray, spec: CleaningSpec) -> tuple[float, float] | None:
    """Lower and upper fences (IQR or robust z-score); None when the spread is zero."""
    return fences(values[~np.isnan(values)], spec)


def fences(finite: np.ndarray, spec: CleaningSpec) -> tuple[float, float] | None:
    """:func:`outlier_bounds` of values without NaN (not modified)."""
    if finite.size < 20:
        return None
    if finite.size > _FENCE_SAMPLE:  # fences from evenly spread rows; counts stay exact
        finite = finite[np.linspace(0, finite.size - 1, _FENCE_SAMPLE).astype(np.int64)]
    if spec.outlier_method == "iqr":
        k = spec.outlier_threshold or 3.0
        q1, q3 = quantiles(finite, [0.25, 0.75])  # numpy.quantile's, bit for bit
        spread = q3 - q1
        if spread <= 0:
            return None
        return float(q1 - k * spread), float(q3 + k * spread)
    z = spec.outlier_threshold or 3.5
    middle = median(finite)
    mad = median(np.abs(finite - middle)) * 1.4826
    if mad <= 0:
        return None
    return middle - z * mad, middle + z * mad


def repeated(keys: np.ndarray) -> np.ndarray:
    """Whether each 64-bit key occurs more than once (``duplicated(keep=False)``).

    On many keys, one counting pass over their low bits (well mixed hashes) first finds the
    keys that can repeat, so the hash table holds only those (a fifth of a million keys).
    """
    if keys.size < _PREFILTER_ABOVE:
        return np.asarray(pd.Series(keys).duplicated(keep=False).to_numpy())
    buckets = (keys & np.uint64(_BUCKETS - 1)).astype(np.intp)
    shared = np.flatnonzero(np.bincount(buckets, minlength=_BUCKETS)[buckets] > 1)
    del buckets
    out = np.zeros(keys.size, dtype=bool)
    out[shared] = pd.Series(keys[shared]).duplicated(keep=False).to_numpy()
    return out


def conflicting_rows(feature_hash: np.ndarray, target_hash: np.ndarray) -> np.ndarray:
    """Rows whose feature values repeat in another row with a different target."""
    out = np.zeros(len(feature_hash), dtype=bool)
    repeated = pd.Series(feature_hash).duplicated(keep=False).to_numpy()
    if not repeated.any():  # only rows whose features repeat can conflict
        return out
    pairs = pd.DataFrame({"k": feature_hash[repeated], "t": target_hash[repeated]})
    per_key = pairs.groupby("k")["t"].nunique()
    out[repeated] = pairs["k"].isin(per_key[per_key > 1].index).to_numpy()
    return out


def top_share(column: pd.Series) -> float:
    counts = column.value_counts(dropna=True)
    present = int(counts.sum())
    return float(counts.iloc[0] / present) if present else 0.0


@dataclass(frozen=True)
class LeakTarget:
    """The target of the leakage scores, prepared once for all the features."""

    task: Task
    #: regression: the target as numbers, and their variance
    numbers: np.ndarray | None = None
    variance: float = 0.0
    #: classification: class codes, their count, the majority-class rate
    codes: np.ndarray | None = None
    classes: int = 0
    baseline: float = 1.0


def leak_target(y: pd.Series, task: Task) -> LeakTarget:
    if task == "regression":
        numbers = pd.to_numeric(y, errors="coerce").to_numpy(dtype=np.float64)
        return LeakTarget(task, numbers=numbers, variance=float(np.nanvar(numbers)))
    codes = np.asarray(pd.factorize(y)[0])
    return LeakTarget(
        task,
        codes=codes,
        classes=int(codes.max()) + 1 if codes.size else 0,
        baseline=float(np.bincount(codes).max() / len(codes)) if codes.size else 1.0,
    )


def leakage_score(x: pd.Series, y: pd.Series | LeakTarget, task: Task) -> float | None:
    """How well one feature alone predicts the target (0: not at all, 1: perfectly).

    Classification: the purity gain of the target within bins (numbers) or
    categories, over the majority-class rate. Regression: the correlation ratio
    (share of the target's variance explained by the binned feature). Bins hold
    about 20+ rows each on average, so an identifier cannot score by memorising.
    ``y`` may be prepared once with :func:`leak_target` when many features are scored.
    """
    target = y if isinstance(y, LeakTarget) else leak_target(y, task)
    if len(x) < _LEAK_MIN_ROWS:
        return None
    groups = _groups(x)
    if groups is None:
        return None
    if target.numbers is not None:
        if target.variance <= 0:
            return None
        frame = pd.DataFrame({"g": groups, "y": target.numbers})
        means = frame.groupby("g")["y"].transform("mean").to_numpy()
        return float(max(0.0, 1.0 - np.nanmean((target.numbers - means) ** 2) / target.variance))
    codes = target.codes
    if codes is None or target.baseline >= 1:
        return None
    ok = (groups >= 0) & (codes >= 0)
    g, c = (groups, codes) if ok.all() else (groups[ok], codes[ok])
    k = int(c.max()) + 1 if c.size else 1
    table = np.bincount(g * k + c, minlength=(int(g.max()) + 1 if g.size else 1) * k).reshape(-1, k)
    purity = table.max(axis=1).sum() / max(table.sum(), 1)
    baseline = target.baseline
    score = float(max(0.0, (purity - baseline) / (1 - baseline)))
    if target.classes == 2 and pd.api.types.is_numeric_dtype(x):
        values = x.to_numpy(dtype=np.float64, na_value=np.nan)
        score = max(score, 2 * abs(auc(values, codes) - 0.5))
    elif target.classes == 2:  # a category scores by its rate of the second class
        ok = (groups >= 0) & (codes >= 0)
        rates = np.bincount(groups[ok], weights=codes[ok]) / np.maximum(np.bincount(groups[ok]), 1)
        encoded = np.where(groups >= 0, rates[np.clip(groups, 0, None)], np.nan)
        labelled = codes >= 0
        if not labelled.all():
            encoded, codes = encoded[labelled], codes[labelled]
        score = max(score, 2 * abs(auc(encoded, codes) - 0.5))
    return score


def auc(values: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve of one score against 0/1 labels (missing scores rank lowest).

    The Mann-Whitney count (pairs a positive outranks, ties half) is counted exactly in
    integers from the sorted negatives, so it equals the rank-sum formula to the bit.
    """
    scores = np.nan_to_num(values, nan=-np.inf)
    positive = labels == 1
    n_pos = int(np.count_nonzero(positive))
    n_neg = len(labels) - n_pos
    if not n_pos or not n_neg:
        return 0.5
    negatives = np.sort(scores[~positive])
    positives = scores[positive]
    below = np.searchsorted(negatives, positives, side="left")
    up_to = np.searchsorted(negatives, positives, side="right")
    twice = 2 * int(below.sum()) + int((up_to - below).sum())  # ties count half
    return float((twice / 2) / (n_pos * n_neg))


def _groups(x: pd.Series) -> np.ndarray | None:
    """Group codes of the rows (-1: missing): numbers in up to ``_BINS`` quantile bins (or
    one group per value when there are that few), categories as they are."""
    n = len(x)
    if pd.api.types.is_numeric_dtype(x):
        values = x.to_numpy(dtype=np.float64, na_value=np.nan)
        present = ~np.isnan(values)
        if np.count_nonzero(present) < 20:
            return None
        ordered = np.sort(values[present])
        bins = max(2, min(_BINS, n // 20))
        if 1 + np.count_nonzero(ordered[1:] != ordered[:-1]) <= bins:
            return np.asarray(pd.factorize(values)[0])
        edges = np.unique(sorted_quantiles(ordered, list(np.linspace(0, 1, bins + 1))))
        groups = np.searchsorted(edges[1:-1], values, side="right")
        groups[~present] = -1
        return groups
    codes, uniques = pd.factorize(x)
    if len(uniques) > max(2, n // 20):
        return None
    return np.asarray(codes)


def leak_sample(n: int) -> np.ndarray | None:
    """Row positions of the sample leakage is scored on (None: all rows)."""
    if n <= _LEAK_SAMPLE:
        return None
    return np.sort(np.random.default_rng(0).choice(n, _LEAK_SAMPLE, replace=False))


def sum_leaks(frame: pd.DataFrame, numeric: list[str], target: pd.Series) -> list[tuple[str, str]]:
    """Pairs of numeric features whose sum equals the target in (almost) every row."""
    y = pd.to_numeric(target, errors="coerce").to_numpy(dtype=np.float64)
    corr = {
        name: abs(
            np.corrcoef(np.nan_to_num(frame[name].to_numpy(np.float64)), np.nan_to_num(y))[0, 1]
        )
        for name in numeric
        if np.nanstd(frame[name].to_numpy(np.float64)) > 0
    }
    best = sorted(corr, key=lambda n: -np.nan_to_num(corr[n]))[:6]
    found = []
    for i, a in enumerate(best):
        for b in best[i + 1 :]:
            total = frame[a].to_numpy(np.float64) + frame[b].to_numpy(np.float64)
            if np.mean(np.isclose(total, y, rtol=1e-9, atol=1e-9)) >= 0.99:
                found.append((a, b))
    return found


def target_checks(
    y: pd.Series, task: Task, spec: CleaningSpec, missing: int
) -> tuple[TargetSummary, list[Finding]]:
    """Class counts, the imbalance ratio, rare classes; warnings for each."""
    findings: list[Finding] = []
    name = str(y.name)
    if missing:
        findings.append(
            Finding(
                column=name,
                kind="missing_target",
                severity="warning",
                message=f"{missing} row(s) have no target; set aside (see removed rows)",
            )
        )
    if task == "regression":
        values = y.to_numpy(dtype=np.float64)
        std = float(values.std())
        skew = float(np.mean(((values - values.mean()) / std) ** 3)) if std > 0 else 0.0
        if abs(skew) > 2:
            findings.append(
                Finding(
                    column=name,
                    kind="skewed_target",
                    severity="info",
                    message=f"target is skewed (skewness {skew:.1f}); a log transform may help",
                )
            )
        return TargetSummary(missing=missing), findings
    counts = y.value_counts(sort=False)  # count first, then name the classes as text
    counts.index = counts.index.astype(str)
    counts = (
        counts[counts > 0]
        .groupby(level=0, sort=False)
        .sum()
        .sort_values(ascending=False, kind="stable")
    )
    ratio = float(counts.iloc[0] / counts.iloc[-1])
    rare = [str(c) for c, n in counts.items() if n < 10 or n / len(y) < spec.rare_class_share]
    if ratio >= 5:
        findings.append(
            Finding(
                column=name,
                kind="imbalance",
                severity="warning",
                message=f"classes are imbalanced: the largest is {ratio:.1f}× the smallest",
            )
        )
    if rare:
        findings.append(
            Finding(
                column=name,
                kind="rare_classes",
                severity="warning",
                message=f"rare classes (under 10 rows or {spec.rare_class_share:.0%}): {', '.join(rare[:10])}",
            )
        )
    summary = TargetSummary(
        counts={str(k): int(v) for k, v in counts.items()},
        imbalance_ratio=ratio,
        rare_classes=rare,
        missing=missing,
    )
    return summary, findings
