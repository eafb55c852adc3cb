"""Performance per window: measured where labels exist, estimated where they do not.

- measured: the task's metric on the labelled rows of a window, with a
  percentile bootstrap confidence interval;
- estimated (classifiers): confidence-based performance estimation (CBPE, as
  in NannyML): with calibrated probabilities, the expected accuracy is the mean
  of the top probability, and the expected ROC curve of a binary classifier
  follows from expected true and false positives at every threshold. It needs
  no labels, so degradation shows before the labels arrive. It assumes the
  model's probabilities are calibrated on the reference data.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel

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


def estimated(metric: str, proba: np.ndarray) -> Estimate | None:
    """CBPE for the metrics it covers (accuracy; roc_auc for binary); None otherwise."""
    if metric == "accuracy":
        return Estimate(metric=metric, value=cbpe_accuracy(proba), rows=len(proba))
    if metric == "roc_auc" and proba.shape[1] == 2:
        return Estimate(metric=metric, value=cbpe_roc_auc(proba), rows=len(proba))
    return None


def relative_drop(metric: str, reference: float, current: float) -> float:
    """How much worse ``current`` is than ``reference``, as a share (negative: better)."""
    scale = abs(reference) if reference else 1.0
    if mx.REGISTRY[metric].greater_is_better:
        return (reference - current) / scale
    return (current - reference) / scale


__all__ = [
    "Estimate",
    "cbpe_accuracy",
    "cbpe_roc_auc",
    "estimated",
    "measured",
    "relative_drop",
]
