# ruff: noqa: N803 - scikit-learn names the feature matrix X
"""Greedy ensemble selection (Caruana et al., 2004) and the weighted-average ensemble.

The ensemble is one scikit-learn estimator whose members are whole fitted pipelines
(preprocessing and model); :mod:`tabpipe.packaging.onnx` converts it to one ONNX graph.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone
from sklearn.utils.validation import check_is_fitted

from tabpipe.modeling import metrics


def caruana(
    oofs: list[np.ndarray],
    y: np.ndarray,
    metric: str,
    *,
    rounds: int = 40,
) -> list[float]:
    """Weights for ``oofs`` by greedy forward selection with replacement.

    Starts from the best single model; each round adds (again) the member whose
    inclusion scores best. Ties go to the earlier member, so the result is deterministic.
    """
    greater = metrics.REGISTRY[metric].greater_is_better
    regression = oofs[0].shape[1] == 1

    def score(pred: np.ndarray) -> float:
        return metrics.score(metric, y, pred[:, 0] if regression else pred)

    counts: Counter[int] = Counter()
    total = np.zeros_like(oofs[0])
    singles = [score(o) for o in oofs]
    first = int(np.argmax(singles) if greater else np.argmin(singles))
    counts[first] += 1
    total += oofs[first]
    current = singles[first]
    for n in range(1, rounds):
        trial_scores = [score((total + o) / (n + 1)) for o in oofs]
        pick = int(np.argmax(trial_scores) if greater else np.argmin(trial_scores))
        if not metrics.better(metric, trial_scores[pick], current) and n >= 5:
            break
        counts[pick] += 1
        total += oofs[pick]
        current = trial_scores[pick]
    size = sum(counts.values())
    return [counts[i] / size for i in range(len(oofs))]


class _WeightedEnsemble(BaseEstimator):  # type: ignore[misc]
    """A weighted average of member estimators' outputs.

    ``estimators`` is a list of ``(name, estimator)``; ``weights`` sum to one.
    """

    def __init__(self, estimators: list[tuple[str, Any]], weights: list[float]) -> None:
        self.estimators = estimators
        self.weights = weights

    def fit(self, X: Any, y: Any) -> Any:
        if len(self.estimators) != len(self.weights) or not self.estimators:
            raise ValueError(
                f"need one weight per estimator; got {len(self.estimators)} estimators "
                f"and {len(self.weights)} weights"
            )
        self.estimators_ = [clone(est).fit(X, y) for _, est in self.estimators]
        self._after_fit(y)
        return self

    @classmethod
    def from_fitted(cls, estimators: list[tuple[str, Any]], weights: list[float], y: Any) -> Any:
        """Assemble an ensemble from members that are already fitted (no refit)."""
        ens = cls(estimators=estimators, weights=weights)
        ens.estimators_ = [est for _, est in estimators]
        ens._after_fit(y)
        return ens

    def _after_fit(self, y: Any) -> None:
        self.weights_ = np.asarray(self.weights, dtype=np.float64) / float(np.sum(self.weights))
        first = self.estimators_[0]
        if hasattr(first, "n_features_in_"):
            self.n_features_in_ = first.n_features_in_
        if hasattr(first, "feature_names_in_"):
            self.feature_names_in_ = first.feature_names_in_


class WeightedEnsembleClassifier(ClassifierMixin, _WeightedEnsemble):  # type: ignore[misc]
    """Soft voting with weights; every member must know the same classes."""

    def _after_fit(self, y: Any) -> None:
        super()._after_fit(y)
        self.classes_ = self.estimators_[0].classes_

    def predict_proba(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "estimators_")
        out: np.ndarray = sum(
            w * np.asarray(est.predict_proba(X), dtype=np.float64)
            for w, est in zip(self.weights_, self.estimators_, strict=True)
        )
        return out

    def predict(self, X: Any) -> np.ndarray:
        labels: np.ndarray = np.asarray(self.classes_)[self.predict_proba(X).argmax(axis=1)]
        return labels


class WeightedEnsembleRegressor(RegressorMixin, _WeightedEnsemble):  # type: ignore[misc]
    """Weighted average of the members' predictions."""

    def predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "estimators_")
        out: np.ndarray = sum(
            w * np.asarray(est.predict(X), dtype=np.float64).reshape(-1)
            for w, est in zip(self.weights_, self.estimators_, strict=True)
        )
        return out
