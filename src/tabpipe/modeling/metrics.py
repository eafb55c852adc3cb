"""Metrics by name, with their direction, computed from labels and probabilities."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn import metrics as skm

from tabpipe.config import METRICS, Task


@dataclass(frozen=True)
class Metric:
    name: str
    greater_is_better: bool
    needs_proba: bool
    fn: Callable[[np.ndarray, np.ndarray], float]


def _binary_positive(proba: np.ndarray) -> np.ndarray:
    return proba[:, 1]


def _rmse(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.sqrt(skm.mean_squared_error(y, p)))


def _log_loss(y: np.ndarray, p: np.ndarray) -> float:
    return float(skm.log_loss(y, p, labels=np.arange(p.shape[1])))


def _rmsle(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.sqrt(skm.mean_squared_log_error(np.clip(y, 0, None), np.clip(p, 0, None))))


def _brier(y: np.ndarray, p: np.ndarray) -> float:
    return float(skm.brier_score_loss(y, _binary_positive(p)))


def _roc_ovr(y: np.ndarray, p: np.ndarray) -> float:
    return float(skm.roc_auc_score(y, p, multi_class="ovr", labels=np.arange(p.shape[1])))


REGISTRY: dict[str, Metric] = {
    "roc_auc": Metric(
        "roc_auc", True, True, lambda y, p: float(skm.roc_auc_score(y, _binary_positive(p)))
    ),
    "roc_auc_ovr": Metric("roc_auc_ovr", True, True, _roc_ovr),
    "log_loss": Metric("log_loss", False, True, _log_loss),
    "accuracy": Metric("accuracy", True, False, lambda y, p: float(skm.accuracy_score(y, p))),
    "balanced_accuracy": Metric(
        "balanced_accuracy", True, False, lambda y, p: float(skm.balanced_accuracy_score(y, p))
    ),
    "f1": Metric("f1", True, False, lambda y, p: float(skm.f1_score(y, p))),
    "f1_macro": Metric(
        "f1_macro", True, False, lambda y, p: float(skm.f1_score(y, p, average="macro"))
    ),
    "precision": Metric(
        "precision", True, False, lambda y, p: float(skm.precision_score(y, p, zero_division=0))
    ),
    "recall": Metric("recall", True, False, lambda y, p: float(skm.recall_score(y, p))),
    "pr_auc": Metric(
        "pr_auc",
        True,
        True,
        lambda y, p: float(skm.average_precision_score(y, _binary_positive(p))),
    ),
    "mcc": Metric("mcc", True, False, lambda y, p: float(skm.matthews_corrcoef(y, p))),
    "brier": Metric("brier", False, True, _brier),
    "f1_weighted": Metric(
        "f1_weighted", True, False, lambda y, p: float(skm.f1_score(y, p, average="weighted"))
    ),
    "precision_macro": Metric(
        "precision_macro",
        True,
        False,
        lambda y, p: float(skm.precision_score(y, p, average="macro", zero_division=0)),
    ),
    "recall_macro": Metric(
        "recall_macro", True, False, lambda y, p: float(skm.recall_score(y, p, average="macro"))
    ),
    "rmse": Metric("rmse", False, False, _rmse),
    "mape": Metric(
        "mape", False, False, lambda y, p: float(skm.mean_absolute_percentage_error(y, p))
    ),
    "rmsle": Metric("rmsle", False, False, _rmsle),
    "mae": Metric("mae", False, False, lambda y, p: float(skm.mean_absolute_error(y, p))),
    "r2": Metric("r2", True, False, lambda y, p: float(skm.r2_score(y, p))),
}


def default_metric(task: Task) -> str:
    return METRICS[task][0]


def score(name: str, y: np.ndarray, output: np.ndarray) -> float:
    """Score predictions; ``output`` is a probability matrix for classification."""
    metric = REGISTRY[name]
    if output.ndim == 2 and not metric.needs_proba:
        return metric.fn(y, output.argmax(axis=1))
    return metric.fn(y, output)


def score_all(task: Task, y: np.ndarray, output: np.ndarray) -> dict[str, float]:
    """Every metric of the task; one that cannot be computed (one class in y) is left out."""
    result: dict[str, float] = {}
    for name in METRICS[task]:
        try:
            result[name] = score(name, y, output)
        except ValueError:
            continue
    return result


def better(name: str, a: float, b: float) -> bool:
    """True when score ``a`` beats ``b`` for metric ``name``."""
    return a > b if REGISTRY[name].greater_is_better else a < b
