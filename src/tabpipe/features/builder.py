"""The preprocessing builder: a ColumnTransformer chosen from the schema and the model family.

Styles (see :data:`tabpipe.modeling.zoo.Preprocessing`):

- ``tree_native``: numbers pass through with their NaNs (the boosting libraries route
  missing values themselves); categories are ordinal codes, plus their training frequency
  when a column has more than :data:`HIGH_CARDINALITY` values.
- ``tree_impute``: as above, but numbers are median-imputed and get missing indicators
  (scikit-learn forests and their ONNX form must not see NaN).
- ``linear`` and ``knn``: numbers imputed, indicated, Yeo-Johnson transformed where
  skewed (``features.power_transform``) and standardised; low-cardinality categories
  one-hot encoded after rare-category grouping; high-cardinality categories out-of-fold
  target encoded (``linear``) or frequency encoded (``knn``).

In every style datetime columns are expanded by :class:`DatetimeFeatures` (imputed, and
scaled for ``linear``/``knn``, like numbers), free-text columns get a capped TF-IDF
vocabulary each, and ``features.interactions`` adds the pairwise products of the most
predictive numeric columns.

Unseen categories at predict time: ordinal code -1, frequency 0, one-hot all zeros
after grouping into ``"__rare__"``, target encoding the training mean.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    OneHotEncoder,
    OrdinalEncoder,
    PolynomialFeatures,
    StandardScaler,
    TargetEncoder,
)

from tabpipe.config import FeaturesSpec
from tabpipe.data.cleaning import CleaningReport
from tabpipe.features.datetimes import DatetimeFeatures
from tabpipe.features.encoders import FrequencyEncoder, MissingIndicator, RareCategoryGrouper
from tabpipe.features.frame import FeaturePlan
from tabpipe.features.impute import knn_imputer
from tabpipe.features.numeric import SkewPowerTransformer

Style = Literal["tree_native", "tree_impute", "linear", "knn"]

#: Categorical columns with more distinct values than this get frequency/target encoding.
HIGH_CARDINALITY = 12
#: Categories seen fewer times than this are grouped before one-hot encoding.
RARE_MIN_COUNT = 5
#: A word: two or more characters that are neither ASCII whitespace nor ASCII
#: punctuation. scikit-learn's default ``\b\w\w+\b`` would differ in ONNX, whose
#: RE2 reads ``\w`` and ``\b`` as ASCII-only ("café" would become "caf").
TOKEN_PATTERN = r"[^ \t\n\r\f\v!-/:-@\[-`{-~]{2,}"


def plan_features(report: CleaningReport, spec: FeaturesSpec | None = None) -> FeaturePlan:
    """Features are the columns cleaning kept, split by kind."""
    spec = spec or FeaturesSpec()
    feats = report.features()
    numeric = [c for c in feats if c.kind == "numeric"]
    ranked = sorted(numeric, key=lambda c: -(c.leakage_score or 0.0))
    return FeaturePlan(
        numeric=[c.name for c in numeric],
        categorical=[c.name for c in feats if c.kind == "categorical"],
        cardinality={c.name: c.unique for c in feats if c.kind == "categorical"},
        with_missing=[c.name for c in feats if c.kind in ("numeric", "datetime") and c.missing],
        knn_impute=[c.name for c in feats if c.kind == "numeric" and c.imputer == "knn"],
        datetime=[c.name for c in feats if c.kind == "datetime"],
        text=[c.name for c in feats if c.kind == "text"],
        text_max_features=spec.text_max_features,
        power_transform=spec.power_transform,
        interactions=[c.name for c in ranked[: spec.interactions]]
        if spec.interactions >= 2
        else [],
    )


def build_preprocessor(
    plan: FeaturePlan, style: Style = "tree_native", *, task: str = "binary", seed: int = 0
) -> ColumnTransformer:
    """The ColumnTransformer for one model family's preprocessing style."""
    high = [c for c in plan.categorical if plan.cardinality.get(c, 0) > HIGH_CARDINALITY]
    low = [c for c in plan.categorical if c not in high]
    parts: list[tuple[str, Any, Any]] = []
    plain = [c for c in plan.numeric if c not in plan.knn_impute]
    if plain:
        parts.append(("numeric", _numeric(style, plan.power_transform), plain))
    if plan.knn_impute:  # nearest-neighbours imputation of the marked columns
        scale = style in ("linear", "knn")
        parts.append(("knn", knn_imputer(plan.numeric, plan.knn_impute, scale), plan.numeric))
    if plan.datetime:
        parts.append(("datetime", _datetime(style), plan.datetime))
    if style != "tree_native":  # float32 and float64 inputs get separate indicators
        numeric_missing = [c for c in plan.with_missing if c not in plan.datetime]
        datetime_missing = [c for c in plan.with_missing if c in plan.datetime]
        if numeric_missing:
            parts.append(("missing", MissingIndicator(), numeric_missing))
        if datetime_missing:
            parts.append(("datetime_missing", MissingIndicator(), datetime_missing))
    if len(plan.interactions) >= 2:
        parts.append(("interactions", _interactions(style), plan.interactions))
    for i, name in enumerate(plan.text):  # a text column goes in as one 1-D column
        parts.append((f"text{i}", _tfidf(plan.text_max_features), name))
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


def _numeric(style: Style, power: bool = False) -> Any:
    if style == "tree_native":
        return "passthrough"
    if style == "tree_impute":
        return SimpleImputer(strategy="median")
    steps: list[tuple[str, Any]] = [("impute", SimpleImputer(strategy="median"))]
    if power:
        steps.append(("power", SkewPowerTransformer()))
    return Pipeline([*steps, ("scale", StandardScaler())])


def _datetime(style: Style) -> Any:
    expand = DatetimeFeatures()
    if style == "tree_native":
        return expand
    steps: list[tuple[str, Any]] = [
        ("expand", expand),
        ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
    ]
    if style in ("linear", "knn"):
        steps.append(("scale", StandardScaler()))
    return Pipeline(steps)


def _interactions(style: Style) -> Pipeline:
    """Pairwise products (after imputation and, for linear/kNN, scaling)."""
    steps: list[tuple[str, Any]] = [("impute", SimpleImputer(strategy="median"))]
    if style in ("linear", "knn"):
        steps.append(("scale", StandardScaler()))
    products = PolynomialFeatures(degree=2, interaction_only=True, include_bias=False)
    return Pipeline([*steps, ("products", products)])


def _tfidf(max_features: int) -> TfidfVectorizer:
    """TF-IDF over word tokens; ONNX-convertible (no custom analyzer).

    The text arrives lower-cased (model frame and signature), so ``lowercase=False``
    keeps ONNX's ``StringNormalizer`` (which needs an installed system locale) out of
    the graph. Tokens are :data:`TOKEN_PATTERN` runs, which Python's ``re`` and
    onnxruntime's RE2 read alike.
    """
    return TfidfVectorizer(
        max_features=max_features, lowercase=False, token_pattern=TOKEN_PATTERN, dtype=np.float32
    )


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
