"""The search: a zero-shot portfolio first, then Optuna TPE per family, within a time budget.

Order of work:

1. The portfolio (:data:`tabpipe.modeling.zoo.PORTFOLIO_ORDER`): proven configurations,
   cheap and strong first. They are enqueued into each family's Optuna study, so TPE
   learns from them.
2. TPE trials, allocated by promise: families are ranked by their best validation score
   and picked in the cycle :data:`PROMISE_CYCLE` (the best family gets half the trials).
   Hopeless trials are pruned between folds (median rule).

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
from tabpipe.modeling import metrics
from tabpipe.modeling.fit import FitContext, TrialAborted, TrialResult, cross_validate
from tabpipe.modeling.zoo import FAMILIES, PORTFOLIO_ORDER

#: Positions in the promise ranking, cycled: best family, second, best, third, ...
PROMISE_CYCLE = (0, 1, 0, 2, 0, 1, 0, 3)
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
) -> SearchLog:
    """Run the portfolio, then TPE, until the budget or ``max_trials`` is used up."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    log = SearchLog()
    greater = metrics.REGISTRY[ctx.metric].greater_is_better
    studies: dict[str, Any] = {}
    for i, family in enumerate(families):
        studies[family] = optuna.create_study(
            direction="maximize" if greater else "minimize",
            sampler=optuna.samplers.TPESampler(seed=ctx.seed + i, n_startup_trials=4),
            pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1),
        )
    for family, index in PORTFOLIO_ORDER:
        if family in studies and index < len(FAMILIES[family].portfolio):
            studies[family].enqueue_trial(FAMILIES[family].portfolio[index])
    queue: list[Family] = [
        family
        for family, index in PORTFOLIO_ORDER
        if family in studies and index < len(FAMILIES[family].portfolio)
    ]
    step = 0
    while True:
        if max_trials is not None and len(log.results) + log.pruned >= max_trials:
            log.stopped_by = f"max_trials={max_trials} reached"
            break
        if queue:
            fam: Family | None = queue.pop(0)
        else:
            fam = _by_promise(log, studies, greater, step)
            step += 1
        if fam is None:
            break
        if fam not in studies:
            continue
        budget.reserve = _reserve(log, budget, refit_share)
        if log.results and not budget.fits(_estimate(log, fam)):
            if queue:
                continue
            log.stopped_by = "time budget"
            break
        _run_trial(ctx, fam, studies, log, budget)
    if not log.results:
        log.notes.append("no configuration finished inside the budget")
    return log


def _run_trial(
    ctx: FitContext, fam: Family, studies: dict[str, Any], log: SearchLog, budget: Budget
) -> None:
    import optuna

    study = studies[fam]
    trial = study.ask()
    params = FAMILIES[fam].space(trial)
    first = not log.results

    def after_fold(i: int, running: float) -> None:
        trial.report(running, i)
        if not first and trial.should_prune():
            raise TrialAborted("pruned")
        if not first and budget.over():
            raise TrialAborted("time budget")

    trial_id = len(log.results) + log.pruned + len(log.failed)
    try:
        result = cross_validate(ctx, trial_id, fam, params, after_fold)
    except TrialAborted as stop:
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        log.pruned += 1
        if stop.reason != "pruned":
            log.notes.append(f"{fam} trial {trial_id} stopped: {stop.reason}")
        return
    except Exception as exc:  # a family's library may fail in many ways; the run goes on
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        log.failed[fam] = f"{type(exc).__name__}: {exc}"
        log.notes.append(f"{fam} skipped: {type(exc).__name__}: {exc}")
        del studies[fam]
        return
    study.tell(trial, result.score)
    log.results.append(result)


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
        per_family[r.family] = max(per_family.get(r.family, 0.0), r.seconds)
    folds = max(1, len(log.results[0].fold_scores))
    refits = sum(s / folds * 1.4 for s in per_family.values())
    return max(share * budget.seconds, refits * 1.6)
