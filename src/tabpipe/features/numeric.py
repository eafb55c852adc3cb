# ruff: noqa: N803, N806 - scikit-learn names the feature matrix X
"""Numeric transforms: Yeo-Johnson on the skewed columns only.

Linear models and k-nearest neighbours suffer from long tails (one extreme value
dominates a coefficient or a distance). :class:`SkewPowerTransformer` measures each
column's skewness in training and applies the Yeo-Johnson power transform, with
scikit-learn's maximum-likelihood lambda, to the columns whose absolute skewness is
above ``threshold``; the others pass through unchanged. It is meant to run after
imputation and before scaling.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.preprocessing import PowerTransformer
from sklearn.utils.validation import check_is_fitted, validate_data

from tabpipe.features.encoders import input_names

#: |lambda| (or |lambda - 2|) below this uses the logarithm branch, as scikit-learn does.
EPS = float(np.spacing(1.0))


class SkewPowerTransformer(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Yeo-Johnson on columns with ``|skewness| > threshold``; ``lambdas_`` is NaN elsewhere."""

    def __init__(self, threshold: float = 1.0) -> None:
        self.threshold = threshold

    def fit(self, X: Any, y: Any = None) -> SkewPowerTransformer:
        X = validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan", reset=True)
        self.skewness_ = np.asarray([_skew(X[:, j]) for j in range(X.shape[1])])
        self.lambdas_ = np.full(X.shape[1], np.nan)
        skewed = np.flatnonzero(np.abs(self.skewness_) > self.threshold)
        if skewed.size:
            with np.errstate(over="ignore", invalid="ignore"):
                power = PowerTransformer(method="yeo-johnson", standardize=False)
                power.fit(X[:, skewed])
            self.lambdas_[skewed] = power.lambdas_
        return self

    def transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "lambdas_")
        X = validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan", reset=False)
        out: np.ndarray = np.array(X, dtype=np.float64)
        for j, lam in enumerate(self.lambdas_):
            if not np.isnan(lam):
                out[:, j] = yeo_johnson(out[:, j], float(lam))
        return out.astype(np.float32)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "lambdas_")
        names = input_features if input_features is not None else input_names(self)
        return np.asarray(list(names), dtype=object)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.transformer_tags.preserves_dtype = []  # always float32 out
        return tags


def yeo_johnson(x: np.ndarray, lam: float) -> np.ndarray:
    """The Yeo-Johnson transform of one column (NaN stays NaN)."""
    out = np.full_like(x, np.nan)
    with np.errstate(invalid="ignore"):
        pos, neg = x >= 0, x < 0
    if abs(lam) < EPS:
        out[pos] = np.log1p(x[pos])
    else:
        out[pos] = (np.power(x[pos] + 1.0, lam) - 1.0) / lam
    if abs(lam - 2.0) > EPS:
        out[neg] = -(np.power(1.0 - x[neg], 2.0 - lam) - 1.0) / (2.0 - lam)
    else:
        out[neg] = -np.log1p(-x[neg])
    return out


def _skew(column: np.ndarray) -> float:
    values = column[~np.isnan(column)]
    if values.size < 3:
        return 0.0
    centred = values - values.mean()
    spread = float(np.mean(centred**2))
    if spread <= 0.0 or not np.isfinite(spread):
        return 0.0
    return float(np.mean(centred**3) / spread**1.5)
