# ruff: noqa: N803 - scikit-learn names the feature matrix X
"""Probability calibration and the decision threshold of the packaged classifier.

Both are fitted on the out-of-fold predictions of the selected candidate (never on
the rows a model was fitted on, never on the test split):

- calibration: a sigmoid (Platt) or isotonic map per class, chosen when it lowers the
  log loss and does not raise the Brier score of predictions it did not see (k-fold
  inside the out-of-fold rows); multiclass rows are renormalised to sum to one;
- threshold (binary): the cut on calibrated P(positive) that maximises F1 or minimises
  ``fp * false positives + fn * false negatives``.

:class:`CalibratedModel` carries both into the native pipeline; the ONNX graph gets the
same calibration as nodes (:func:`tabpipe.packaging.onnx.to_onnx`) and the manifest the
threshold, so the server, ``tabpipe predict`` and the ONNX graph label rows alike.
Isotonic knots are thinned to at least :data:`KNOT_SPACING` apart, so float32 (ONNX)
and float64 (scikit-learn) inputs map to the same probability within 1e-4.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import BaseModel
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils.validation import check_is_fitted

from tabpipe.config import Calibration, CostSpec, Task, ThresholdSpec
from tabpipe.modeling import metrics

Method = Literal["sigmoid", "isotonic", "temperature"]
CALIBRATION_FOLDS = 5
#: A calibration must lower the validation log loss by this share to be kept.
MIN_GAIN = 0.005
KNOT_SPACING = 0.01
_EPS = 1e-12


class Calibrator(BaseModel):
    """One fitted calibration map per probability column (binary: column 1 only)."""

    method: Method
    columns: list[int]
    #: sigmoid: ``[a, b]`` with p' = 1 / (1 + exp(a p + b)); isotonic: ``[x..., y...]``;
    #: temperature: ``[[a]]`` with p'_k = p_k^a / sum_j p_j^a over every column.
    params: list[list[float]]

    def apply(self, proba: np.ndarray) -> np.ndarray:
        return calibrate(proba, self.method, self.columns, [np.asarray(p) for p in self.params])


class Decision(BaseModel):
    """What was chosen for the packaged classifier, with the evidence."""

    calibration: Calibrator | None = None
    #: validation (k-fold inside out-of-fold rows) log loss and Brier per method tried
    calibration_scores: dict[str, dict[str, float]] = {}
    threshold: float | None = None
    objective: Literal["none", "f1", "cost"] = "none"
    cost: CostSpec | None = None
    #: the objective (F1 or cost per row) out of fold at the threshold and at 0.5
    validation_at_threshold: float | None = None
    validation_at_half: float | None = None
    test_at_threshold: float | None = None
    test_at_half: float | None = None
    #: every test metric of the packaged model (calibrated, thresholded)
    test_metrics: dict[str, float] = {}


def describe(decision: Decision) -> str:
    """One sentence on what the packaged classifier applies (for the CLI and the report)."""
    cal = decision.calibration
    scores = decision.calibration_scores
    if cal is not None:
        text = (
            f"calibration: {cal.method} (validation log loss {scores[cal.method]['log_loss']:.4f} "
            f"vs {scores['none']['log_loss']:.4f} uncalibrated)"
        )
    elif len(scores) > 1:
        text = "calibration: none (no method improved validation log loss and Brier)"
    else:
        text = "calibration: none"
    if decision.threshold is not None:
        what = "F1" if decision.objective == "f1" else "cost per row"
        text += (
            f"; decision threshold on P(positive): {decision.threshold:.3f} for "
            f"{decision.objective} (test {what} {decision.test_at_threshold:.4f} vs "
            f"{decision.test_at_half:.4f} at 0.5)"
        )
    return text


def calibrate(
    proba: np.ndarray, method: str, columns: list[int], params: list[np.ndarray]
) -> np.ndarray:
    """Apply calibration maps (numpy, float64) to a probability matrix."""
    p = np.asarray(proba, dtype=np.float64)
    if method == "temperature":
        return _temper(p, float(params[0][0]))
    if len(columns) == 1 and p.shape[1] == 2:
        c1 = _map(p[:, columns[0]], method, params[0])
        return np.asarray(np.column_stack([1.0 - c1, c1]))
    out = np.column_stack([_map(p[:, k], method, params[i]) for i, k in enumerate(columns)])
    return np.asarray(out / np.maximum(out.sum(axis=1, keepdims=True), _EPS))


def _temper(p: np.ndarray, a: float) -> np.ndarray:
    """Temperature scaling on probabilities: ``p^a`` renormalised (``a = 1/T``)."""
    powered = np.power(p.astype(np.float32).astype(np.float64), a)
    return np.asarray(powered / np.maximum(powered.sum(axis=1, keepdims=True), _EPS))


def fit_temperature(proba: np.ndarray, y: np.ndarray) -> float:
    """The exponent ``a`` (inverse temperature) that minimises the log loss of ``p^a``."""
    from scipy.optimize import minimize_scalar

    def loss(log_a: float) -> float:
        out = _temper(proba, float(np.exp(log_a)))
        return float(-np.mean(np.log(np.clip(out[np.arange(len(y)), y], 1e-15, 1.0))))

    found = minimize_scalar(loss, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return float(np.exp(found.x))


def _map(p: np.ndarray, method: str, params: np.ndarray) -> np.ndarray:
    # through float32 first: the ONNX graph sees the model's float32 probabilities
    p = p.astype(np.float32).astype(np.float64)
    if method == "sigmoid":
        a, b = float(params[0]), float(params[1])
        return np.asarray(1.0 / (1.0 + np.exp(a * p + b)))
    half = len(params) // 2
    return np.asarray(np.interp(p, params[:half], params[half:]), dtype=np.float64)


def fit_map(p: np.ndarray, y: np.ndarray, method: Method) -> np.ndarray:
    """One calibration map of scores ``p`` for the 0/1 outcome ``y``."""
    if method == "sigmoid":
        from sklearn.linear_model import LogisticRegression

        lr = LogisticRegression(C=1e6, max_iter=1000).fit(p.reshape(-1, 1), y)
        return np.asarray([-float(lr.coef_[0, 0]), -float(lr.intercept_[0])])
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p, y)
    x, v = _thin(np.asarray(iso.X_thresholds_), np.asarray(iso.y_thresholds_))
    return np.concatenate([x, v])


def _thin(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Knots at least :data:`KNOT_SPACING` apart (merged by mean), at least three."""
    kx: list[float] = [float(x[0])]
    ky: list[list[float]] = [[float(y[0])]]
    for xi, yi in zip(x[1:], y[1:], strict=True):
        if xi - kx[-1] < KNOT_SPACING:
            ky[-1].append(float(yi))
        else:
            kx.append(float(xi))
            ky.append([float(yi)])
    vx = np.asarray(kx)
    vy = np.maximum.accumulate(np.asarray([np.mean(v) for v in ky]))
    if len(vx) == 1:
        vx, vy = np.asarray([vx[0], vx[0] + KNOT_SPACING]), np.asarray([vy[0], vy[0]])
    if len(vx) == 2:
        vx = np.asarray([vx[0], (vx[0] + vx[1]) / 2, vx[1]])
        vy = np.asarray([vy[0], (vy[0] + vy[1]) / 2, vy[1]])
    return vx, vy


def fit_calibrator(proba: np.ndarray, y: np.ndarray, method: Method) -> Calibrator:
    if method == "temperature":
        columns = list(range(proba.shape[1]))
        return Calibrator(method=method, columns=columns, params=[[fit_temperature(proba, y)]])
    columns = [1] if proba.shape[1] == 2 else list(range(proba.shape[1]))
    params = [fit_map(proba[:, k], (y == k).astype(int), method) for k in columns]
    return Calibrator(method=method, columns=columns, params=[p.tolist() for p in params])


def choose_calibration(
    proba: np.ndarray, y: np.ndarray, policy: Calibration, seed: int
) -> tuple[Calibrator | None, dict[str, dict[str, float]]]:
    """Score each method on rows its map did not see; keep the best if it helps."""
    if policy == "none" or len(np.unique(y)) < 2:
        return None, {}
    from sklearn.model_selection import StratifiedKFold

    k = min(CALIBRATION_FOLDS, int(np.bincount(y).min()))
    scores = {"none": _scores(y, proba)}
    if k < 2:
        return None, scores
    methods: list[Method] = ["sigmoid", "isotonic", "temperature"] if policy == "auto" else [policy]
    folds = list(StratifiedKFold(k, shuffle=True, random_state=seed).split(proba, y))
    for method in methods:
        out = np.zeros_like(proba, dtype=np.float64)
        for tr, va in folds:
            out[va] = fit_calibrator(proba[tr], y[tr], method).apply(proba[va])
        scores[method] = _scores(y, out)
    if policy != "auto":
        return fit_calibrator(proba, y, policy), scores
    base = scores["none"]
    best = min(methods, key=lambda m: scores[m]["log_loss"])
    gain = base["log_loss"] - scores[best]["log_loss"]
    if gain > MIN_GAIN * base["log_loss"] and scores[best]["brier"] <= base["brier"]:
        return fit_calibrator(proba, y, best), scores
    return None, scores


def _scores(y: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import log_loss

    onehot = np.eye(proba.shape[1])[y]
    # binary: the usual mean squared error of P(positive); multiclass: summed over classes
    brier = (
        np.mean((proba[:, 1] - y) ** 2)
        if proba.shape[1] == 2
        else np.mean(np.sum((proba - onehot) ** 2, axis=1))
    )
    return {
        "log_loss": float(log_loss(y, np.clip(proba, 1e-15, 1), labels=range(proba.shape[1]))),
        "brier": float(brier),
    }


def objective_value(y: np.ndarray, p1: np.ndarray, threshold: float, spec: ThresholdSpec) -> float:
    """F1 (higher is better) or mean cost per row (lower is better) at ``threshold``."""
    pred = (p1 >= threshold).astype(int)
    if spec.objective == "cost" and spec.cost is not None:
        fp = np.count_nonzero((pred == 1) & (y == 0))
        fn = np.count_nonzero((pred == 0) & (y == 1))
        return float((spec.cost.fp * fp + spec.cost.fn * fn) / max(len(y), 1))
    from sklearn.metrics import f1_score

    return float(f1_score(y, pred, zero_division=0))


def best_threshold(y: np.ndarray, p1: np.ndarray, spec: ThresholdSpec) -> float:
    """The cut on P(positive) that optimises ``spec.objective`` (ties: the one nearest 0.5)."""
    grid = np.unique(np.concatenate([np.quantile(p1, np.linspace(0.01, 0.99, 99)), [0.5]]))
    values = np.asarray([objective_value(y, p1, float(t), spec) for t in grid])
    best = values.min() if spec.objective == "cost" else values.max()
    ties = grid[np.isclose(values, best)]
    return float(ties[np.argmin(np.abs(ties - 0.5))])


def decide(
    oof: np.ndarray,
    y_oof: np.ndarray,
    test: np.ndarray,
    y_test: np.ndarray,
    task: Task,
    calibration: Calibration,
    threshold: ThresholdSpec,
    seed: int,
) -> Decision:
    """Calibration and threshold from out-of-fold predictions, checked on the test split."""
    cal, scores = choose_calibration(oof, y_oof, calibration, seed)
    decision = Decision(calibration=cal, calibration_scores=scores, objective=threshold.objective)
    if cal is not None:
        oof, test = cal.apply(oof), cal.apply(test)
    if task == "binary" and threshold.objective != "none":
        t = best_threshold(y_oof, oof[:, 1], threshold)
        decision.threshold = t
        decision.cost = threshold.cost
        decision.validation_at_threshold = objective_value(y_oof, oof[:, 1], t, threshold)
        decision.validation_at_half = objective_value(y_oof, oof[:, 1], 0.5, threshold)
        decision.test_at_threshold = objective_value(y_test, test[:, 1], t, threshold)
        decision.test_at_half = objective_value(y_test, test[:, 1], 0.5, threshold)
    decision.test_metrics = score_decided(task, y_test, test, decision.threshold)
    return decision


def labels(proba: np.ndarray, threshold: float | None) -> np.ndarray:
    """Class indices: P(positive) >= threshold for a thresholded binary model, else argmax."""
    if threshold is not None and proba.shape[1] == 2:
        return (proba[:, 1] >= threshold).astype(np.int64)
    return np.asarray(proba.argmax(axis=1), dtype=np.int64)


def score_decided(
    task: Task, y: np.ndarray, proba: np.ndarray, threshold: float | None
) -> dict[str, float]:
    """Every metric of the task; label metrics use the threshold."""
    out = metrics.score_all(task, y, proba)
    if threshold is None:
        return out
    decided = labels(proba, threshold)
    for name in out:
        if not metrics.REGISTRY[name].needs_proba:
            out[name] = metrics.REGISTRY[name].fn(y, decided)
    return out


class CalibratedModel(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """A fitted classifier with a calibration map and an optional decision threshold.

    ``method``, ``columns`` and ``params`` are a :class:`Calibrator`'s fields (``method``
    None: no calibration); ``fit`` refits ``estimator`` and keeps the maps as given.
    """

    def __init__(
        self,
        estimator: Any,
        method: str | None = None,
        columns: list[int] | None = None,
        params: list[list[float]] | None = None,
        threshold: float | None = None,
    ) -> None:
        self.estimator = estimator
        self.method = method
        self.columns = columns
        self.params = params
        self.threshold = threshold

    def fit(self, X: Any, y: Any) -> CalibratedModel:
        self.estimator_ = clone(self.estimator).fit(X, y)
        self._after_fit()
        return self

    @classmethod
    def from_fitted(cls, estimator: Any, decision: Decision) -> CalibratedModel:
        cal = decision.calibration
        model = cls(
            estimator,
            method=cal.method if cal else None,
            columns=cal.columns if cal else None,
            params=cal.params if cal else None,
            threshold=decision.threshold,
        )
        model.estimator_ = estimator
        model._after_fit()
        return model

    def _after_fit(self) -> None:
        self.classes_ = self.estimator_.classes_
        for name in ("n_features_in_", "feature_names_in_"):
            if hasattr(self.estimator_, name):
                setattr(self, name, getattr(self.estimator_, name))

    def predict_proba(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "estimator_")
        proba = np.asarray(self.estimator_.predict_proba(X), dtype=np.float64)
        if self.method is None:
            return proba
        return calibrate(
            proba, self.method, list(self.columns or []), [np.asarray(p) for p in self.params or []]
        )

    def predict(self, X: Any) -> np.ndarray:
        out: np.ndarray = np.asarray(self.classes_)[labels(self.predict_proba(X), self.threshold)]
        return out
