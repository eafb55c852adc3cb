"""Training: search the zoo under the budget, refit the best of each family, build the ensemble.

The held-out test split never reaches this module: validation is k-fold on the
training split only (stratified, grouped or time-ordered as the spec declares).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel
from sklearn.model_selection import (
    GroupKFold,
    KFold,
    StratifiedGroupKFold,
    StratifiedKFold,
    TimeSeriesSplit,
    train_test_split,
)

from tabpipe.config import PipelineSpec, Task
from tabpipe.data.cleaning import CleaningReport
from tabpipe.engine import open_engine
from tabpipe.errors import TabpipeWarning, TrainingError
from tabpipe.features.frame import FeaturePlan, to_model_frame
from tabpipe.modeling import metrics
from tabpipe.modeling.ensemble import (
    WeightedEnsembleClassifier,
    WeightedEnsembleRegressor,
    caruana,
)
from tabpipe.modeling.fit import FitContext, Folds, TrialResult, fit_bag, refit
from tabpipe.modeling.search import Budget, SearchLog, search
from tabpipe.modeling.zoo import NOT_IN_ENSEMBLE

ENSEMBLE = "ensemble"
#: How many of the best trials the ensemble may choose from.
ENSEMBLE_POOL = 12
#: Share of the time budget for search and refits; the rest is for evaluation and packaging.
SEARCH_SHARE = 0.8
#: Default trial cap: one trial per this many seconds of budget (see :func:`trial_cap`).
SECONDS_PER_TRIAL = 2.5
MIN_TRIALS = 4
#: Time of a bag of fold models relative to its trial's cross-validation (no prediction, no
#: early-stopping tail, some slack).
BAG_COST = 1.0
#: Below this many rows one thread per fit is faster than several (thread start-up costs).
PARALLEL_ROWS = 20_000


class CandidateResult(BaseModel):
    name: str
    family: str
    cv_score: float | None
    cv_std: float | None
    fit_seconds: float
    status: str
    note: str | None = None
    params: dict[str, Any] = {}
    trial_id: int | None = None
    rounds: int | None = None
    members: dict[str, float] | None = None


class TrialSummary(BaseModel):
    trial_id: int
    family: str
    params: dict[str, Any]
    score: float
    seconds: float
    rounds: int | None


class TrainReport(BaseModel):
    metric: str
    folds: int
    candidates: list[CandidateResult]
    validation: str = "k-fold"
    trials: list[TrialSummary] = []
    pruned: int = 0
    notes: list[str] = []
    stopped_by: str = ""
    budget_seconds: float = 0.0
    elapsed_seconds: float = 0.0


class UndersizedBudgetWarning(TabpipeWarning):
    """The time budget was too small for more than a baseline."""


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
) -> tuple[dict[str, Any], TrainReport, pd.DataFrame]:
    """Search, refit and ensemble within ``spec.time_budget``; also return the OOF table."""
    budget = Budget(spec.time_budget * SEARCH_SHARE)
    metric = spec.metric or metrics.default_metric(report.task)
    y = encode_target(train[report.target], report)
    n_classes = len(report.classes or []) if report.task != "regression" else 1
    if report.task != "regression" and len(np.unique(y)) < 2:
        raise TrainingError(
            f"target {report.target!r} has a single class ({report.classes!r}) in the "
            "training split; a classifier needs at least two. Check the target column or "
            "collect rows of the other class(es)"
        )
    ctx = FitContext(
        x=to_model_frame(train, plan),
        y=y,
        task=report.task,
        plan=plan,
        folds=[],
        metric=metric,
        seed=spec.seed,
        n_jobs=spec.n_jobs if len(train) >= PARALLEL_ROWS else 1,
        n_classes=n_classes,
        fold_workers=_fold_workers(len(train), spec),
    )
    rows = tuning_rows(y, report.task, spec)
    tuning_frame = train if rows is None else train.iloc[rows].reset_index(drop=True)
    folds, scheme = make_folds(report.task, ctx.y if rows is None else y[rows], tuning_frame, spec)
    tune = replace(
        ctx if rows is None else ctx.subset(rows),
        folds=folds,
        n_jobs=spec.n_jobs if len(tuning_frame) >= PARALLEL_ROWS else 1,
        fold_workers=_fold_workers(len(tuning_frame), spec),
    )
    if rows is not None:
        scheme += f" on a sample of {len(rows)} of {len(train)} rows"
    with open_engine(spec.engine) as engine:
        log = search(
            tune,
            tuple(spec.models),
            budget,
            trial_cap(spec),
            engine=engine,
            parallel_trials=spec.engine.parallel_trials,
        )
    if not log.results:
        lost = [n for n in log.notes if " lost: " in n]
        raise TrainingError(
            "no model could be trained: "
            + "; ".join([*(f"{k}: {v}" for k, v in log.failed.items()), *lost])
        )
    models, candidates = _refit_family_bests(ctx, log, budget)
    oof = {c.name: _oof_of(log, c.trial_id) for c in candidates if c.status == "ok"}
    if spec.selection.ensemble:
        convert = _conversion_seconds(models, report, plan) if spec.selection.bagging else None
        _add_ensemble(ctx, tune, log, budget, models, candidates, oof, bagging=convert)
    if log.results[0].seconds > spec.time_budget:
        message = (
            f"the time budget of {spec.time_budget:g} s is too small for any search: the first "
            f"baseline ({log.results[0].family}) alone took {log.results[0].seconds:.1f} s; "
            "it is returned as it is. Give more time for a real search"
        )
        log.notes.append(message)
        warnings.warn(message, UndersizedBudgetWarning, stacklevel=2)
    training = TrainReport(
        metric=metric,
        folds=len(tune.folds),
        candidates=candidates,
        validation=scheme,
        trials=[
            TrialSummary(
                trial_id=r.trial_id,
                family=r.family,
                params=r.params,
                score=r.score,
                seconds=r.seconds,
                rounds=r.rounds,
            )
            for r in log.results
        ],
        pruned=log.pruned,
        notes=log.notes,
        stopped_by=log.stopped_by,
        budget_seconds=spec.time_budget,
        elapsed_seconds=budget.elapsed,
    )
    return models, training, _oof_frame(oof, tune.y, report.task)


def _fold_workers(rows: int, spec: PipelineSpec) -> int:
    """Folds fitted side by side: below :data:`PARALLEL_ROWS` each fit gets one thread and
    the spec's cores go to folds instead; a Ray trial keeps to the CPUs it reserved."""
    if rows >= PARALLEL_ROWS or spec.engine.kind != "local":
        return 1
    return spec.n_jobs


def trial_cap(spec: PipelineSpec) -> int:
    """``max_trials`` from the spec, else one trial per :data:`SECONDS_PER_TRIAL` of budget.

    A count, unlike the clock, is the same on every machine: a run that stops on it is
    reproducible. On a machine too slow to reach it the budget stops the search first.
    """
    return spec.max_trials or max(MIN_TRIALS, int(spec.time_budget / SECONDS_PER_TRIAL))


def tuning_rows(y: np.ndarray, task: Task, spec: PipelineSpec) -> np.ndarray | None:
    """Row positions of the seeded tuning sample (stratified for classifiers), or None for all.

    The sample keeps the search's memory and time bounded on large data; the final
    refits use every training row.
    """
    n = spec.tuning_sample_rows
    if n is None or len(y) <= n:
        return None
    stratify = None
    if task != "regression" and spec.split.stratify and np.bincount(y).min() >= 2:
        stratify = y
    rows, _ = train_test_split(
        np.arange(len(y)), train_size=n, random_state=spec.seed, stratify=stratify
    )
    return np.sort(np.asarray(rows))


def make_folds(
    task: Task, y: np.ndarray, train: pd.DataFrame, spec: PipelineSpec
) -> tuple[Folds, str]:
    """Validation folds on the training split, and a description of the scheme."""
    k = spec.split.folds
    dummy = np.zeros(len(y))
    if spec.split.time_column:
        order = np.argsort(train[spec.split.time_column].to_numpy(), kind="stable")
        splits = TimeSeriesSplit(n_splits=k).split(dummy)
        return [(order[tr], order[va]) for tr, va in splits], (
            f"{k}-split time-ordered by {spec.split.time_column!r}"
        )
    classify = task != "regression" and spec.split.stratify
    if classify:
        k = min(k, max(2, int(np.bincount(y).min())))
    if spec.split.group_column:
        groups = train[spec.split.group_column].astype(str).to_numpy()
        splitter: Any = (
            StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=spec.seed)
            if classify
            else GroupKFold(n_splits=k, shuffle=True, random_state=spec.seed)
        )
        return list(splitter.split(dummy, y, groups)), (
            f"{k}-fold grouped by {spec.split.group_column!r}"
        )
    if classify:
        splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=spec.seed)
        return list(splitter.split(dummy, y)), f"{k}-fold stratified"
    splitter = KFold(n_splits=k, shuffle=True, random_state=spec.seed)
    return list(splitter.split(dummy, y)), f"{k}-fold"


def _best_per_family(log: SearchLog, greater: bool) -> list[TrialResult]:
    best: dict[str, TrialResult] = {}
    for r in log.results:
        current = best.get(r.family)
        if current is None or (r.score > current.score if greater else r.score < current.score):
            best[r.family] = r
    return sorted(best.values(), key=lambda r: (-r.score if greater else r.score, r.trial_id))


def _refit_family_bests(
    ctx: FitContext, log: SearchLog, budget: Budget
) -> tuple[dict[str, Any], list[CandidateResult]]:
    greater = metrics.REGISTRY[ctx.metric].greater_is_better
    models: dict[str, Any] = {}
    candidates: list[CandidateResult] = []
    for r in _best_per_family(log, greater):
        estimate = r.fold_seconds * 1.4
        base = {
            "name": r.family,
            "family": r.family,
            "cv_score": r.score,
            "cv_std": float(np.std(r.fold_scores)),
            "params": r.params,
            "trial_id": r.trial_id,
            "rounds": r.rounds,
        }
        if models and budget.elapsed + estimate > budget.seconds * 1.05:
            candidates.append(
                CandidateResult(
                    **base, fit_seconds=0.0, status="skipped", note="no time left to refit"
                )
            )
            continue
        t0 = time.perf_counter()
        try:
            models[r.family] = refit(ctx, r)
        except Exception as exc:  # a library crash on refit drops that family only
            log.notes.append(f"{r.family} refit failed: {type(exc).__name__}: {exc}")
            candidates.append(
                CandidateResult(**base, fit_seconds=0.0, status="failed", note=str(exc))
            )
            continue
        candidates.append(
            CandidateResult(**base, fit_seconds=r.seconds + time.perf_counter() - t0, status="ok")
        )
    for fam, why in log.failed.items():
        candidates.append(
            CandidateResult(
                name=fam,
                family=fam,
                cv_score=None,
                cv_std=None,
                fit_seconds=0.0,
                status="failed",
                note=why,
            )
        )
    return models, candidates


def _add_ensemble(
    ctx: FitContext,
    tune: FitContext,
    log: SearchLog,
    budget: Budget,
    models: dict[str, Any],
    candidates: list[CandidateResult],
    oof: dict[str, np.ndarray],
    bagging: float | None = None,
) -> None:
    """The greedy weighted ensemble over the out-of-fold output of the best trials.

    With ``bagging`` (the seconds one pipeline takes to convert to ONNX; ``None``: no
    bags) and folds that cover every training row once, on all of them, each member is
    its trial's bag of fold models (:func:`~tabpipe.modeling.fit.fit_bag`), which is
    what the out-of-fold output the weights were chosen on measured. A member whose bag,
    with the later ONNX conversion of every pipeline so far, does not fit in the search
    share of the budget is refitted on all rows instead. A single selected model becomes
    a bag of its own when bagging applies.
    """
    greater = metrics.REGISTRY[ctx.metric].greater_is_better
    fitted = {c.trial_id: c.name for c in candidates if c.status == "ok"}
    ranked = sorted(
        (r for r in log.results if r.family not in NOT_IN_ENSEMBLE),
        key=lambda r: (-r.score if greater else r.score, r.trial_id),
    )
    pool = [r for r in ranked if r.trial_id in fitted]
    extra = [r for r in ranked if r.trial_id not in fitted][: max(0, ENSEMBLE_POOL - len(pool))]
    pool += extra
    if not pool:
        return
    covered = ~np.isnan(pool[0].oof[:, 0])
    bag = bagging is not None and len(tune.y) == len(ctx.y) and bool(covered.all())
    convert = bagging or 0.0
    if len(pool) < 2 and not bag:
        return
    ens_metric = ctx.metric
    if ctx.task != "regression" and not metrics.REGISTRY[ctx.metric].needs_proba:
        ens_metric = "log_loss"
    weights = caruana([r.oof[covered] for r in pool], tune.y[covered], ens_metric)
    members: list[tuple[str, float, list[Any]]] = []  # name, weight, fitted pipelines
    used: list[tuple[TrialResult, float]] = []
    t0 = time.perf_counter()
    k = len(tune.folds)
    for r, w in sorted(zip(pool, weights, strict=True), key=lambda p: -p[1]):
        if w <= 0:
            continue
        name = fitted.get(r.trial_id, f"{r.family}#{r.trial_id}")
        pipelines = sum(len(fits) for *_, fits in members) + k
        if bag and budget.elapsed + r.seconds * BAG_COST + pipelines * convert <= budget.seconds:
            members.append((f"{name} (bag of {k})", w, fit_bag(tune, r)))
        elif r.trial_id in fitted:
            members.append((name, w, [models[name]]))
        elif budget.elapsed + r.fold_seconds * 1.4 <= budget.seconds * 1.05:
            members.append((name, w, [refit(ctx, r)]))
        else:
            continue
        used.append((r, w))
    if len(used) < 2 and not (used and len(members[0][2]) > 1):
        log.notes.append("ensemble not built: greedy selection kept a single model")
        return
    total = sum(w for _, w in used)
    norm = [w / total for _, w in used]
    flat = [
        (f"{name}/{i}" if len(fits) > 1 else name, fit, share / len(fits))
        for (name, _, fits), share in zip(members, norm, strict=True)
        for i, fit in enumerate(fits)
    ]
    cls: Any = WeightedEnsembleRegressor if ctx.task == "regression" else WeightedEnsembleClassifier
    models[ENSEMBLE] = cls.from_fitted([(n, f) for n, f, _ in flat], [w for *_, w in flat], ctx.y)
    blend = sum(w * r.oof for (r, _), w in zip(used, norm, strict=True))
    blend_arr = np.asarray(blend)
    pred = blend_arr[covered][:, 0] if ctx.task == "regression" else blend_arr[covered]
    candidates.append(
        CandidateResult(
            name=ENSEMBLE,
            family=ENSEMBLE,
            cv_score=metrics.score(ctx.metric, tune.y[covered], pred),
            cv_std=None,
            fit_seconds=sum(r.seconds for r, _ in used) + time.perf_counter() - t0,
            status="ok",
            members={name: w for (name, _, _), w in zip(members, norm, strict=True)},
        )
    )
    oof[ENSEMBLE] = blend_arr


def _conversion_seconds(
    models: dict[str, Any], report: CleaningReport, plan: FeaturePlan
) -> float | None:
    """Seconds the best refitted pipeline takes to convert to ONNX (what each bagged fold
    model will cost the evaluation), or None (no bags) when it does not convert."""
    from tabpipe.packaging.build import signature_of
    from tabpipe.packaging.onnx import to_onnx

    if not models:
        return None
    t0 = time.perf_counter()
    try:
        to_onnx(next(iter(models.values())), signature_of(report, plan),
                classifier=report.task != "regression")  # fmt: skip
    except Exception:  # a pipeline that does not convert is not selected; no bags for it
        return None
    return time.perf_counter() - t0


def _oof_of(log: SearchLog, trial_id: int | None) -> np.ndarray:
    return next(r.oof for r in log.results if r.trial_id == trial_id)


def _oof_frame(oof: dict[str, np.ndarray], y: np.ndarray, task: Task) -> pd.DataFrame:
    cols: dict[str, np.ndarray] = {"__target__": y}
    for name, values in oof.items():
        if task == "regression":
            cols[name] = values[:, 0]
        else:
            for k in range(values.shape[1]):
                cols[f"{name}:{k}"] = values[:, k]
    return pd.DataFrame(cols)
