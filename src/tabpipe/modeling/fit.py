"""Fitting one configuration: cross-validation with early stopping, and the final refit.

Preprocessing is fitted inside each training fold (no leak from the validation fold).
Boosting families stop early on the validation fold; the refit on the whole training
split uses the mean best round count times :data:`REFIT_ROUNDS_FACTOR` (more data).
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from tabpipe.config import Family, Task
from tabpipe.features.builder import build_preprocessor
from tabpipe.features.frame import FeaturePlan
from tabpipe.modeling import metrics
from tabpipe.modeling.zoo import FAMILIES, Params, make_estimator

Folds = list[tuple[np.ndarray, np.ndarray]]
REFIT_ROUNDS_FACTOR = 1.15
EARLY_STOPPING_ROUNDS = 50


class TrialAborted(Exception):  # noqa: N818 - control flow, not an error
    """A trial stopped between folds (pruned or out of time)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class TrialResult:
    """One configuration's cross-validation outcome."""

    trial_id: int
    family: Family
    params: Params
    score: float
    fold_scores: list[float]
    seconds: float
    rounds: int | None
    oof: np.ndarray = field(repr=False)
    #: the round where each fold stopped early (empty for families without rounds)
    fold_rounds: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class FitContext:
    """What every fit of one search shares."""

    x: pd.DataFrame
    y: np.ndarray
    task: Task
    plan: FeaturePlan
    folds: Folds
    metric: str
    seed: int
    n_jobs: int
    n_classes: int

    def subset(self, rows: np.ndarray) -> FitContext:
        """The same context on ``rows`` only (a tuning sample); the caller sets its folds."""
        return replace(self, x=self.x.iloc[rows].reset_index(drop=True), y=self.y[rows], folds=[])


def cross_validate(
    ctx: FitContext,
    trial_id: int,
    family: Family,
    params: Params,
    after_fold: Callable[[int, float], None] | None = None,
) -> TrialResult:
    """Fit ``family(params)`` on every fold; ``after_fold(i, mean_so_far)`` may abort."""
    started = time.perf_counter()
    width = ctx.n_classes if ctx.task != "regression" else 1
    oof = np.full((len(ctx.y), width), np.nan, dtype=np.float64)
    scores: list[float] = []
    rounds: list[int] = []
    for i, (tr, va) in enumerate(ctx.folds):
        with threadpool_limits(ctx.n_jobs):
            out, best = _fit_fold(ctx, family, params, tr, va)
        oof[va] = out
        scores.append(metrics.score(ctx.metric, ctx.y[va], _squeeze(out, ctx.task)))
        if best is not None:
            rounds.append(best)
        if after_fold is not None:
            after_fold(i, float(np.mean(scores)))
    covered = ~np.isnan(oof[:, 0])
    score = metrics.score(ctx.metric, ctx.y[covered], _squeeze(oof[covered], ctx.task))
    return TrialResult(
        trial_id=trial_id,
        family=family,
        params=params,
        score=score,
        fold_scores=scores,
        seconds=time.perf_counter() - started,
        rounds=int(np.mean(rounds)) if rounds else None,
        oof=oof,
        fold_rounds=rounds,
    )


def refit(ctx: FitContext, result: TrialResult) -> Pipeline:
    """Fit the configuration of ``result`` on the whole training split."""
    rounds = result.rounds
    if rounds is not None and FAMILIES[result.family].early_stopping != "internal":
        rounds = max(10, round(rounds * REFIT_ROUNDS_FACTOR))
    return _fit_rows(ctx, result.family, result.params, np.arange(len(ctx.y)), rounds)


def fit_bag(ctx: FitContext, result: TrialResult) -> list[Pipeline]:
    """The configuration of ``result`` fitted on each fold's training rows (a bag).

    Each fold model is the cross-validation's own, cut at the round where it stopped
    early on its fold (same folds, seeds and rounds: boosting is the same up to there;
    ``hist_gb``, early-stopped on an inner split, is refitted on the fold's rows at its
    round count), so the trial's out-of-fold output is what these models predict for
    rows they did not see: weights chosen on that output (the greedy ensemble) hold
    for the averaged bag, unlike for one refit on all rows.
    """
    rounds: list[int | None] = list(result.fold_rounds) or [None] * len(ctx.folds)
    return [
        _fit_rows(ctx, result.family, result.params, tr, r)
        for (tr, _), r in zip(ctx.folds, rounds, strict=True)
    ]


def _fit_rows(
    ctx: FitContext, family: Family, params: Params, rows: np.ndarray, rounds: int | None
) -> Pipeline:
    """``family(params)`` fitted on ``rows`` with a fixed round count (no early stopping)."""
    pre = build_preprocessor(ctx.plan, FAMILIES[family].preprocessing, task=ctx.task, seed=ctx.seed)
    x = ctx.x if len(rows) == len(ctx.y) else ctx.x.iloc[rows]
    y = ctx.y[rows]
    xt = pre.fit_transform(x, y)
    if FAMILIES[family].early_stopping == "internal" and rounds is not None:
        model = make_estimator(family, {}, ctx.task, ctx.seed, ctx.n_jobs)
        model.set_params(**{**params, "max_iter": rounds, "early_stopping": False})
    else:
        model = make_estimator(family, params, ctx.task, ctx.seed, ctx.n_jobs, rounds)
    with threadpool_limits(ctx.n_jobs):
        model.fit(xt, y)
    return Pipeline([("features", pre), ("model", model)])


def predict_output(model: Any, x: Any, task: Task, n_classes: int) -> np.ndarray:
    """Probabilities (all ``n_classes`` columns) for classifiers, predictions for regressors."""
    if task == "regression":
        return np.asarray(model.predict(x), dtype=np.float64).reshape(-1, 1)
    proba = np.asarray(model.predict_proba(x), dtype=np.float64)
    classes = np.asarray(getattr(model, "classes_", np.arange(proba.shape[1]))).astype(int)
    if proba.shape[1] == n_classes and np.array_equal(classes, np.arange(n_classes)):
        return proba
    full = np.zeros((proba.shape[0], n_classes))
    full[:, classes] = proba
    return full


def _squeeze(out: np.ndarray, task: Task) -> np.ndarray:
    return out[:, 0] if task == "regression" else out


def _fit_fold(
    ctx: FitContext, family: Family, params: Params, tr: np.ndarray, va: np.ndarray
) -> tuple[np.ndarray, int | None]:
    spec = FAMILIES[family]
    pre = build_preprocessor(ctx.plan, spec.preprocessing, task=ctx.task, seed=ctx.seed)
    x_tr = pre.fit_transform(ctx.x.iloc[tr], ctx.y[tr])
    x_va = pre.transform(ctx.x.iloc[va])
    y_tr, y_va = ctx.y[tr], ctx.y[va]
    model = make_estimator(family, params, ctx.task, ctx.seed, ctx.n_jobs)
    best: int | None = None
    if spec.early_stopping == "lightgbm":
        import lightgbm

        stop = [lightgbm.early_stopping(EARLY_STOPPING_ROUNDS, verbose=False)]
        if "eval_X" in inspect.signature(model.fit).parameters:  # LightGBM >= 4.7
            model.fit(x_tr, y_tr, eval_X=(x_va,), eval_y=(y_va,), callbacks=stop)
        else:
            model.fit(x_tr, y_tr, eval_set=[(x_va, y_va)], callbacks=stop)
        best = int(model.best_iteration_ or model.n_estimators)
    elif spec.early_stopping == "xgboost":
        model.fit(x_tr, y_tr, eval_set=[(x_va, y_va)], verbose=False)
        best = int(model.best_iteration) + 1
    elif spec.early_stopping == "catboost":
        model.fit(x_tr, y_tr, eval_set=(x_va, y_va), early_stopping_rounds=EARLY_STOPPING_ROUNDS)
        best = int(model.get_best_iteration()) + 1
    else:
        model.fit(x_tr, y_tr)
        if spec.early_stopping == "internal":
            best = int(model.n_iter_)
    return predict_output(model, x_va, ctx.task, ctx.n_classes), best
