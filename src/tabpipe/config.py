"""The pipeline spec: the only place where raw dicts (YAML, CLI flags) become objects.

Unknown keys and bad values fail at load time with a :class:`ConfigError` that
names the key and lists the valid choices.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

# The source specs live beside the readers; re-exported here as part of the spec.
from tabpipe.data.sources.spec import (
    FileSource,
    HttpSource,
    MqttSource,
    SnapshotRef,
    Source,
    SourceSpec,
    SqlSource,
    normalize_source,
    redact_url,
    resolve_relative,
)
from tabpipe.engine.spec import EngineSpec
from tabpipe.errors import ConfigError
from tabpipe.monitoring.spec import MonitoringSpec, RetrainingSpec

Task = Literal["binary", "multiclass", "regression"]
TaskOrAuto = Literal["auto", "binary", "multiclass", "regression"]
Family = Literal[
    "lightgbm",
    "xgboost",
    "catboost",
    "hist_gb",
    "random_forest",
    "extra_trees",
    "linear",
    "knn",
]

TASKS: tuple[str, ...] = get_args(TaskOrAuto)
FAMILIES: tuple[Family, ...] = get_args(Family)

#: Metrics per task; the first one is the default.
METRICS: dict[str, tuple[str, ...]] = {
    "binary": (
        "roc_auc",
        "log_loss",
        "accuracy",
        "balanced_accuracy",
        "f1",
        "precision",
        "recall",
        "pr_auc",
        "mcc",
        "brier",
    ),
    "multiclass": (
        "log_loss",
        "accuracy",
        "balanced_accuracy",
        "f1_macro",
        "f1_weighted",
        "precision_macro",
        "recall_macro",
        "roc_auc_ovr",
        "mcc",
    ),
    "regression": ("rmse", "mae", "r2", "mape", "rmsle"),
}
ALL_METRICS: tuple[str, ...] = tuple(dict.fromkeys(m for ms in METRICS.values() for m in ms))


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SplitSpec(_Spec):
    """How the data is split: a held-out test share, then k folds for validation."""

    test_size: float = Field(0.2, gt=0.0, lt=0.5)
    folds: int = Field(5, ge=2, le=20)
    stratify: bool = True
    group_column: str | None = Field(
        None, description="Rows sharing a value stay in one fold (and one side of the split)."
    )
    time_column: str | None = Field(
        None, description="Time-ordered validation: the test split and each fold come later."
    )


class SelectionSpec(_Spec):
    """Which leaderboard candidate is packaged: the best by metric, under constraints."""

    max_latency_ms: float | None = Field(
        None, gt=0, description="Largest single-row ONNX predict latency (milliseconds)."
    )
    max_size_mb: float | None = Field(None, gt=0, description="Largest ONNX model size (MB).")
    interpretable_only: bool = Field(False, description="Only glass-box models (linear).")
    ensemble: bool = Field(True, description="Build a greedy weighted ensemble candidate.")
    bagging: bool = Field(
        False,
        description=(
            "Ensemble members are the averaged fold models of cross-validation (a bag) "
            "instead of one refit on all rows, while the time budget allows. Costs about "
            "k times the single-row latency of each member; off by default."
        ),
    )


class CostSpec(_Spec):
    """What each kind of mistake costs, for the ``cost`` threshold objective."""

    fp: float = Field(1.0, ge=0, description="Cost of a false positive.")
    fn: float = Field(1.0, ge=0, description="Cost of a false negative.")

    @model_validator(mode="after")
    def _some_cost(self) -> CostSpec:
        if self.fp + self.fn <= 0:
            raise ValueError("threshold.cost needs fp or fn above 0")
        return self


class ThresholdSpec(_Spec):
    """The decision threshold on P(positive) of a binary classifier.

    ``none`` keeps the most probable class (0.5); ``f1`` maximises F1 and ``cost``
    minimises ``fp * false positives + fn * false negatives`` on the out-of-fold
    predictions. Giving ``cost`` alone implies ``objective: cost``.
    """

    objective: Literal["none", "f1", "cost"] = "none"
    cost: CostSpec | None = None

    @model_validator(mode="before")
    @classmethod
    def _cost_implies_objective(cls, value: Any) -> Any:
        if isinstance(value, dict) and value.get("cost") is not None and "objective" not in value:
            return {**value, "objective": "cost"}
        return value

    @model_validator(mode="after")
    def _cost_given(self) -> ThresholdSpec:
        if self.objective == "cost" and self.cost is None:
            raise ValueError("threshold objective 'cost' needs cost: {fp: ..., fn: ...}")
        return self


Calibration = Literal["auto", "none", "sigmoid", "isotonic", "temperature"]
Imputation = Literal["model", "knn", "median", "mean", "mode", "constant"]

LogicalType = Literal[
    "numeric", "integer", "categorical", "boolean", "datetime", "text", "identifier"
]
LOGICAL_TYPES: tuple[str, ...] = get_args(LogicalType)


class ColumnDeclaration(_Spec):
    """What the user states about one column; it overrides what cleaning infers."""

    type: LogicalType | None = Field(None, description="The column's logical type.")
    role: Literal["feature", "exclude"] | None = Field(
        None, description="Force the column into the features, or keep it out."
    )
    reason: str | None = Field(None, description="Why (shown in the ledger).")
    required: bool = True
    nullable: bool | None = None
    minimum: float | None = None
    maximum: float | None = None
    categories: list[str] | None = Field(None, description="The allowed values.")
    missing_values: list[str] = Field(
        default_factory=list, description="More values that mean missing here."
    )
    impute: Imputation | None = Field(
        None,
        description="How this column's missing values are filled (overrides "
        "cleaning.impute_numeric / impute_categorical); knn is for numeric columns.",
    )


class CleaningSpec(_Spec):
    """Each cleaning step and its policy; every decision lands in the cleaning ledger."""

    missing_markers: list[str] = Field(
        default_factory=list, description="Extra strings that mean missing (all columns)."
    )
    sentinels: list[float] = Field(
        default_factory=lambda: [-999.0, -9999.0, -99999.0, 999999.0],
        description="Numbers that mean missing when far outside a column's other values.",
    )
    drop_missing_share: float = Field(
        0.95, gt=0, le=1, description="Drop a column when this share of it is missing."
    )
    impute_numeric: Literal["model", "knn", "median", "mean", "constant"] = Field(
        "model",
        description="model: left to each model family's own handling; knn: the nearest "
        "neighbours on the numeric features, fitted inside the model pipeline.",
    )
    impute_categorical: Literal["model", "mode", "constant"] = "model"
    fill_number: float = 0.0
    fill_category: str = "missing"
    duplicates: Literal["report", "drop"] = "report"
    conflicting_duplicates: Literal["report", "drop"] = "report"
    outlier_method: Literal["iqr", "zscore"] = "iqr"
    outlier_threshold: float | None = Field(
        None, gt=0, description="IQR multiplier (default 3) or robust z-score (default 3.5)."
    )
    outliers: Literal["flag", "clip", "drop"] = "flag"
    fix_formats: bool = Field(
        True, description="Fold case/whitespace variants, parse numbers, units, dates, booleans."
    )
    near_constant_share: float = Field(0.995, gt=0.5, le=1)
    leakage_threshold: float = Field(
        0.98, gt=0.5, le=1, description="Exclude a feature that alone predicts this well."
    )
    rare_class_share: float = Field(0.01, ge=0, lt=0.5)


class FeaturesSpec(_Spec):
    """Feature transforms beyond each model family's preprocessing style."""

    power_transform: bool = Field(
        True, description="Yeo-Johnson on skewed numeric columns for linear and kNN models."
    )
    interactions: int = Field(
        0,
        ge=0,
        le=10,
        description="Add pairwise products of the N most predictive numeric columns (0: off).",
    )
    text_max_features: int = Field(
        200, ge=1, le=10_000, description="TF-IDF vocabulary cap per free-text column."
    )


class PipelineSpec(_Spec):
    """Everything a run needs to know. Loaded from YAML or built from CLI flags."""

    name: str | None = Field(None, description="Model name; defaults to the data file's stem.")
    source: Source
    target: str
    task: TaskOrAuto = "auto"
    split: SplitSpec = SplitSpec()
    time_budget: float = Field(60.0, gt=0, description="Seconds for the whole training search.")
    metric: str | None = None
    seed: int = 0
    models: tuple[Family, ...] = FAMILIES
    max_trials: int | None = Field(
        None,
        ge=1,
        description="Stop the search after this many trials (a count makes runs reproducible).",
    )
    n_jobs: int = Field(2, ge=1, description="Threads per model fit.")
    tuning_sample_rows: int | None = Field(
        None,
        ge=100,
        description="Tune on a seeded sample of this many training rows; refit on all of them.",
    )
    engine: EngineSpec = EngineSpec()
    selection: SelectionSpec = SelectionSpec()
    calibration: Calibration = Field(
        "auto",
        description="Probability calibration of the packaged classifier: auto keeps the "
        "method that improves out-of-fold log loss and Brier score, or none.",
    )
    threshold: ThresholdSpec = ThresholdSpec()
    cleaning: CleaningSpec = CleaningSpec()
    features: FeaturesSpec = FeaturesSpec()
    columns: dict[str, ColumnDeclaration] = Field(
        default_factory=dict, description="Per-column declarations (the data contract)."
    )
    monitoring: MonitoringSpec = MonitoringSpec()
    retraining: RetrainingSpec = RetrainingSpec()

    @field_validator("source", mode="before")
    @classmethod
    def _short_source_forms(cls, value: Any) -> Any:
        return normalize_source(value)

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str | None) -> str | None:
        if value is not None and not value.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"model name {value!r} may hold only letters, digits, '-' and '_'")
        return value

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str | None) -> str | None:
        if value is not None and value not in ALL_METRICS:
            raise ValueError(f"unknown metric {value!r}; valid metrics: {', '.join(ALL_METRICS)}")
        return value

    @model_validator(mode="after")
    def _metric_fits_task(self) -> PipelineSpec:
        if self.metric and self.task != "auto" and self.metric not in METRICS[self.task]:
            raise ValueError(
                f"metric {self.metric!r} does not apply to task {self.task!r}; "
                f"valid metrics for it: {', '.join(METRICS[self.task])}"
            )
        if not self.models:
            raise ValueError(f"models must name at least one of: {', '.join(FAMILIES)}")
        return self

    @property
    def model_name(self) -> str:
        return self.name or _safe_name(self.source.stem)

    def fingerprint(self) -> str:
        """A stable hash of the spec, used to find an interrupted run to resume."""
        payload = json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()
        return hashlib.sha256(payload).hexdigest()[:16]


def _safe_name(stem: str) -> str:
    cleaned = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in stem)
    return cleaned or "model"


def load_spec(path: str | Path) -> PipelineSpec:
    """Load a pipeline spec from a YAML file."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no such file") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of keys to values at the top level")
    if "source" in raw:
        raw["source"] = resolve_relative(normalize_source(raw["source"]), path.parent)
    return build_spec(raw, origin=str(path))


def build_spec(raw: dict[str, Any], *, origin: str = "spec") -> PipelineSpec:
    """Validate a dict (from YAML or CLI flags) into a :class:`PipelineSpec`."""
    try:
        return PipelineSpec.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, PipelineSpec, origin)) from exc


def build_engine(raw: dict[str, Any], *, origin: str = "spec") -> EngineSpec:
    """Validate an ``engine:`` mapping (e.g. from CLI flags) into an :class:`EngineSpec`."""
    clean = {k: v for k, v in raw.items() if v is not None}
    try:
        return EngineSpec.model_validate(clean)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, EngineSpec, origin)) from exc


def describe_validation_error(exc: ValidationError, model: type[BaseModel], origin: str) -> str:
    """Turn pydantic's error list into one message that names keys and valid choices."""
    lines = [f"{origin}: invalid pipeline spec"]
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            parent = _model_at(model, err["loc"][:-1])
            valid = ", ".join(parent.model_fields) if parent else "see the docs"
            lines.append(f"  - unknown key {loc!r}; valid keys here: {valid}")
        elif err["type"] == "missing":
            lines.append(f"  - missing required key {loc!r}")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            got = err.get("input")
            got = redact_url(got) if isinstance(got, str) else got  # never echo a password
            lines.append(f"  - {loc}: {msg} (got {got!r})")
    return "\n".join(lines)


def _model_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    current: type[BaseModel] = model
    for part in loc:
        field = current.model_fields.get(str(part))
        if field is None or not isinstance(field.annotation, type):
            return None
        if not issubclass(field.annotation, BaseModel):
            return None
        current = field.annotation
    return current


__all__ = [
    "ALL_METRICS",
    "FAMILIES",
    "METRICS",
    "TASKS",
    "EngineSpec",
    "FileSource",
    "HttpSource",
    "MqttSource",
    "PipelineSpec",
    "SnapshotRef",
    "Source",
    "SourceSpec",
    "SplitSpec",
    "SqlSource",
    "build_engine",
    "build_spec",
    "describe_validation_error",
    "load_spec",
]
