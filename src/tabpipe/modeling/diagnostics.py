"""What the run report shows about the selected model: curves, errors and importances.

Everything here is computed on the held-out test split after selection, and kept small
(curves downsampled to at most :data:`MAX_POINTS` points) so it travels in the leaderboard.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel
from sklearn import metrics as skm

from tabpipe.config import Task
from tabpipe.modeling import metrics

MAX_POINTS = 200
MAX_ROWS = 1000


class Curve(BaseModel):
    x: list[float]
    y: list[float]


class Diagnostics(BaseModel):
    """Plot data for the run report, and global feature importances."""

    confusion: list[list[int]] | None = None
    labels: list[str] = []
    roc: Curve | None = None
    pr: Curve | None = None
    calibration: Curve | None = None
    residuals: Curve | None = None
    permutation_importance: dict[str, float] = {}
    shap_importance: dict[str, float] = {}


def _thin(x: np.ndarray, y: np.ndarray) -> Curve:
    idx = np.unique(np.linspace(0, len(x) - 1, min(len(x), MAX_POINTS)).astype(int))
    return Curve(x=[float(v) for v in x[idx]], y=[float(v) for v in y[idx]])


def diagnose(
    model: Any,
    x: pd.DataFrame,
    y: np.ndarray,
    task: Task,
    metric: str,
    classes: list[str],
    seed: int,
) -> Diagnostics:
    """Curves and importances of ``model`` on the test rows ``x``, ``y``."""
    diag = Diagnostics(labels=classes)
    if task == "regression":
        pred = np.asarray(model.predict(x), dtype=np.float64)
        diag.residuals = _thin(*_sorted_pairs(pred, y - pred))
    else:
        proba = np.asarray(model.predict_proba(x), dtype=np.float64)
        k = proba.shape[1]
        diag.confusion = skm.confusion_matrix(y, proba.argmax(axis=1), labels=range(k)).tolist()
        if task == "binary" and len(np.unique(y)) == 2:
            fpr, tpr, _ = skm.roc_curve(y, proba[:, 1])
            diag.roc = _thin(fpr, tpr)
            precision, recall, _ = skm.precision_recall_curve(y, proba[:, 1])
            diag.pr = _thin(recall[::-1], precision[::-1])
            from sklearn.calibration import calibration_curve

            true, predicted = calibration_curve(y, proba[:, 1], n_bins=10, strategy="quantile")
            diag.calibration = Curve(x=predicted.tolist(), y=true.tolist())
    diag.permutation_importance = permutation_importance(model, x, y, task, metric, seed)
    diag.shap_importance = shap_importance(model, x)
    return diag


def _sorted_pairs(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(a, kind="stable")
    return a[order], b[order]


def permutation_importance(
    model: Any, x: pd.DataFrame, y: np.ndarray, task: Task, metric: str, seed: int
) -> dict[str, float]:
    """Drop in the metric when one input column is shuffled (mean of 2 repeats)."""
    rng = np.random.default_rng(seed)
    if len(x) > MAX_ROWS:
        keep = rng.choice(len(x), MAX_ROWS, replace=False)
        x, y = x.iloc[keep].reset_index(drop=True), y[keep]
    greater = metrics.REGISTRY[metric].greater_is_better

    def score(frame: pd.DataFrame) -> float:
        out = model.predict(frame) if task == "regression" else model.predict_proba(frame)
        try:
            return metrics.score(metric, y, np.asarray(out, dtype=np.float64))
        except ValueError:
            return float("nan")

    base = score(x)
    result: dict[str, float] = {}
    for column in x.columns:
        drops = []
        for _ in range(2):
            shuffled = x.copy()
            shuffled[column] = rng.permutation(shuffled[column].to_numpy())
            drop = base - score(shuffled)
            drops.append(drop if greater else -drop)
        result[str(column)] = float(np.mean(drops))
    return dict(sorted(result.items(), key=lambda kv: -kv[1]))


def shap_importance(model: Any, x: pd.DataFrame) -> dict[str, float]:
    """Mean |SHAP| per input column from LightGBM/XGBoost's native contributions.

    Only for a pipeline whose model is LightGBM or XGBoost; empty otherwise.
    """
    steps = getattr(model, "steps", None)
    if not steps:
        return {}
    features, estimator = steps[0][1], steps[-1][1]
    module = type(estimator).__module__
    xt = features.transform(x.iloc[:MAX_ROWS])
    if module.startswith("lightgbm"):
        contrib = np.asarray(estimator.predict(xt, pred_contrib=True))
    elif module.startswith("xgboost"):
        import xgboost

        contrib = np.asarray(
            estimator.get_booster().predict(xgboost.DMatrix(xt), pred_contribs=True)
        )
    else:
        return {}
    names = [str(n) for n in features.get_feature_names_out()]
    width = len(names) + 1  # each block ends with the bias column
    blocks = contrib.reshape(contrib.shape[0], -1, width) if contrib.ndim == 2 else contrib
    magnitude = np.abs(blocks[..., :-1]).mean(axis=(0, 1))
    result: dict[str, float] = {}
    for name, value in zip(names, magnitude, strict=True):
        column = name.split("__", 1)[-1]
        for suffix in ("_freq", "_missing"):
            column = column.removesuffix(suffix)
        result[column] = result.get(column, 0.0) + float(value)
    return dict(sorted(result.items(), key=lambda kv: -kv[1]))
