"""Fitting one configuration: cross-validation with early stopping, and the final refit.

Preprocessing is fitted inside each training fold (no leak from the validation fold).
Boosting families stop early on the validation fold; the refit on the whole training
split uses the mean best round count times :data:`REFIT_ROUNDS_FACTOR` (more data).
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Generator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

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
T = TypeVar("T")
REFIT_ROUNDS_FACTOR = 1.15
#: Families whose folds may run side by side (``FitContext.fold_workers``): their fits
#: take a thread count and release the interpreter lock. On 4,900 rows and 2 cores a
#: cross-validation took 0.58-0.69x the time; ``hist_gb`` (OpenMP sized outside the
#: fit) slowed down, and linear and kNN fits are too short to gain.
FOLD_PARALLEL: frozenset[str] = frozenset(
    {"lightgbm", "xgboost", "catboost", "random_forest", "extra_trees"}
)
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
    #: mean seconds of one fold's fit, whether folds ran one after another or together
    fold_seconds: float = 0.0
    #: folds whose boosting was stopped by the time budget rather than by early stopping
    cut_folds: int = 0


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
    #: folds fitted at once on threads (each fit with ``n_jobs`` threads): small data
    #: gains more from two fits side by side than from two threads inside one fit
    fold_workers: int = 1

    def subset(self, rows: np.ndarray) -> FitContext:
        """The same context on ``rows`` only (a tuning sample); the caller sets its folds."""
        return replace(self, x=self.x.iloc[rows].reset_index(drop=True), y=self.y[rows], folds=[])


def cross_validate(
    ctx: FitContext,
    trial_id: int,
    family: Family,
    params: Params,
    after_fold: Callable[[int, float], None] | None = None,
    time_cut: float | None = None,
) -> TrialResult:
    """Fit ``family(params)`` on every fold; ``after_fold(i, mean_so_far)`` may abort.

    ``time_cut`` (epoch seconds) is when every fold should be done: each boosting fit
    stops adding rounds when its share of the time left is spent (see :class:`TimeCut`),
    so one trial on data too large for the budget cannot overrun it.
    """
    started = time.perf_counter()
    width = ctx.n_classes if ctx.task != "regression" else 1
    oof = np.full((len(ctx.y), width), np.nan, dtype=np.float64)
    scores: list[float] = []
    rounds: list[int] = []
    spent = 0.0
    cut_folds = 0
    fits = _in_fold_order(
        ctx, family, lambda _, tr, va, cut: _timed_fold(ctx, family, params, tr, va, cut), time_cut
    )
    with closing(fits):  # a pruned trial waits only for the folds already running
        for i, ((_, va), (out, best, seconds, cut)) in enumerate(
            zip(ctx.folds, fits, strict=False)
        ):
            oof[va] = out
            spent += seconds
            cut_folds += cut
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
        fold_seconds=spent / max(1, len(scores)),
        cut_folds=cut_folds,
    )


def refit(ctx: FitContext, result: TrialResult) -> Pipeline:
    """Fit the configuration of ``result`` on the whole training split."""
    rounds = result.rounds
    if rounds is not None and FAMILIES[result.family].early_stopping != "internal":
        rounds = max(10, round(rounds * REFIT_ROUNDS_FACTOR))
    with threadpool_limits(ctx.n_jobs):
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
    with closing(
        _in_fold_order(
            ctx,
            result.family,
            lambda i, tr, _va, _cut: _fit_rows(ctx, result.family, result.params, tr, rounds[i]),
        )
    ) as fits:
        return list(fits)


def _in_fold_order(
    ctx: FitContext,
    family: Family,
    fit: Callable[[int, np.ndarray, np.ndarray, float | None], T],
    time_cut: float | None = None,
) -> Generator[T, None, None]:
    """``fit(fold, train_rows, valid_rows, stop_at)`` of every fold, yielded in fold order.

    ``stop_at`` shares the time left before ``time_cut`` evenly among the rounds of
    folds still to run (``None`` without a cut).

    With ``ctx.fold_workers`` above one, that many folds of a :data:`FOLD_PARALLEL` family
    run at once on threads (the libraries release the interpreter lock while they fit);
    closing the generator early (a pruned trial) waits only for the folds already
    started. Each fold's result does not depend on the others, so the output is the
    same either way. The BLAS thread limit is process-wide, so it is set here, once;
    OpenMP's is per thread, so each fold thread sets its own.
    """
    workers = min(ctx.fold_workers, len(ctx.folds)) if family in FOLD_PARALLEL else 1
    rounds = -(-len(ctx.folds) // max(1, workers))

    def stop_at(done: int) -> float | None:
        if time_cut is None:
            return None
        now = time.time()
        return now + max(0.0, time_cut - now) / (rounds - done)

    with threadpool_limits(ctx.n_jobs):
        if workers <= 1:
            for i, (tr, va) in enumerate(ctx.folds):
                yield fit(i, tr, va, stop_at(i))
            return

        def limited(i: int, tr: np.ndarray, va: np.ndarray, cut: float | None) -> T:
            with threadpool_limits(ctx.n_jobs, user_api="openmp"):
                return fit(i, tr, va, cut)

        with ThreadPoolExecutor(workers, thread_name_prefix="tabpipe-fold") as pool:
            for start in range(0, len(ctx.folds), workers):
                chunk = ctx.folds[start : start + workers]
                cut = stop_at(start // workers)
                futures = [
                    pool.submit(limited, start + j, tr, va, cut) for j, (tr, va) in enumerate(chunk)
                ]
                for future in futures:
                    yield future.result()


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


def _timed_fold(
    ctx: FitContext,
    family: Family,
    params: Params,
    tr: np.ndarray,
    va: np.ndarray,
    stop_at: float | None,
) -> tuple[np.ndarray, int | None, float, bool]:
    t0 = time.perf_counter()
    cut = TimeCut(stop_at)
    out, best = _fit_fold(ctx, family, params, tr, va, cut)
    return out, best, time.perf_counter() - t0, cut.stopped


class TimeCut:
    """Stops a boosting fit between rounds once the clock passes ``stop_at`` (epoch
    seconds), after at least :data:`MIN_ROUNDS`; the model keeps the rounds it has.

    LightGBM calls it as a callback function, CatBoost calls ``after_iteration`` and
    XGBoost gets :meth:`for_xgboost`. Whether a fit was cut depends on the machine's
    speed, so a cut trial is not reproducible; the search notes it.
    """

    MIN_ROUNDS = 10
    order = 40  # LightGBM: after its early-stopping callback (30)

    def __init__(self, stop_at: float | None) -> None:
        self.stop_at = stop_at
        self.stopped = False

    def due(self, iteration: int) -> bool:
        if self.stop_at is None or iteration + 1 < self.MIN_ROUNDS:
            return False
        self.stopped = self.stopped or time.time() > self.stop_at
        return self.stopped

    def __call__(self, env: Any) -> None:  # LightGBM
        if self.due(env.iteration - env.begin_iteration):
            import lightgbm

            raise lightgbm.callback.EarlyStopException(env.iteration, env.evaluation_result_list)

    def after_iteration(self, info: Any) -> bool:
        """CatBoost: whether to go on (``info.iteration`` counts from 1)."""
        return not self.due(int(info.iteration) - 1)

    def for_xgboost(self) -> Any:
        """The same rule as an XGBoost ``TrainingCallback`` (XGBoost checks the type)."""
        from xgboost.callback import TrainingCallback

        due = self.due

        class _Cut(TrainingCallback):  # type: ignore[misc]
            def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
                return due(epoch)

        return _Cut()


def _fit_fold(
    ctx: FitContext,
    family: Family,
    params: Params,
    tr: np.ndarray,
    va: np.ndarray,
    cut: TimeCut | None = None,
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

        stop: list[Any] = [lightgbm.early_stopping(EARLY_STOPPING_ROUNDS, verbose=False)]
        if cut is not None and cut.stop_at is not None:
            stop.append(cut)
        if "eval_X" in inspect.signature(model.fit).parameters:  # LightGBM >= 4.7
            model.fit(x_tr, y_tr, eval_X=(x_va,), eval_y=(y_va,), callbacks=stop)
        else:
            model.fit(x_tr, y_tr, eval_set=[(x_va, y_va)], callbacks=stop)
        best = int(model.best_iteration_ or model.n_estimators)
    elif spec.early_stopping == "xgboost":
        if cut is not None and cut.stop_at is not None:
            model.set_params(callbacks=[cut.for_xgboost()])
        model.fit(x_tr, y_tr, eval_set=[(x_va, y_va)], verbose=False)
        best = int(model.best_iteration) + 1
    elif spec.early_stopping == "catboost":
        callbacks = [cut] if cut is not None and cut.stop_at is not None else None
        model.fit(
            x_tr,
            y_tr,
            eval_set=(x_va, y_va),
            early_stopping_rounds=EARLY_STOPPING_ROUNDS,
            callbacks=callbacks,
        )
        best = int(model.get_best_iteration()) + 1
    else:
        model.fit(x_tr, y_tr)
        if spec.early_stopping == "internal":
            best = int(model.n_iter_)
    return predict_output(model, x_va, ctx.task, ctx.n_classes), best
