"""Performance per window: measured where labels exist, estimated where they do not.

- measured: the task's metric on the labelled rows of a window, with a
  percentile bootstrap confidence interval;
- estimated (classifiers): confidence-based performance estimation (CBPE, as
  in NannyML): with calibrated probabilities, a row predicted as class ``j``
  is truly class ``k`` with probability ``p_k``, which gives the expected
  confusion matrix (accuracy, balanced accuracy, binary F1/precision/recall,
  MCC, macro and weighted F1/precision/recall), and the expected ROC curve
  follows from expected true and false positives at every threshold (binary
  ROC AUC, one-vs-rest ROC AUC for several classes). Its interval comes from
  labels simulated from the probabilities. It needs no labels, so degradation
  shows before the labels arrive. It assumes the model's probabilities are
  calibrated on the reference data.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel
from scipy.stats import rankdata

from tabpipe.modeling import metrics as mx


class Estimate(BaseModel):
    metric: str
    value: float
    low: float | None = None
    high: float | None = None
    rows: int


def measured(
    metric: str,
    y: np.ndarray,
    output: np.ndarray,
    *,
    resamples: int = 200,
    level: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """``metric`` on labelled rows, with a percentile bootstrap interval."""
    value = mx.score(metric, y, output)
    rng = np.random.default_rng(seed)
    n = len(y)
    draws = []
    for _ in range(resamples):
        idx = rng.integers(0, n, n)
        try:
            draws.append(mx.score(metric, y[idx], output[idx]))
        except ValueError:  # a resample with one class for AUC
            continue
    if len(draws) < resamples // 2:
        return Estimate(metric=metric, value=value, rows=n)
    low, high = np.quantile(draws, [(1 - level) / 2, 1 - (1 - level) / 2])
    return Estimate(metric=metric, value=value, low=float(low), high=float(high), rows=n)


CBPE_METRICS = frozenset(
    {
        "accuracy",
        "balanced_accuracy",
        "f1",
        "precision",
        "recall",
        "mcc",
        "roc_auc",
        "f1_macro",
        "f1_weighted",
        "precision_macro",
        "recall_macro",
        "roc_auc_ovr",
    }
)
"""The metrics CBPE estimates; ``f1``, ``precision``, ``recall``, ``roc_auc`` for binary only."""

_BINARY_ONLY = frozenset({"f1", "precision", "recall", "roc_auc"})


def expected_confusion(proba: np.ndarray) -> np.ndarray:
    """The expected confusion matrix (true class x predicted class) from calibrated probabilities.

    Each row is predicted as its most probable class; if the probabilities are
    calibrated, the row's true class is ``k`` with probability ``proba[k]``, so
    it adds ``proba[k]`` to cell (k, predicted).
    """
    k = proba.shape[1]
    predicted = proba.argmax(axis=1)
    confusion = np.zeros((k, k))
    for j in range(k):
        confusion[:, j] = proba[predicted == j].sum(axis=0)
    return confusion


def _safe_ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out: np.ndarray = np.divide(a, b, out=np.zeros_like(a, dtype=float), where=b > 0)
    return out


def from_confusion(metric: str, confusion: np.ndarray) -> float:
    """A confusion-matrix metric (true x predicted counts, expected or realised), as sklearn has it."""
    hits = np.diag(confusion)
    truth = confusion.sum(axis=1)
    called = confusion.sum(axis=0)
    n = confusion.sum()
    precision = _safe_ratio(hits, called)
    recall = _safe_ratio(hits, truth)
    f1 = _safe_ratio(2 * hits, truth + called)
    seen = (truth > 0) | (called > 0)  # macro averages skip classes in neither, as sklearn
    if metric == "accuracy":
        return float(hits.sum() / n)
    if metric == "balanced_accuracy":
        return float(recall[truth > 0].mean())
    if metric in {"f1", "precision", "recall"}:
        return float({"f1": f1, "precision": precision, "recall": recall}[metric][1])
    if metric == "f1_macro":
        return float(f1[seen].mean())
    if metric == "f1_weighted":
        return float((f1 * truth).sum() / n)
    if metric == "precision_macro":
        return float(precision[seen].mean())
    if metric == "recall_macro":
        return float(recall[seen].mean())
    if metric == "mcc":
        cov_tp = hits.sum() * n - truth @ called
        denominator = np.sqrt((n**2 - called @ called) * (n**2 - truth @ truth))
        return float(cov_tp / denominator) if denominator > 0 else 0.0
    raise ValueError(f"{metric!r} is not a confusion-matrix metric")


def cbpe_accuracy(proba: np.ndarray) -> float:
    """Expected accuracy from calibrated class probabilities (no labels)."""
    return float(np.mean(proba.max(axis=1)))


def cbpe_roc_auc(proba: np.ndarray) -> float:
    """Expected ROC AUC of a binary classifier from calibrated probabilities (no labels)."""
    p = proba[:, 1] if proba.ndim == 2 else proba
    order = np.argsort(-p, kind="stable")
    p_sorted = p[order]
    tp = np.cumsum(p_sorted)
    fp = np.cumsum(1 - p_sorted)
    positives, negatives = tp[-1], fp[-1]
    if positives <= 0 or negatives <= 0:
        return float("nan")
    tpr = np.concatenate([[0.0], tp / positives])
    fpr = np.concatenate([[0.0], fp / negatives])
    return float(np.trapezoid(tpr, fpr))


def cbpe_roc_auc_ovr(proba: np.ndarray) -> float:
    """Expected one-vs-rest ROC AUC, the unweighted mean over classes (as sklearn's ``ovr``)."""
    return float(np.mean([cbpe_roc_auc(proba[:, k]) for k in range(proba.shape[1])]))


def cbpe_value(metric: str, proba: np.ndarray) -> float:
    """The CBPE point estimate of ``metric`` (one of :data:`CBPE_METRICS`)."""
    if metric == "roc_auc":
        return cbpe_roc_auc(proba)
    if metric == "roc_auc_ovr":
        return cbpe_roc_auc_ovr(proba)
    return from_confusion(metric, expected_confusion(proba))


def _rank_auc(ranks: np.ndarray, positive: np.ndarray) -> float:
    """ROC AUC from the scores' ranks (Mann-Whitney); nan when one side is empty."""
    npos = int(positive.sum())
    nneg = len(positive) - npos
    if npos == 0 or nneg == 0:
        return float("nan")
    return float((ranks[positive].sum() - npos * (npos + 1) / 2) / (npos * nneg))


def _simulated(metric: str, proba: np.ndarray, draws: int, seed: int) -> np.ndarray:
    """The realised ``metric`` under labels drawn from the probabilities, ``draws`` times."""
    rng = np.random.default_rng(seed)
    n, k = proba.shape
    cumulative = np.cumsum(proba, axis=1)[:, :-1]
    predicted = proba.argmax(axis=1)
    auc_classes = [1] if metric == "roc_auc" else list(range(k))
    ranks = (
        {c: rankdata(proba[:, c]) for c in auc_classes}
        if metric in {"roc_auc", "roc_auc_ovr"}
        else {}
    )
    out = np.empty(draws)
    for d in range(draws):
        truth = (rng.random((n, 1)) > cumulative).sum(axis=1)
        if ranks:
            out[d] = np.mean([_rank_auc(ranks[c], truth == c) for c in auc_classes])
        else:
            confusion = np.bincount(truth * k + predicted, minlength=k * k).reshape(k, k)
            out[d] = from_confusion(metric, confusion.astype(float))
    return out[np.isfinite(out)]


def estimated(
    metric: str, proba: np.ndarray, *, draws: int = 200, level: float = 0.95, seed: int = 0
) -> Estimate | None:
    """CBPE of ``metric`` with an interval; None for a metric CBPE does not cover.

    The value is the expectation NannyML's CBPE computes (expected confusion
    matrix, expected ROC curve). The interval is where the realised metric of
    these rows falls, 95% of the time, when their labels are drawn from the
    calibrated probabilities: label sampling noise, which shrinks with the
    window's size. Model miscalibration and concept shift are not in it.
    """
    binary = proba.shape[1] == 2
    if metric not in CBPE_METRICS or (metric in _BINARY_ONLY and not binary) or len(proba) == 0:
        return None
    value = cbpe_value(metric, proba)
    if not np.isfinite(value):
        return None
    sims = _simulated(metric, proba, draws, seed)
    if len(sims) < draws // 2:
        return Estimate(metric=metric, value=value, rows=len(proba))
    low, high = np.quantile(sims, [(1 - level) / 2, 1 - (1 - level) / 2])
    return Estimate(metric=metric, value=value, low=float(low), high=float(high), rows=len(proba))


def relative_drop(metric: str, reference: float, current: float) -> float:
    """How much worse ``current`` is than ``reference``, as a share (negative: better)."""
    scale = abs(reference) if reference else 1.0
    if mx.REGISTRY[metric].greater_is_better:
        return (reference - current) / scale
    return (current - reference) / scale


__all__ = [
    "CBPE_METRICS",
    "Estimate",
    "cbpe_accuracy",
    "cbpe_roc_auc",
    "cbpe_roc_auc_ovr",
    "cbpe_value",
    "estimated",
    "expected_confusion",
    "from_confusion",
    "measured",
    "relative_drop",
]
