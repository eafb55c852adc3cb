"""Training: each candidate family cross-validated on the training split, then refit on all of it."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel
from sklearn.base import clone
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.pipeline import Pipeline

from tabpipe.config import Family, PipelineSpec, Task
from tabpipe.data.cleaning import CleaningReport
from tabpipe.errors import TrainingError
from tabpipe.features.builder import build_preprocessor
from tabpipe.features.frame import FeaturePlan, to_model_frame
from tabpipe.modeling import metrics
from tabpipe.modeling.zoo import FIT_ORDER, NEEDS_SCALING, make_estimator


class CandidateResult(BaseModel):
    name: str
    family: Family
    cv_score: float | None
    cv_std: float | None
    fit_seconds: float
    status: str
    note: str | None = None


class TrainReport(BaseModel):
    metric: str
    folds: int
    candidates: list[CandidateResult]


def encode_target(y: pd.Series, report: CleaningReport) -> np.ndarray:
    """Classes become 0..K-1 in the order of ``report.classes``; regression stays float."""
    if report.task == "regression":
        return y.to_numpy(dtype=np.float64)
    index = {c: i for i, c in enumerate(report.classes or [])}
    return np.asarray([index[v] for v in y.tolist()], dtype=np.int64)


def model_output(model: Any, x: pd.DataFrame, task: Task) -> np.ndarray:
    """Probabilities for classification, predictions for regression."""
    if task == "regression":
        return np.asarray(model.predict(x), dtype=np.float64)
    return np.asarray(model.predict_proba(x), dtype=np.float64)


def train_candidates(
    train: pd.DataFrame, plan: FeaturePlan, report: CleaningReport, spec: PipelineSpec
) -> tuple[dict[str, Any], TrainReport]:
    """Cross-validate every family within the time budget; refit each on the whole split."""
    metric = spec.metric or metrics.default_metric(report.task)
    x = to_model_frame(train, plan)
    y = encode_target(train[report.target], report)
    folds = _folds(report.task, y, spec)
    started = time.perf_counter()
    fitted: dict[str, Any] = {}
    results: list[CandidateResult] = []
    for family in (f for f in FIT_ORDER if f in spec.models):
        if fitted and time.perf_counter() - started > spec.time_budget:
            results.append(
                CandidateResult(
                    name=family,
                    family=family,
                    cv_score=None,
                    cv_std=None,
                    fit_seconds=0.0,
                    status="skipped",
                    note="time budget used up",
                )
            )
            continue
        t0 = time.perf_counter()
        pipeline = Pipeline(
            [
                ("features", build_preprocessor(plan, scale=NEEDS_SCALING[family])),
                ("model", make_estimator(family, report.task, spec.seed)),
            ]
        )
        try:
            scores = [
                metrics.score(
                    metric,
                    y[val],
                    model_output(clone(pipeline).fit(x.iloc[tr], y[tr]), x.iloc[val], report.task),
                )
                for tr, val in folds
            ]
            fitted[family] = pipeline.fit(x, y)
        except (ValueError, RuntimeError, MemoryError) as exc:
            results.append(
                CandidateResult(
                    name=family,
                    family=family,
                    cv_score=None,
                    cv_std=None,
                    fit_seconds=time.perf_counter() - t0,
                    status="failed",
                    note=f"{type(exc).__name__}: {exc}",
                )
            )
            continue
        results.append(
            CandidateResult(
                name=family,
                family=family,
                cv_score=float(np.mean(scores)),
                cv_std=float(np.std(scores)),
                fit_seconds=time.perf_counter() - t0,
                status="ok",
            )
        )
    if not fitted:
        notes = "; ".join(f"{r.name}: {r.note}" for r in results)
        raise TrainingError(f"no model could be trained: {notes}")
    return fitted, TrainReport(metric=metric, folds=spec.split.folds, candidates=results)


def _folds(task: Task, y: np.ndarray, spec: PipelineSpec) -> list[tuple[np.ndarray, np.ndarray]]:
    k = spec.split.folds
    if task != "regression" and spec.split.stratify:
        smallest = int(np.bincount(y).min())
        splitter: Any = StratifiedKFold(
            n_splits=min(k, max(2, smallest)), shuffle=True, random_state=spec.seed
        )
    else:
        splitter = KFold(n_splits=k, shuffle=True, random_state=spec.seed)
    return list(splitter.split(np.zeros(len(y)), y))
