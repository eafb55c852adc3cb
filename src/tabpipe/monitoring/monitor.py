"""Monitor a served model: drift, performance, data quality and operations, per window.

The reference is the training split of the run that built the version (the
``train`` artifact). The current data is the prediction log of that version,
with the labels posted so far. Each window gets its drift tests (decided
together, see :mod:`tabpipe.monitoring.drift`), measured performance where
labels exist, CBPE where they do not, data-quality flag shares and latency and
error rate. The decision window is the newest one with at least ``min_rows``
rows; a smaller tail is reported as too small, never alarmed on.

Windows follow the time a prediction was logged, or, with ``time_column``, the
data's own time (a feature or the logged user key): backfilled or batch-scored
traffic then lands in the windows its rows belong to.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field
from sqlalchemy import select

from tabpipe import metadata as md
from tabpipe.artifacts import TABLE
from tabpipe.config import PipelineSpec
from tabpipe.data.dates import epoch_seconds
from tabpipe.errors import MonitoringError
from tabpipe.modeling.metrics import REGISTRY
from tabpipe.monitoring import performance as perf
from tabpipe.monitoring.drift import DriftTest, Kind, Reference, drift_tests
from tabpipe.monitoring.logstore import read_log
from tabpipe.monitoring.quality import FLAG_KINDS, quality_shares
from tabpipe.monitoring.spec import MonitoringSpec, PolicySpec
from tabpipe.monitoring.windows import EVENT_TIME, assign_windows, event_time
from tabpipe.packaging.bundle import Manifest, read_manifest
from tabpipe.packaging.signature import category_text
from tabpipe.registry import CHAMPION, ModelVersion, Registry
from tabpipe.serving.predlog import INPUT_PREFIX
from tabpipe.serving.runtime import load_predictor
from tabpipe.workspace import Workspace

PREDICTION = "prediction"


class Operations(BaseModel):
    requests: int
    errors: int
    error_rate: float
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_p99_ms: float | None


class WindowResult(BaseModel):
    index: int
    start: datetime
    end: datetime
    rows: int
    labelled: int
    too_small: bool
    tests: list[DriftTest] = Field(default_factory=list)
    drifted: list[str] = Field(default_factory=list)
    performance: perf.Estimate | None = None
    performance_drop: float | None = None
    performance_alarm: bool = False
    estimated: perf.Estimate | None = None
    estimated_drop: float | None = None
    estimated_alarm: bool = False
    estimated_measured: perf.Estimate | None = Field(
        None, description="The estimated metric measured on the window's labelled rows."
    )
    quality: dict[str, float] = Field(default_factory=dict)
    quality_columns: dict[str, float] = Field(
        default_factory=dict, description="Share of rows per flag, e.g. unseen:weathersit."
    )
    operations: Operations
    prediction_mean: float | None = None
    prediction_quantiles: list[float] | None = Field(
        None, description="5th, 25th, 50th, 75th and 95th percentiles (regression)."
    )
    prediction_shares: dict[str, float] | None = Field(None, description="Class shares.")


class Finding(BaseModel):
    """Something a policy can act on (drift, performance, estimated_performance)."""

    kind: Literal[
        "drift", "performance", "estimated_performance", "schedule", "labels", "data_quality"
    ]
    window: str
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class MonitorResult(BaseModel):
    model: str
    version: int
    generated_at: datetime
    task: str
    metric: str
    reference_score: float | None
    reference_rows: int
    rows: int
    labelled_rows: int
    min_rows: int
    time_column: str = Field(
        "ts", description="What windows are cut on: ts (logging time) or the event time column."
    )
    windows: list[WindowResult]
    decision_window: int | None
    findings: list[Finding]
    skipped_parts: list[dict[str, str]]
    notes: list[str]
    settings: MonitoringSpec


def champion_spec(ws: Workspace, version: ModelVersion) -> PipelineSpec:
    """The pipeline spec of the run that built ``version``."""
    return PipelineSpec.model_validate(ws.run(version.run_id)["spec"])


def run_artifact_id(ws: Workspace, run_id: str, name: str) -> str:
    """The id of artifact ``name`` (e.g. ``train``) written or reused by run ``run_id``."""
    outputs = ws.run(run_id).get("outputs") or {}
    if name in outputs:
        return str(outputs[name])
    s = md.stage_runs
    for row in ws.meta.all(select(s).where(s.c.run_id == run_id).order_by(s.c.id.desc())):
        if name in (row.get("outputs") or {}):
            return str(row["outputs"][name])
    raise MonitoringError(f"run {run_id!r} has no artifact {name!r}; re-run `tabpipe run`")


def feature_frame(frame: pd.DataFrame, manifest: Manifest, prefix: str = "") -> pd.DataFrame:
    """Signature columns in their served form: numbers as float, categories as text."""
    out: dict[str, pd.Series] = {}
    for col in manifest.signature.columns:
        source = prefix + col.name
        if source not in frame:
            raise MonitoringError(f"column {source!r} is missing; it holds feature {col.name!r}")
        if col.kind == "numeric":
            out[col.name] = pd.to_numeric(frame[source], errors="coerce").astype(float)
        elif col.kind == "datetime":  # epoch seconds, as served and logged
            values = frame[source]
            seconds = (
                epoch_seconds(values)
                if not pd.api.types.is_numeric_dtype(values)
                else values.to_numpy(dtype=float)
            )
            out[col.name] = pd.Series(seconds, index=frame.index)
        else:
            out[col.name] = frame[source].map(category_text).astype(str)
    return pd.DataFrame(out, index=frame.index)


def _kinds(manifest: Manifest) -> dict[str, Kind]:
    kinds: dict[str, Kind] = {
        c.name: "numeric" if c.kind in ("numeric", "datetime") else "categorical"
        for c in manifest.signature.columns
    }
    kinds[PREDICTION] = "numeric" if manifest.task == "regression" else "categorical"
    return kinds


def reference_frame(ws: Workspace, version: ModelVersion, manifest: Manifest) -> pd.DataFrame:
    """The training split of the version's run, plus the model's predictions on it."""
    train = ws.artifacts.get(TABLE, run_artifact_id(ws, version.run_id, "train"))
    features = feature_frame(train, manifest)
    predictor = load_predictor(version.path)
    sig = manifest.signature
    feeds = sig.to_feeds({c: features[c].tolist() for c in sig.names})
    prediction = predictor.predict(feeds)
    features[PREDICTION] = (
        np.asarray(prediction.values, dtype=float)
        if manifest.task == "regression"
        else [str(v) for v in prediction.values]
    )
    return features


def monitor(
    ws: Workspace,
    name: str,
    *,
    alias: str = CHAMPION,
    spec: MonitoringSpec | None = None,
) -> MonitorResult:
    """Compute every window's statistics for the version ``alias`` points to."""
    version = Registry(ws).resolve(name, alias)
    manifest = read_manifest(version.path)
    spec = spec or champion_spec(ws, version).monitoring
    ws.sync_log(name)  # an object-store workspace: every machine's parts
    read = read_log(ws.root, name)
    notes = []
    log = read.frame
    if not log.empty:
        log = log[log["version"] == version.version].reset_index(drop=True)
    if log.empty:
        notes.append(f"no logged predictions for {name} version {version.version} yet")
    time = "ts"
    if spec.time_column is not None and not log.empty:
        log, time_notes = event_time(log, spec.time_column, manifest)
        notes.extend(time_notes)
        time = EVENT_TIME
    reference = reference_frame(ws, version, manifest)
    ref_stats = Reference.build(reference, _kinds(manifest))
    ok = log[log["status"] == "ok"] if not log.empty else log
    windows = []
    if not log.empty:
        ids = assign_windows(log, spec, time)
        for index in sorted(ids.unique()):
            part = log[ids == index]
            windows.append(
                _window(
                    int(index),
                    part,
                    ok.loc[ok.index.intersection(part.index)],
                    manifest,
                    ref_stats,
                    spec,
                    time,
                )
            )
    decision = next((w.index for w in reversed(windows) if not w.too_small), None)
    if windows and windows[-1].too_small:
        notes.append(
            f"the newest window has {windows[-1].rows} rows, fewer than min_rows="
            f"{spec.min_rows}: too small to decide, no alarm raised on it"
        )
    metric = manifest.metric
    findings = _findings(windows, decision, metric)
    labelled = int(log["label"].notna().sum()) if "label" in log else 0
    return MonitorResult(
        model=name,
        version=version.version,
        generated_at=datetime.now(UTC),
        task=manifest.task,
        metric=metric,
        reference_score=manifest.test_metrics.get(metric),
        reference_rows=len(reference),
        rows=len(log),
        labelled_rows=labelled,
        min_rows=spec.min_rows,
        time_column=spec.time_column or "ts",
        windows=windows,
        decision_window=decision,
        findings=findings,
        skipped_parts=[{"path": s.path, "reason": s.reason} for s in read.skipped],
        notes=notes,
        settings=spec,
    )


def _window(
    index: int,
    rows: pd.DataFrame,
    ok: pd.DataFrame,
    manifest: Manifest,
    ref: Reference,
    spec: MonitoringSpec,
    time: str = "ts",
) -> WindowResult:
    too_small = len(ok) < spec.min_rows
    labelled = int(ok["label"].notna().sum()) if "label" in ok else 0
    result = WindowResult(
        index=index,
        start=rows[time].min().to_pydatetime(),
        end=rows[time].max().to_pydatetime(),
        rows=len(ok),
        labelled=labelled,
        too_small=too_small,
        operations=_operations(rows),
    )
    if ok.empty:
        return result
    current = feature_frame(ok, manifest, INPUT_PREFIX)
    current[PREDICTION] = (
        ok[PREDICTION].astype(float) if manifest.task == "regression" else ok[PREDICTION]
    )
    result.quality, result.quality_columns = quality_shares(ok)
    if manifest.task == "regression":
        result.prediction_mean = float(current[PREDICTION].mean())
        quantiles = current[PREDICTION].quantile([0.05, 0.25, 0.5, 0.75, 0.95])
        result.prediction_quantiles = [float(q) for q in quantiles]
    else:
        shares = current[PREDICTION].astype(str).value_counts(normalize=True)
        result.prediction_shares = {str(k): float(v) for k, v in shares.items()}
    if not too_small:
        result.tests = drift_tests(ref, current, spec.effect, spec.alpha, prediction=PREDICTION)
        result.drifted = sorted({t.feature for t in result.tests if t.alarm})
    _performance(result, ok, manifest, spec)
    return result


def _outputs(ok: pd.DataFrame, manifest: Manifest) -> np.ndarray:
    if manifest.task == "regression":
        return ok[PREDICTION].to_numpy(float)
    return ok[[f"proba_{c}" for c in manifest.classes or []]].to_numpy(float)


def _labels(ok: pd.DataFrame, manifest: Manifest) -> np.ndarray:
    if manifest.task == "regression":
        return ok["label"].astype(float).to_numpy()
    index = {str(c): i for i, c in enumerate(manifest.classes or [])}
    return ok["label"].map(index).to_numpy(int)


def _performance(
    result: WindowResult, ok: pd.DataFrame, manifest: Manifest, spec: MonitoringSpec
) -> None:
    metric = manifest.metric
    reference = manifest.test_metrics.get(metric)
    if result.labelled >= spec.min_labels:
        est = _measure(metric, ok[ok["label"].notna()], manifest, spec)
        result.performance = est
        if reference is not None:
            result.performance_drop = perf.relative_drop(metric, reference, est.value)
            bound = est.high if REGISTRY[metric].greater_is_better else est.low
            beyond = bound is None or perf.relative_drop(metric, reference, bound) > 0
            result.performance_alarm = bool(
                result.performance_drop > spec.performance_drop and beyond
            )
    if manifest.task != "regression" and len(ok) >= spec.min_rows:
        for name in (metric, "accuracy"):
            guess = perf.estimated(name, _outputs(ok, manifest), draws=spec.bootstrap)
            if guess is None:
                continue
            result.estimated = guess
            ref_value = manifest.test_metrics.get(name)
            if ref_value is not None:
                result.estimated_drop = perf.relative_drop(name, ref_value, guess.value)
                result.estimated_alarm = result.estimated_drop > spec.performance_drop
            if result.labelled >= spec.min_labels:
                result.estimated_measured = (
                    result.performance
                    if name == metric
                    else _measure(name, ok[ok["label"].notna()], manifest, spec)
                )
            break


def _measure(
    metric: str, labelled: pd.DataFrame, manifest: Manifest, spec: MonitoringSpec
) -> perf.Estimate:
    return perf.measured(
        metric,
        _labels(labelled, manifest),
        _outputs(labelled, manifest),
        resamples=spec.bootstrap,
    )


def _operations(rows: pd.DataFrame) -> Operations:
    requests = rows.drop_duplicates("request_id")
    errors = int((requests["status"] == "error").sum())
    lat = requests.loc[requests["status"] == "ok", "latency_ms"].dropna()
    q = lat.quantile([0.5, 0.95, 0.99]).tolist() if len(lat) else [None, None, None]
    return Operations(
        requests=len(requests),
        errors=errors,
        error_rate=errors / max(len(requests), 1),
        latency_p50_ms=q[0],
        latency_p95_ms=q[1],
        latency_p99_ms=q[2],
    )


def _label(w: WindowResult) -> str:
    return f"window {w.index} ({w.start:%Y-%m-%d %H:%M}–{w.end:%Y-%m-%d %H:%M}, {w.rows} rows)"


def quality_finding(result: MonitorResult, policy: PolicySpec) -> Finding | None:
    """A data-quality finding when, in the decision window, a flag kind exceeds ``max_share``."""
    if result.decision_window is None:
        return None
    w = next(x for x in result.windows if x.index == result.decision_window)
    over = {
        kind: w.quality.get(f"{kind}_share", 0.0)
        for kind in policy.flags
        if w.quality.get(f"{kind}_share", 0.0) > policy.max_share
    }
    if not over:
        return None
    parts = []
    for kind, share in over.items():
        columns = ", ".join(
            f"{flag.split(':', 1)[1]} {value:.0%}"
            for flag, value in sorted(w.quality_columns.items(), key=lambda kv: -kv[1])
            if flag.startswith(kind + ":")
        )
        parts.append(f"{FLAG_KINDS[kind]} in {share:.0%} of rows ({columns})")
    return Finding(
        kind="data_quality",
        window=_label(w),
        message=f"{'; '.join(parts)}: above max_share {policy.max_share:.0%}",
        details={
            "shares": over,
            "max_share": policy.max_share,
            "columns": {
                flag: share
                for flag, share in w.quality_columns.items()
                if flag.split(":", 1)[0] in over
            },
        },
    )


def _findings(windows: list[WindowResult], decision: int | None, metric: str) -> list[Finding]:
    if decision is None:
        return []
    w = next(x for x in windows if x.index == decision)
    label = _label(w)
    out = []
    if w.drifted:
        alarms = [t for t in w.tests if t.alarm]
        out.append(
            Finding(
                kind="drift",
                window=label,
                message=f"drift in {len(w.drifted)} of {len({t.feature for t in w.tests})} "
                f"columns: {', '.join(w.drifted)}",
                details={"tests": [t.model_dump() for t in alarms]},
            )
        )
    measured = [x for x in windows if x.performance is not None]
    if measured and measured[-1].performance_alarm:
        w = measured[-1]
        assert w.performance is not None
        label = _label(w)
        out.append(
            Finding(
                kind="performance",
                window=label,
                message=f"{metric} {w.performance.value:.4g} on {w.performance.rows} labelled "
                f"rows is {w.performance_drop:.0%} worse than at training",
                details=w.performance.model_dump(),
            )
        )
    w = next(x for x in windows if x.index == decision)
    if w.estimated_alarm and w.estimated is not None:
        out.append(
            Finding(
                kind="estimated_performance",
                window=_label(w),
                message=f"estimated {w.estimated.metric} (CBPE, no labels needed) "
                f"{w.estimated.value:.4g} is {w.estimated_drop:.0%} worse than at training",
                details=w.estimated.model_dump(),
            )
        )
    return out


__all__ = [
    "Finding",
    "MonitorResult",
    "WindowResult",
    "champion_spec",
    "feature_frame",
    "monitor",
    "quality_finding",
    "reference_frame",
    "run_artifact_id",
]
