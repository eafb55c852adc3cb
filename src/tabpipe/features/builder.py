"""The preprocessing builder: a ColumnTransformer chosen from the schema and the model family.

Styles (see :data:`tabpipe.modeling.zoo.Preprocessing`):

- ``tree_native``: numbers pass through with their NaNs (the boosting libraries route
  missing values themselves); categories are ordinal codes, plus their training frequency
  when a column has more than :data:`HIGH_CARDINALITY` values.
- ``tree_impute``: as above, but numbers are median-imputed and get missing indicators
  (scikit-learn forests and their ONNX form must not see NaN).
- ``linear`` and ``knn``: numbers imputed, indicated and standardised; low-cardinality
  categories one-hot encoded after rare-category grouping; high-cardinality categories
  out-of-fold target encoded (``linear``) or frequency encoded (``knn``).

Unseen categories at predict time: ordinal code -1, frequency 0, one-hot all zeros
after grouping into ``"__rare__"``, target encoding the training mean.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler, TargetEncoder

from tabpipe.data.cleaning import CleaningReport
from tabpipe.features.encoders import FrequencyEncoder, MissingIndicator, RareCategoryGrouper
from tabpipe.features.frame import FeaturePlan
from tabpipe.features.impute import knn_imputer

Style = Literal["tree_native", "tree_impute", "linear", "knn"]

#: Categorical columns with more distinct values than this get frequency/target encoding.
HIGH_CARDINALITY = 12
#: Categories seen fewer times than this are grouped before one-hot encoding.
RARE_MIN_COUNT = 5


def plan_features(report: CleaningReport) -> FeaturePlan:
    """Features are the columns cleaning kept, split by kind."""
    feats = report.features()
    return FeaturePlan(
        numeric=[c.name for c in feats if c.kind == "numeric"],
        categorical=[c.name for c in feats if c.kind == "categorical"],
        cardinality={c.name: c.unique for c in feats if c.kind == "categorical"},
        with_missing=[c.name for c in feats if c.kind == "numeric" and c.missing > 0],
        knn_impute=[c.name for c in feats if c.kind == "numeric" and c.imputer == "knn"],
    )


def build_preprocessor(
    plan: FeaturePlan, style: Style = "tree_native", *, task: str = "binary", seed: int = 0
) -> ColumnTransformer:
    """The ColumnTransformer for one model family's preprocessing style."""
    high = [c for c in plan.categorical if plan.cardinality.get(c, 0) > HIGH_CARDINALITY]
    low = [c for c in plan.categorical if c not in high]
    parts: list[tuple[str, Any, list[str]]] = []
    plain = [c for c in plan.numeric if c not in plan.knn_impute]
    if plain:
        parts.append(("numeric", _numeric(style), plain))
    if plan.knn_impute:  # nearest-neighbours imputation of the marked columns
        scale = style in ("linear", "knn")
        parts.append(("knn", knn_imputer(plan.numeric, plan.knn_impute, scale), plan.numeric))
    if plan.with_missing and style != "tree_native":
        parts.append(("missing", MissingIndicator(), plan.with_missing))
    if style in ("tree_native", "tree_impute"):
        if plan.categorical:
            parts.append(("ordinal", _ordinal(), plan.categorical))
        if high:
            parts.append(("frequency", FrequencyEncoder(), high))
    else:
        if low:
            parts.append(("onehot", _onehot(), low))
        if high and style == "linear":
            parts.append(("target", _target(task, seed), high))
        elif high:
            parts.append(("frequency", FrequencyEncoder(), high))
    return ColumnTransformer(parts, remainder="drop", sparse_threshold=0.0)


def _numeric(style: Style) -> Any:
    if style == "tree_native":
        return "passthrough"
    if style == "tree_impute":
        return SimpleImputer(strategy="median")
    return Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])


def _ordinal() -> OrdinalEncoder:
    return OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, dtype=np.float32)


def _onehot() -> Pipeline:
    return Pipeline(
        [
            ("group", RareCategoryGrouper(min_count=RARE_MIN_COUNT, unseen="rare")),
            ("encode", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
        ]
    )


def _target(task: str, seed: int) -> TargetEncoder:
    from sklearn.model_selection import KFold, StratifiedKFold

    target_type = {"binary": "binary", "multiclass": "multiclass"}.get(task, "continuous")
    cv: Any = (
        StratifiedKFold(5, shuffle=True, random_state=seed)
        if task != "regression"
        else KFold(5, shuffle=True, random_state=seed)
    )
    return TargetEncoder(target_type=target_type, cv=cv)
