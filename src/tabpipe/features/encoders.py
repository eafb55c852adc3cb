# ruff: noqa: N803, N806 - scikit-learn names the feature matrix X
"""tabpipe's own transformers: frequency encoding, rare-category grouping, missing indicators.

All three follow the scikit-learn estimator contract and have ONNX converters in
:mod:`tabpipe.features.converters`. Categories arrive as strings (the canonical
model frame, :mod:`tabpipe.features.frame`); any hashable value works.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

UnseenPolicy = Literal["rare", "missing", "error"]

#: What a rare (or, by policy, unseen) category becomes.
RARE = "__rare__"


def _as_text(x: Any) -> np.ndarray:
    arr = np.asarray(x, dtype=object)
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    out: np.ndarray = np.vectorize(lambda v: "" if v is None else str(v), otypes=[object])(arr)
    return out


class FrequencyEncoder(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Replace each category by its share of the training rows; unseen categories become 0."""

    def fit(self, X: Any, y: Any = None) -> FrequencyEncoder:
        X = validate_data(self, X, dtype=None, ensure_all_finite=False, reset=True)
        text = _as_text(X)
        self.frequencies_: list[dict[str, float]] = []
        for j in range(text.shape[1]):
            values, counts = np.unique(text[:, j], return_counts=True)
            self.frequencies_.append(
                {str(v): float(c) / len(text) for v, c in zip(values, counts, strict=True)}
            )
        return self

    def transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "frequencies_")
        X = validate_data(self, X, dtype=None, ensure_all_finite=False, reset=False)
        text = _as_text(X)
        out = np.zeros(text.shape, dtype=np.float32)
        for j, table in enumerate(self.frequencies_):
            out[:, j] = [table.get(v, 0.0) for v in text[:, j]]
        return out

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "frequencies_")
        names = input_features if input_features is not None else input_names(self)
        return np.asarray([f"{n}_freq" for n in names], dtype=object)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.categorical = True
        tags.input_tags.allow_nan = True
        tags.transformer_tags.preserves_dtype = []  # outputs float32 or text, whatever comes in
        return tags


class RareCategoryGrouper(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Group categories seen fewer than ``min_count`` times into one ``"__rare__"`` category.

    ``unseen`` says what a category never seen in training becomes at predict time:
    ``"rare"`` (the rare group), ``"missing"`` (the empty string, tabpipe's missing
    category) or ``"error"`` (raise ``ValueError`` naming the column and the value).
    """

    def __init__(self, min_count: int = 10, unseen: UnseenPolicy = "rare") -> None:
        self.min_count = min_count
        self.unseen = unseen

    def fit(self, X: Any, y: Any = None) -> RareCategoryGrouper:
        if self.unseen not in ("rare", "missing", "error"):
            raise ValueError(
                f"unseen={self.unseen!r} is not valid; choose 'rare', 'missing' or 'error'"
            )
        X = validate_data(self, X, dtype=None, ensure_all_finite=False, reset=True)
        text = _as_text(X)
        self.kept_: list[list[str]] = []
        self.rare_: list[list[str]] = []
        for j in range(text.shape[1]):
            values, counts = np.unique(text[:, j], return_counts=True)
            keep = counts >= self.min_count
            self.kept_.append([str(v) for v in values[keep]])
            self.rare_.append([str(v) for v in values[~keep]])
        return self

    def transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "kept_")
        X = validate_data(self, X, dtype=None, ensure_all_finite=False, reset=False)
        text = _as_text(X)
        out = np.empty(text.shape, dtype=object)
        fallback = RARE if self.unseen == "rare" else ""
        for j in range(text.shape[1]):
            kept, rare = set(self.kept_[j]), set(self.rare_[j])
            for i, v in enumerate(text[:, j]):
                if v in kept:
                    out[i, j] = v
                elif v in rare:
                    out[i, j] = RARE
                elif self.unseen == "error":
                    raise ValueError(
                        f"column {input_names(self)[j]!r}, row {i}: category {v!r} was not "
                        "seen in training; set unseen='rare' or 'missing' to accept it"
                    )
                else:
                    out[i, j] = fallback
        return out

    def mapping(self, j: int) -> dict[str, str]:
        """Column ``j``'s training categories and what each becomes."""
        return {**{v: v for v in self.kept_[j]}, **dict.fromkeys(self.rare_[j], RARE)}

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "kept_")
        names = input_features if input_features is not None else input_names(self)
        return np.asarray(list(names), dtype=object)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.categorical = True
        tags.input_tags.allow_nan = True
        tags.transformer_tags.preserves_dtype = []  # outputs float32 or text, whatever comes in
        return tags


class MissingIndicator(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """One 0/1 float column per input column: 1 where the value is missing (NaN)."""

    def fit(self, X: Any, y: Any = None) -> MissingIndicator:
        validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan", reset=True)
        return self

    def transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "n_features_in_")
        X = validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan", reset=False)
        flags: np.ndarray = np.isnan(X).astype(np.float32)
        return flags

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "n_features_in_")
        names = input_features if input_features is not None else input_names(self)
        return np.asarray([f"{n}_missing" for n in names], dtype=object)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.transformer_tags.preserves_dtype = []  # outputs float32 or text, whatever comes in
        return tags


def input_names(est: BaseEstimator) -> list[str]:
    names = getattr(est, "feature_names_in_", None)
    if names is not None:
        return [str(n) for n in names]
    return [f"x{i}" for i in range(int(est.n_features_in_))]
