"""The preprocessing builder: a ColumnTransformer chosen from the schema and the model family."""

from __future__ import annotations

from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from tabpipe.data.cleaning import CleaningReport
from tabpipe.features.frame import FeaturePlan


def plan_features(report: CleaningReport) -> FeaturePlan:
    """Features are the columns cleaning kept, split by kind."""
    return FeaturePlan(
        numeric=[c.name for c in report.features() if c.kind == "numeric"],
        categorical=[c.name for c in report.features() if c.kind == "categorical"],
    )


def build_preprocessor(plan: FeaturePlan, *, scale: bool) -> ColumnTransformer:
    """Median imputation (plus scaling for linear models) and one-hot encoding.

    Unseen categories at predict time encode as all zeros (``handle_unknown='ignore'``).
    """
    numeric_steps: list[tuple[str, object]] = [("impute", SimpleImputer(strategy="median"))]
    if scale:
        numeric_steps.append(("scale", StandardScaler()))
    parts: list[tuple[str, object, list[str]]] = []
    if plan.numeric:
        parts.append(("numeric", Pipeline(numeric_steps), plan.numeric))
    if plan.categorical:
        parts.append(
            (
                "categorical",
                OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                plan.categorical,
            )
        )
    return ColumnTransformer(parts, remainder="drop", sparse_threshold=0.0)
