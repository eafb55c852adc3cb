"""The search: a zero-shot portfolio first, then Optuna TPE per family, within a time budget.

Order of work:

1. The portfolio (:data:`tabpipe.modeling.zoo.PORTFOLIO_ORDER`): proven configurations,
   cheap and strong first. They are enqueued into each family's Optuna study, so TPE
   learns from them.
2. TPE trials, allocated by promise: families are ranked by their best validation score
   and picked in the cycle :data:`PROMISE_CYCLE` (the best family gets half the trials).
   Hopeless trials are pruned between folds (median rule).

Trials are asked in batches of ``parallel_trials`` and evaluated through an engine's
``map`` (:mod:`tabpipe.engine`): in this process, or as Ray tasks. Each asked trial
carries a :class:`Guard` fixed when it is asked (the median rule's thresholds per fold
and the budget's deadline), and results are told in asking order, so the trials do not
depend on the engine. A trial the engine lost (a dead Ray worker after its retries) is
told as failed and noted.

The search stops when the next trial would not fit in the budget (keeping a reserve for
the refits), or after ``max_trials`` trials. A family whose library fails to import or
crashes is dropped with a note; the run continues.

Determinism: samplers, folds and models are seeded, and the family schedule depends only
on scores, so the same data, seed and ``max_trials`` give the same trials. Under a pure
wall-clock budget the number of trials depends on machine speed and load; the report says
which limit stopped the search.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tabpipe.config import Family
from tabpipe.engine import Engine, LocalEngine, TaskLost
from tabpipe.modeling import metrics
from tabpipe.modeling.fit import FitContext, TrialAborted, TrialResult, cross_validate
from tabpipe.modeling.zoo import FAMILIES, PORTFOLIO_ORDER, Params

#: Positions in the promise ranking, cycled: best family, second, best, third, ...
PROMISE_CYCLE = (0, 1, 0, 2, 0, 1, 0, 3)
#: Optuna median rule: prune only after this many completed trials, from this fold on.
PRUNE_STARTUP = 3
PRUNE_WARMUP = 1
#: Rough cost of a family's first trial relative to LightGBM's (before it is measured).
COST_FACTOR: dict[str, float] = {
    "lightgbm": 1.0,
    "xgboost": 1.5,
    "catboost": 3.0,
    "hist_gb": 1.5,
    "random_forest": 1.5,
    "extra_trees": 1.0,
    "linear": 0.3,
    "knn": 0.3,
}


@dataclass
class SearchLog:
    """What happened: every trial, every skipped family, and why the search stopped."""

    results: list[TrialResult] = field(default_factory=list)
    pruned: int = 0
    notes: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    stopped_by: str = "portfolio and search finished"
    lost: int = 0
    asked: int = 0

    @property
    def finished(self) -> int:
        """Trials that count against ``max_trials``: completed, pruned or lost."""
        return len(self.results) + self.pruned + self.lost


@dataclass
class Budget:
    """Wall-clock accounting: the search may spend ``seconds`` minus the refit reserve."""

    seconds: float
    started: float = field(default_factory=time.perf_counter)
    reserve: float = 0.0

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def fits(self, estimate: float) -> bool:
        return self.elapsed + estimate + self.reserve <= self.seconds

    def over(self) -> bool:
        return self.elapsed + self.reserve > self.seconds


def search(
    ctx: FitContext,
    families: tuple[Family, ...],
    budget: Budget,
    max_trials: int | None,
    refit_share: float = 0.15,
    engine: Engine | None = None,
    parallel_trials: int = 1,
) -> SearchLog:
    """Run the portfolio, then TPE, until the budget or ``max_trials`` is used up.

    Trials are asked ``parallel_trials`` at a time and evaluated through ``engine.map``
    (in this process by default); the data goes to the engine once.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    engine = engine or LocalEngine()
    shared = engine.share(ctx)
    log = SearchLog()
    greater = metrics.REGISTRY[ctx.metric].greater_is_better
    studies: dict[str, Any] = {}
    for i, family in enumerate(families):
        studies[family] = optuna.create_study(
            direction="maximize" if greater else "minimize",
            sampler=optuna.samplers.TPESampler(seed=ctx.seed + i, n_startup_trials=4),
            pruner=optuna.pruners.MedianPruner(
                n_startup_trials=PRUNE_STARTUP, n_warmup_steps=PRUNE_WARMUP
            ),
        )
    for family, index in PORTFOLIO_ORDER:
        if family in studies and index < len(FAMILIES[family].portfolio):
            studies[family].enqueue_trial(FAMILIES[family].portfolio[index])
    queue: list[Family] = [
        family
        for family, index in PORTFOLIO_ORDER
        if family in studies and index < len(FAMILIES[family].portfolio)
    ]
    schedule = _Schedule(queue)
    while True:
        batch = _next_batch(
            log,
            studies,
            greater,
            schedule,
            budget,
            max_trials,
            parallel_trials,
            engine.concurrency,
            refit_share,
        )
        if not batch:
            break
        asked = [_ask(ctx, fam, studies[fam], log, budget, greater) for fam in batch]
        outcomes = engine.map(run_trial, shared, [task for _, task in asked])
        for (trial, task), outcome in zip(asked, outcomes, strict=True):
            _record(task, trial, outcome, studies, log)
    if not log.results:
        log.notes.append("no configuration finished inside the budget")
    return log


@dataclass
class _Schedule:
    """The portfolio queue, then the promise cycle's position."""

    queue: list[Family]
    step: int = 0


def _next_batch(
    log: SearchLog,
    studies: dict[str, Any],
    greater: bool,
    schedule: _Schedule,
    budget: Budget,
    max_trials: int | None,
    size: int,
    concurrency: int,
    refit_share: float,
) -> list[Family]:
    """Up to ``size`` families to try next; empty when the search is over."""
    batch: list[Family] = []
    estimates = 0.0
    while len(batch) < size:
        if max_trials is not None and log.finished + len(batch) >= max_trials:
            if not batch:
                log.stopped_by = f"max_trials={max_trials} reached"
            break
        if schedule.queue:
            fam: Family | None = schedule.queue.pop(0)
        else:
            fam = _by_promise(log, studies, greater, schedule.step)
            schedule.step += 1
        if fam is None:
            break
        if fam not in studies:
            continue
        budget.reserve = _reserve(log, budget, refit_share)
        estimate = estimates + _estimate(log, fam)
        if log.results and not budget.fits(estimate / max(1, min(concurrency, len(batch) + 1))):
            if schedule.queue:
                continue
            if not batch:
                log.stopped_by = "time budget"
            break
        estimates = estimate
        batch.append(fam)
    return batch


def _ask(
    ctx: FitContext, fam: Family, study: Any, log: SearchLog, budget: Budget, greater: bool
) -> tuple[Any, TrialTask]:
    """Ask ``study`` for a trial; its guard freezes the pruning and time rules of now."""
    trial = study.ask()
    params = FAMILIES[fam].space(trial)
    first = not log.results
    end = time.time() + budget.seconds - budget.reserve - budget.elapsed
    guard = Guard(
        greater=greater,
        thresholds=() if first else _prune_thresholds(study, len(ctx.folds)),
        deadline=None if first else end,
        time_cut=end,
    )
    task = TrialTask(trial_id=log.asked, family=fam, params=params, guard=guard)
    log.asked += 1
    return trial, task


def _record(
    task: TrialTask,
    trial: Any,
    outcome: TrialOutcome | TaskLost,
    studies: dict[str, Any],
    log: SearchLog,
) -> None:
    import optuna

    fam, state = task.family, optuna.trial.TrialState
    study = trial.study
    if isinstance(outcome, TaskLost):
        study.tell(trial, state=state.FAIL)
        log.lost += 1
        log.notes.append(f"{fam} trial {task.trial_id} lost: {outcome.reason}")
        return
    for step, value in enumerate(outcome.intermediate):
        trial.report(value, step)
    if outcome.result is not None:
        study.tell(trial, outcome.result.score)
        log.results.append(outcome.result)
        if outcome.result.cut_folds:
            log.notes.append(
                f"{fam} trial {task.trial_id}: boosting stopped by the time budget in "
                f"{outcome.result.cut_folds} fold(s) ({outcome.result.rounds} rounds); "
                "a larger budget or tuning_sample_rows gives it room"
            )
    elif outcome.aborted is not None:
        study.tell(trial, state=state.PRUNED)
        log.pruned += 1
        if outcome.aborted != "pruned":
            log.notes.append(f"{fam} trial {task.trial_id} stopped: {outcome.aborted}")
    else:
        study.tell(trial, state=state.FAIL)
        if fam in studies:  # a family's library may fail in many ways; the run goes on
            log.failed[fam] = outcome.error or "failed"
            log.notes.append(f"{fam} skipped: {outcome.error}")
            del studies[fam]


@dataclass(frozen=True)
class Guard:
    """When a running trial stops between folds, fixed when the trial is asked.

    ``thresholds[i]`` is the median running score of the study's completed trials
    after fold ``i`` (Optuna's median rule, ``None`` where it does not apply yet);
    ``deadline`` is the wall-clock time (epoch seconds) when the budget runs out; a trial
    past it stops between folds. ``time_cut`` is the same time for the boosting inside a
    fold (:class:`~tabpipe.modeling.fit.TimeCut`): the first trial has no deadline (the
    search needs one result) but is cut, so on data too large for the budget it ends in
    time with fewer rounds.
    """

    greater: bool
    thresholds: tuple[float | None, ...] = ()
    deadline: float | None = None
    time_cut: float | None = None

    def check(self, step: int, running: list[float]) -> None:
        """Raise :class:`TrialAborted` when the trial should stop after fold ``step``."""
        limit = self.thresholds[step] if step < len(self.thresholds) else None
        if limit is not None:
            best = float(np.nanmax(running) if self.greater else np.nanmin(running))
            if np.isnan(best) or (best < limit if self.greater else best > limit):
                raise TrialAborted("pruned")
        if self.deadline is not None and time.time() > self.deadline:
            raise TrialAborted("time budget")


@dataclass(frozen=True)
class TrialTask:
    """One asked trial, as sent to the engine."""

    trial_id: int
    family: Family
    params: Params
    guard: Guard


@dataclass
class TrialOutcome:
    """What a trial gave: a result, an abort reason, or its library's error."""

    result: TrialResult | None = None
    intermediate: list[float] = field(default_factory=list)
    aborted: str | None = None
    error: str | None = None


def run_trial(ctx: FitContext, task: TrialTask) -> TrialOutcome:
    """Cross-validate one trial (runs on the engine: in this process or a Ray worker)."""
    running: list[float] = []

    def after_fold(i: int, score: float) -> None:
        running.append(score)
        task.guard.check(i, running)

    try:
        result = cross_validate(
            ctx, task.trial_id, task.family, task.params, after_fold, task.guard.time_cut
        )
    except TrialAborted as stop:
        return TrialOutcome(intermediate=running, aborted=stop.reason)
    except Exception as exc:  # a family's library may fail in many ways; the run goes on
        return TrialOutcome(intermediate=running, error=f"{type(exc).__name__}: {exc}")
    return TrialOutcome(result=result, intermediate=running)


def _prune_thresholds(study: Any, folds: int) -> tuple[float | None, ...]:
    """The median rule of Optuna's ``MedianPruner`` per fold, from the trials completed now."""
    import optuna

    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if len(done) < PRUNE_STARTUP:
        return ()
    out: list[float | None] = []
    for step in range(folds):
        values = [t.intermediate_values[step] for t in done if step in t.intermediate_values]
        out.append(
            float(np.nanpercentile(np.asarray(values, dtype=float), 50))
            if step >= PRUNE_WARMUP and values
            else None
        )
    return tuple(out)


def _by_promise(log: SearchLog, studies: dict[str, Any], greater: bool, step: int) -> Family | None:
    best: dict[Family, float] = {}
    for r in log.results:
        if r.family in studies and (
            r.family not in best or metrics_better(greater, r.score, best[r.family])
        ):
            best[r.family] = r.score
    if not best:
        return None
    ranking = sorted(best, key=lambda f: (-best[f] if greater else best[f], f))
    position = PROMISE_CYCLE[step % len(PROMISE_CYCLE)]
    return ranking[min(position, len(ranking) - 1)]


def metrics_better(greater: bool, a: float, b: float) -> bool:
    return a > b if greater else a < b


def _estimate(log: SearchLog, fam: Family) -> float:
    """Expected seconds for the next trial of ``fam``: its median so far, or a scaled guess."""
    own = [r.seconds for r in log.results if r.family == fam]
    if own:
        return float(np.median(own))
    base = [r.seconds / COST_FACTOR.get(r.family, 1.0) for r in log.results]
    return float(np.median(base)) * COST_FACTOR.get(fam, 1.0) if base else 0.0


def _reserve(log: SearchLog, budget: Budget, share: float) -> float:
    """Seconds kept for the final refits: one fold's worth per family best, or a share."""
    if not log.results:
        return share * budget.seconds
    per_family: dict[str, float] = {}
    for r in log.results:
        per_family[r.family] = max(per_family.get(r.family, 0.0), r.fold_seconds)
    refits = sum(s * 1.4 for s in per_family.values())
    return max(share * budget.seconds, refits * 1.6)
