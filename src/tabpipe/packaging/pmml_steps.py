"""tabpipe's fitted pipeline restated in steps sklearn2pmml can convert to PMML.

JPMML-SkLearn (behind sklearn2pmml) knows scikit-learn's and the boosting libraries'
estimators, not tabpipe's own transformers. :func:`pmml_pipeline` rebuilds the fitted
pipeline with the same fitted parameters in steps it does know:

- every input column gets a domain (``ContinuousDomain`` / ``CategoricalDomain``) that
  replays the column's cleaning rules PMML can state: missing markers and sentinels
  are missing values, a missing category becomes tabpipe's missing category (``""``,
  or cleaning's fill value), a missing number cleaning's fill value, numbers are
  clipped to cleaning's bounds;
- :class:`~tabpipe.features.encoders.MissingIndicator` becomes scikit-learn's
  ``MissingIndicator``; ``FrequencyEncoder`` and ``RareCategoryGrouper`` become one
  ``LookupTransformer`` per column (their fitted tables, their unseen-value defaults);
  ``SkewPowerTransformer`` one ``ExpressionTransformer`` per skewed column (the
  Yeo-Johnson formula with the fitted lambda); ``DatetimeFeatures`` one expression per
  output (the same float64 floor arithmetic on epoch seconds); a binary or continuous
  ``TargetEncoder`` one ``LookupTransformer`` per column (unseen: the target mean);
- scikit-learn's imputers, scalers, encoders and polynomial features, and the fitted
  final estimator (LightGBM, XGBoost, scikit-learn forests, extra trees, histogram
  gradient boosting, linear models, nearest-neighbours regression) are kept as they
  are (in an ensemble member, restated as named expressions: field names must be
  unique); a weighted ensemble becomes scikit-learn's soft voting.

What has no PMML form raises :class:`~tabpipe.errors.PackagingError` naming the step or
the family: nearest-neighbours imputation, TF-IDF, multiclass target encoding, CatBoost,
nearest-neighbours classifiers, calibrated probabilities or a decision threshold.

:mod:`tabpipe.packaging.pmml` converts the result and checks the file.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from tabpipe.errors import PackagingError
from tabpipe.packaging.bundle import Manifest
from tabpipe.packaging.signature import MISSING_CATEGORY, ColumnSpec

#: Families JPMML-SkLearn has no converter for.
UNSUPPORTED_FAMILIES = {
    "catboost": "JPMML-SkLearn has no CatBoost converter",
    "knn": "JPMML-SkLearn's nearest-neighbours classifier gives the majority class, "
    "not class probabilities",
}
ADVICE = "Use the ONNX or MLflow export instead."
#: The prefix of an ensemble member's derived field names.
ENSEMBLE_MEMBER = "member"


def refuse(manifest: Manifest, what: str) -> PackagingError:
    return PackagingError(
        f"the {manifest.family!r} model {manifest.name!r} cannot be expressed in PMML: {what}. "
        + ADVICE
    )


def pmml_pipeline(pipeline: Any, manifest: Manifest) -> Any:
    """A ``PMMLPipeline`` of PMML-expressible steps equivalent to the fitted ``pipeline``."""
    from sklearn2pmml.pipeline import PMMLPipeline

    from tabpipe.modeling.decision import CalibratedModel
    from tabpipe.modeling.ensemble import WeightedEnsembleClassifier, WeightedEnsembleRegressor

    if manifest.family == "catboost" or (
        manifest.family == "knn" and manifest.task != "regression"
    ):
        raise refuse(manifest, UNSUPPORTED_FAMILIES[manifest.family])
    if isinstance(pipeline, CalibratedModel):
        applied = [f"{pipeline.method} calibration"] if pipeline.method else []
        if pipeline.threshold is not None:
            applied.append(f"the decision threshold {pipeline.threshold:.4g}")
        raise refuse(
            manifest,
            f"{' and '.join(applied)} would be lost in PMML; train with 'calibration: none' "
            "and 'threshold: {objective: none}' for a model PMML can express",
        )
    domains = _domains(manifest)  # refuses input kinds PMML cannot take first
    if isinstance(pipeline, WeightedEnsembleClassifier | WeightedEnsembleRegressor):
        model: Any = _voting(pipeline, manifest)
    else:
        model = _member(pipeline, manifest, "the pipeline")
    pmml = PMMLPipeline([("domain", domains), ("model", model)])
    pmml.active_fields = np.asarray(manifest.signature.names, dtype=object)
    pmml.target_fields = np.asarray([manifest.target], dtype=object)
    return pmml


def _member(pipeline: Any, manifest: Manifest, which: str, prefix: str = "") -> Any:
    """One fitted ``Pipeline(features, model)`` with its feature steps translated."""
    import copy

    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    if not isinstance(pipeline, Pipeline) or len(pipeline.steps) != 2:
        raise refuse(manifest, f"{which} is a {type(pipeline).__name__}, not features + model")
    (_, features), (_, model) = pipeline.steps
    if not isinstance(features, ColumnTransformer):
        raise refuse(manifest, f"{which} starts with {type(features).__name__}")
    family = type(model).__name__
    if family.startswith("CatBoost"):
        raise refuse(manifest, f"{which} is a {family}: {UNSUPPORTED_FAMILIES['catboost']}")
    if family == "KNeighborsClassifier":
        raise refuse(manifest, f"{which} is a {family}: {UNSUPPORTED_FAMILIES['knn']}")
    out = copy.copy(pipeline)
    steps = [("features", _column_transformer(features, manifest, prefix))]
    if family.startswith("LGBM"):
        zeros = [j for j in _lightgbm_missing_as_zero(model) if j in _numeric_outputs(features)]
        if zeros:
            width = int(model.n_features_in_)
            steps.append(("lightgbm_missing", _zero_missing(zeros, width, f"{prefix}lightgbm")))
    out.steps = [*steps, ("model", model)]
    return out


def _lightgbm_missing_as_zero(model: Any) -> list[int]:
    """Features LightGBM splits on with ``missing_type`` None (no missing value in
    training): LightGBM reads a missing value there as 0, PMML's tree as "no branch
    matches"."""
    found: set[int] = set()

    def walk(node: dict[str, Any]) -> None:
        if "split_feature" in node:
            if node.get("missing_type") == "None":
                found.add(int(node["split_feature"]))
            walk(node["left_child"])
            walk(node["right_child"])

    for tree in model.booster_.dump_model()["tree_info"]:
        walk(tree["tree_structure"])
    return sorted(found)


def _numeric_outputs(features: Any) -> set[int]:
    """Output columns of ``features`` that are numbers (may be missing), not codes of a
    category encoder (never missing: a missing category is a category)."""
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, TargetEncoder

    from tabpipe.features.encoders import FrequencyEncoder

    encoders = (OneHotEncoder, OrdinalEncoder, TargetEncoder, FrequencyEncoder)
    out: set[int] = set()
    for name, step, _ in features.transformers_:
        last = step.steps[-1][1] if isinstance(step, Pipeline) else step
        if not isinstance(last, encoders):
            out.update(
                range(features.output_indices_[name].start, features.output_indices_[name].stop)
            )
    return out


def _zero_missing(columns: list[int], width: int, branch: str) -> Any:
    """Missing values of ``columns`` become 0 (the others pass through)."""
    chosen = set(columns)
    parts = [
        (
            f"f{j}",
            _named(_expression("0.0 if pandas.isnull(X[0]) else X[0]"), branch, j)
            if j in chosen
            else "passthrough",
            [j],
        )
        for j in range(width)
    ]
    return _fitted_side_by_side(parts, width, float)


def _voting(ensemble: Any, manifest: Manifest) -> Any:
    """The weighted ensemble as scikit-learn's soft voting (JPMML: a weighted-average
    mining model), each member a translated pipeline."""
    from sklearn.ensemble import VotingClassifier, VotingRegressor
    from sklearn.preprocessing import LabelEncoder
    from sklearn.utils import Bunch

    from tabpipe.modeling.ensemble import WeightedEnsembleClassifier

    names = [f"{ENSEMBLE_MEMBER}{i}" for i in range(len(ensemble.estimators_))]
    members = [
        _member(m, manifest, f"ensemble member {i} ({type(m[-1]).__name__})", f"{names[i]}/")
        for i, m in enumerate(ensemble.estimators_)
    ]
    weights = [float(w) for w in ensemble.weights_]
    voting: Any
    if isinstance(ensemble, WeightedEnsembleClassifier):
        voting = VotingClassifier(list(zip(names, members, strict=True)), voting="soft")
        voting.le_ = LabelEncoder().fit(ensemble.classes_)
        voting.classes_ = voting.le_.classes_
    else:
        voting = VotingRegressor(list(zip(names, members, strict=True)))
    voting.weights = weights
    voting.estimators_ = members
    voting.named_estimators_ = Bunch(**dict(zip(names, members, strict=True)))
    return voting


def _domains(manifest: Manifest) -> Any:
    """One domain per input column, fitted (on one placeholder row) with no value list."""
    from sklearn.compose import ColumnTransformer

    parts = []
    row: dict[str, list[Any]] = {}
    for col in manifest.signature.columns:
        if col.kind == "numeric":  # float32, as tabpipe feeds numbers to the model
            parts.append((col.name, _continuous(col, np.float32), [col.name]))
            row[col.name] = [col.median if col.median is not None else 0.0]
        elif col.kind == "datetime":  # float64 seconds since 1970-01-01 UTC
            parts.append((col.name, _continuous(col, np.float64), [col.name]))
            row[col.name] = [0.0]
        elif col.kind == "categorical":
            parts.append((col.name, _categorical(col), [col.name]))
            row[col.name] = [(col.categories or ["x"])[0]]
        else:
            raise refuse(manifest, f"the {col.kind} input column {col.name!r} has no PMML form")
    domains = ColumnTransformer(parts, remainder="drop")
    domains.fit(pd.DataFrame(row))
    return domains


def _continuous(col: ColumnSpec, dtype: Any) -> Any:
    from sklearn2pmml.decoration import ContinuousDomain

    rules = col.rules
    options: dict[str, Any] = {}
    if rules is not None:
        if rules.sentinels:
            options["missing_values"] = list(rules.sentinels)
        if rules.fill_number is not None:
            options["missing_value_treatment"] = "as_value"
            options["missing_value_replacement"] = rules.fill_number
        if rules.lower is not None or rules.upper is not None:
            options["outlier_treatment"] = "as_extreme_values"
            options["low_value"] = -math.inf if rules.lower is None else rules.lower
            options["high_value"] = math.inf if rules.upper is None else rules.upper
    return ContinuousDomain(
        with_data=False, invalid_value_treatment="as_is", dtype=dtype, **options
    )


def _categorical(col: ColumnSpec) -> Any:
    from sklearn2pmml.decoration import CategoricalDomain

    rules = col.rules
    markers = [m for m in (rules.missing_markers if rules else []) if m != MISSING_CATEGORY]
    fill = rules.fill_category if rules and rules.fill_category is not None else MISSING_CATEGORY
    return CategoricalDomain(
        with_data=False,
        missing_values=markers or None,
        missing_value_treatment="as_value",
        missing_value_replacement=fill,
        invalid_value_treatment="as_is",
    )


def _column_transformer(features: Any, manifest: Manifest, prefix: str) -> Any:
    """A copy of the fitted ColumnTransformer with each branch translated."""
    import copy

    out = copy.copy(features)
    out.transformers_ = [
        (name, _translate(step, f"{prefix}{name}", manifest), columns)
        for name, step, columns in features.transformers_
    ]
    return out


def _translate(step: Any, branch: str, manifest: Manifest) -> Any:
    """``step`` itself when JPMML knows it, else a PMML-expressible equivalent."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import (
        FunctionTransformer,
        OneHotEncoder,
        OrdinalEncoder,
        PolynomialFeatures,
        StandardScaler,
        TargetEncoder,
    )

    from tabpipe.features import encoders
    from tabpipe.features.datetimes import DatetimeFeatures
    from tabpipe.features.numeric import SkewPowerTransformer

    if isinstance(step, str):  # "passthrough" or "drop"
        return step
    if isinstance(step, Pipeline):
        import copy

        out = copy.copy(step)
        out.steps = [(n, _translate(s, f"{branch}/{n}", manifest)) for n, s in step.steps]
        return out
    if isinstance(step, ColumnTransformer):
        return _column_transformer(step, manifest, f"{branch}/")
    if isinstance(step, FunctionTransformer) and step.func is None:
        return "passthrough"  # how a fitted ColumnTransformer keeps "passthrough"
    if isinstance(step, OneHotEncoder):
        return step  # binary indicators, no derived fields of their own
    in_member = branch.startswith(ENSEMBLE_MEMBER)
    if isinstance(step, OrdinalEncoder):
        if not in_member:
            return step
        tables = [
            ({str(c): float(k) for k, c in enumerate(cats)}, -1.0) for cats in step.categories_
        ]
        return _lookups(tables, float, branch)
    if isinstance(step, SimpleImputer | StandardScaler | PolynomialFeatures):
        return _expressed(step, branch, manifest) if in_member else step
    if isinstance(step, encoders.MissingIndicator):
        if in_member:
            missing = ["1.0 if pandas.isnull(X[0]) else 0.0"] * int(step.n_features_in_)
            return _expressions(missing, branch)
        return _missing_indicator(int(step.n_features_in_))
    if isinstance(step, encoders.FrequencyEncoder):
        return _lookups([(t, 0.0) for t in step.frequencies_], float, branch)
    if isinstance(step, encoders.RareCategoryGrouper):
        if step.unseen == "error":
            raise refuse(manifest, f"step {branch!r} refuses unseen categories (unseen='error')")
        fallback = encoders.RARE if step.unseen == "rare" else MISSING_CATEGORY
        groups = [(step.mapping(j), fallback) for j in range(len(step.kept_))]
        return _lookups(groups, str, branch)
    if isinstance(step, SkewPowerTransformer):
        return _power(step, branch)
    if isinstance(step, DatetimeFeatures):
        return _datetime(step, branch)
    if isinstance(step, TargetEncoder):
        if step.target_type_ == "multiclass":
            raise refuse(manifest, f"step {branch!r}: multiclass target encoding")
        tables = [
            (
                {str(c): float(v) for c, v in zip(cats, enc, strict=True)},
                float(step.target_mean_),
            )
            for cats, enc in zip(step.categories_, step.encodings_, strict=True)
        ]
        return _lookups(tables, float, branch)
    raise refuse(manifest, f"step {branch!r} ({type(step).__name__}) has no PMML equivalent")


def _missing_indicator(width: int) -> Any:
    from sklearn.impute import MissingIndicator

    indicator = MissingIndicator(features="all", missing_values=np.nan)
    return indicator.fit(np.full((1, width), np.nan))


def _lookups(tables: Sequence[tuple[Mapping[str, Any], Any]], kind: type, branch: str) -> Any:
    """One ``LookupTransformer`` per column, side by side."""
    from sklearn2pmml.preprocessing import LookupTransformer

    parts = [
        (
            f"lookup{j}",
            _named(LookupTransformer(mapping=dict(table), default_value=kind(default)), branch, j),
            [j],
        )
        for j, (table, default) in enumerate(tables)
    ]
    return _fitted_side_by_side(parts, len(tables), str if kind is str else object)


def _expressed(step: Any, branch: str, manifest: Manifest) -> Any:
    """A numeric scikit-learn step as one named expression per output column.

    Ensemble members derive fields from the same inputs, and PMML field names must be
    unique: JPMML names these steps' fields after their inputs, so in a member they are
    restated as expressions with names of their own.
    """
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import StandardScaler

    if isinstance(step, SimpleImputer):
        if step.add_indicator or not np.all(np.isfinite(step.statistics_.astype(float))):
            raise refuse(manifest, f"step {branch!r}: an imputer without a value per column")
        return _expressions(
            [f"{float(v)!r} if pandas.isnull(X[0]) else X[0]" for v in step.statistics_], branch
        )
    if isinstance(step, StandardScaler):
        mean = step.mean_ if step.with_mean else np.zeros(step.n_features_in_)
        scale = step.scale_ if step.with_std else np.ones(step.n_features_in_)
        return _expressions(
            [f"(X[0] - {float(m)!r}) / {float(s)!r}" for m, s in zip(mean, scale, strict=True)],
            branch,
        )
    powers = step.powers_
    if step.include_bias or powers.max() > 1:
        raise refuse(manifest, f"step {branch!r}: polynomial features beyond pairwise products")
    parts = []
    for k, row in enumerate(powers):
        used = [int(j) for j in np.flatnonzero(row)]
        if len(used) == 1:  # a column itself
            parts.append((f"term{k}", "passthrough", used))
            continue
        expr = " * ".join(f"X[{i}]" for i in range(len(used)))
        parts.append((f"term{k}", _named(_expression(expr), branch, k), used))
    return _fitted_side_by_side(parts, int(step.n_features_in_), float)


def _expression(expr: str) -> Any:
    from sklearn2pmml.preprocessing import ExpressionTransformer

    return ExpressionTransformer(expr)


def _expressions(exprs: list[str], branch: str) -> Any:
    """One named expression per column, side by side."""
    parts = [(f"expr{j}", _named(_expression(e), branch, j), [j]) for j, e in enumerate(exprs)]
    return _fitted_side_by_side(parts, len(exprs), float)


def _named(transformer: Any, branch: str, j: int | str) -> Any:
    """``transformer`` with an output field name of its own (fields must be unique)."""
    from sklearn2pmml.decoration import Alias

    return Alias(transformer, name=f"{branch}/{j}", prefit=True)


def _power(step: Any, branch: str) -> Any:
    """Yeo-Johnson per skewed column with the fitted lambda; the others pass through."""
    from sklearn2pmml.preprocessing import ExpressionTransformer

    parts: list[tuple[str, Any, list[int]]] = []
    for j, lam in enumerate(step.lambdas_):
        if np.isnan(lam):
            parts.append((f"power{j}", "passthrough", [j]))
            continue
        expression = ExpressionTransformer(_yeo_johnson(float(lam)))
        parts.append((f"power{j}", _named(expression, branch, j), [j]))
    return _fitted_side_by_side(parts, len(step.lambdas_), float)


def _yeo_johnson(lam: float) -> str:
    """The Yeo-Johnson transform of ``X[0]`` as a sklearn2pmml expression."""
    from tabpipe.features.numeric import EPS

    x = "X[0]"
    if abs(lam) < EPS:
        pos = f"numpy.log1p({x})"
    else:
        pos = f"(numpy.power({x} + 1.0, {lam!r}) - 1.0) / {lam!r}"
    if abs(lam - 2.0) > EPS:
        neg = f"-(numpy.power(1.0 - {x}, {2.0 - lam!r}) - 1.0) / {2.0 - lam!r}"
    else:
        neg = f"-numpy.log1p(-{x})"
    return f"({pos}) if {x} >= 0.0 else ({neg})"


def _datetime(step: Any, branch: str) -> Any:
    """Each date column's outputs as expressions of its epoch seconds: the same float64
    floor arithmetic as :func:`tabpipe.features.datetimes.calendar`, in the same order."""
    parts: list[tuple[str, Any, list[int]]] = []
    for j in range(len(step.reference_)):
        exprs = _calendar_expressions(step.outputs(j), float(step.reference_[j]))
        for name, expr in exprs.items():
            safe = _expression(f"None if pandas.isnull(X[0]) else ({expr})")  # missing: missing
            parts.append((f"{name}{j}", _named(safe, f"{branch}/{j}", name), [j]))
    return _fitted_side_by_side(parts, len(step.reference_), float)


def _calendar_expressions(outputs: list[str], reference: float) -> dict[str, str]:
    from tabpipe.data.dates import SECONDS_PER_DAY
    from tabpipe.features.datetimes import CYCLE_GRID, TAU

    day_s = repr(float(SECONDS_PER_DAY))

    def f(e: str) -> str:
        return f"numpy.floor({e})"

    x = "X[0]"
    days = f(f"{x} / {day_s}")
    second_of_day = f"({x} - {days} * {day_s})"
    z = f"({days} + 719468.0)"
    era = f(f"{z} / 146097.0")
    doe = f"({z} - {era} * 146097.0)"
    yoe = f(
        f"({doe} - {f(f'{doe} / 1460.0')} + {f(f'{doe} / 36524.0')} - {f(f'{doe} / 146096.0')})"
        " / 365.0"
    )
    doy = f"({doe} - (365.0 * {yoe} + {f(f'{yoe} / 4.0')} - {f(f'{yoe} / 100.0')}))"
    mp = f(f"(5.0 * {doy} + 2.0) / 153.0")
    month = f"(({mp} + 3.0 - 12.0) if {mp} >= 10.0 else ({mp} + 3.0))"
    shifted = f"({days} + 3.0)"
    parts = {
        "year": f"({yoe} + {era} * 400.0 + (1.0 if {month} <= 2.0 else 0.0))",
        "month": month,
        "day": f"({doy} - {f(f'(153.0 * {mp} + 2.0) / 5.0')} + 1.0)",
        "dayofweek": f"({shifted} - 7.0 * {f(f'{shifted} / 7.0')})",
        "hour": f(f"{second_of_day} / 3600.0"),
    }
    cycles = {
        "month": f"(({month} - 1.0) / 12.0)",
        "dayofweek": f"({parts['dayofweek']} / 7.0)",
        "hour": f"(({second_of_day} / 3600.0) / 24.0)",
    }
    grid = repr(float(CYCLE_GRID))
    out = {}
    for name in outputs:
        if name in parts:
            out[name] = parts[name]
        elif name == "elapsed_days":
            out[name] = f"({x} - {reference!r}) / {day_s}"
        else:
            base, fn = name.rsplit("_", 1)
            wave = f"numpy.{fn}({TAU!r} * {cycles[base]})"
            out[name] = f"numpy.rint({wave} * {grid}) / {grid}"
    return out


def _fitted_side_by_side(parts: list[tuple[str, Any, list[int]]], width: int, kind: Any) -> Any:
    """A ColumnTransformer over positional columns, fitted on one placeholder row."""
    from sklearn.compose import ColumnTransformer

    sample = np.zeros((1, width)) if kind is float else np.full((1, width), "x", dtype=object)
    joined = ColumnTransformer(parts, remainder="drop")
    with np.errstate(all="ignore"):
        joined.fit(sample)
    return joined
