"""Evaluation on the held-out test split, the leaderboard, and selection under a policy.

Candidates are ranked and selected by validation score, never by test score. The
policy (:class:`tabpipe.config.SelectionSpec`) may exclude candidates that are too slow,
too large or not interpretable; the Pareto front of validation score versus single-row
latency shows what each millisecond buys.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel

from tabpipe.config import Calibration, SelectionSpec, ThresholdSpec
from tabpipe.data.cleaning import CleaningReport
from tabpipe.features.frame import FeaturePlan, to_model_frame
from tabpipe.modeling import metrics
from tabpipe.modeling.decision import Decision, decide
from tabpipe.modeling.diagnostics import Diagnostics, diagnose, shap_importance
from tabpipe.modeling.measure import Cost, measure
from tabpipe.modeling.train import ENSEMBLE, TrainReport, encode_target, model_output
from tabpipe.modeling.zoo import FAMILIES


class LeaderboardRow(BaseModel):
    name: str
    cv_score: float
    test: dict[str, float]
    fit_seconds: float
    family: str = ""
    interpretability: str = ""
    onnx: bool = True
    latency_ms: float | None = None
    batch_ms_per_1k: float | None = None
    size_kb: float | None = None
    eligible: bool = True
    note: str | None = None


class Threshold(BaseModel):
    """The decision threshold on P(positive) that maximises F1 on out-of-fold predictions."""

    threshold: float
    f1_validation: float
    f1_test_at_threshold: float
    f1_test_at_half: float


class Leaderboard(BaseModel):
    metric: str
    greater_is_better: bool
    rows: list[LeaderboardRow]
    selected: str = ""
    pareto: list[str] = []
    notes: list[str] = []
    threshold: Threshold | None = None
    #: calibration and decision threshold applied to the packaged (selected) model
    decision: Decision | None = None
    diagnostics: Diagnostics | None = None
    #: The candidate whose native SHAP contributions ``diagnostics.shap_importance`` holds.
    shap_model: str | None = None

    @property
    def best(self) -> LeaderboardRow:
        """The selected candidate (the one the bundle packages)."""
        return next((r for r in self.rows if r.name == self.selected), self.rows[0])


def evaluate(
    models: dict[str, Any],
    test: pd.DataFrame,
    plan: FeaturePlan,
    report: CleaningReport,
    train_report: TrainReport,
    policy: SelectionSpec | None = None,
    oof: pd.DataFrame | None = None,
    *,
    measure_all: bool = True,
    diagnose_selected: bool = True,
    seed: int = 0,
    cache: dict[int, Any] | None = None,
    calibration: Calibration = "auto",
    threshold: ThresholdSpec | None = None,
) -> Leaderboard:
    """Score every candidate on the test split; rank and select by validation score.

    ``cache`` keeps each candidate's ONNX graph for a later conversion (see
    :func:`tabpipe.packaging.onnx.to_onnx`). With ``measure_all=False`` only candidates down to the first servable one (in
    validation order) are converted and timed: enough for the default policy, and faster.
    """
    policy = policy or SelectionSpec()
    x = to_model_frame(test, plan)
    y = encode_target(test[report.target], report)
    rows = []
    greater = metrics.REGISTRY[train_report.metric].greater_is_better
    cache = {} if cache is None else cache
    found = False
    ordered = sorted(
        (c for c in train_report.candidates if c.name in models and c.cv_score is not None),
        key=lambda c: (-(c.cv_score or 0) if greater else (c.cv_score or 0), c.name != ENSEMBLE),
    )
    for cand in ordered:
        assert cand.cv_score is not None
        output = model_output(models[cand.name], x, report.task)
        if measure_all or not found:
            cost = measure(models[cand.name], test, plan, report, cache)
            found = found or cost.onnx
        else:
            cost = Cost(onnx=True, note="not measured")
        family = cand.family
        rows.append(
            LeaderboardRow(
                name=cand.name,
                cv_score=cand.cv_score,
                test=metrics.score_all(report.task, y, output),
                fit_seconds=cand.fit_seconds,
                family=family,
                interpretability=(
                    FAMILIES[family].interpretability  # type: ignore[index]
                    if family in FAMILIES
                    else "ensemble"
                ),
                onnx=cost.onnx,
                latency_ms=cost.latency_ms,
                batch_ms_per_1k=cost.batch_ms_per_1k,
                size_kb=cost.size_kb,
                note=cost.note,
            )
        )
    rows.sort(key=lambda r: (-r.cv_score if greater else r.cv_score, r.name != ENSEMBLE))
    board = Leaderboard(metric=train_report.metric, greater_is_better=greater, rows=rows)
    select(board, policy)
    board.pareto = pareto_front(rows, greater)
    if report.task == "binary" and oof is not None and board.selected:
        board.threshold = best_threshold(oof, board.selected, y, models[board.selected], x)
    if report.task == "multiclass" and threshold is not None and threshold.objective != "none":
        board.notes.append(
            f"threshold objective {threshold.objective!r} applies to binary tasks only; "
            "multiclass labels stay the most probable class"
        )
    if report.task != "regression" and oof is not None and board.selected:
        board.decision = _decision(
            board.selected, models, oof, x, y, report, calibration, threshold, seed
        )
    if diagnose_selected and board.selected:
        _diagnose(board, models, x, y, report, seed)
    return board


def _decision(
    name: str,
    models: dict[str, Any],
    oof: pd.DataFrame,
    x: pd.DataFrame,
    y: np.ndarray,
    report: CleaningReport,
    calibration: Calibration,
    threshold: ThresholdSpec | None,
    seed: int,
) -> Decision | None:
    """Calibration and threshold of the selected candidate, from its out-of-fold output."""
    columns = [f"{name}:{k}" for k in range(len(report.classes or []))]
    if not all(c in oof for c in columns):
        return None
    proba = oof[columns].to_numpy(dtype=np.float64)
    covered = ~np.isnan(proba).any(axis=1)
    y_oof = oof["__target__"].to_numpy()[covered].astype(np.int64)
    test = model_output(models[name], x, report.task)
    return decide(
        proba[covered],
        y_oof,
        test,
        y,
        report.task,
        calibration,
        threshold or ThresholdSpec(),
        seed,
    )


def _diagnose(
    board: Leaderboard,
    models: dict[str, Any],
    x: pd.DataFrame,
    y: np.ndarray,
    report: CleaningReport,
    seed: int,
) -> None:
    classes = [str(c) for c in report.classes or []]
    diag = diagnose(models[board.selected], x, y, report.task, board.metric, classes, seed)
    board.shap_model = board.selected if diag.shap_importance else None
    if not diag.shap_importance:
        for row in board.rows:
            shap = shap_importance(models[row.name], x)
            if shap:
                diag.shap_importance, board.shap_model = shap, row.name
                break
    board.diagnostics = diag


def select(board: Leaderboard, policy: SelectionSpec) -> None:
    """Mark eligible rows and choose the best eligible one by validation score."""
    for row in board.rows:
        reasons = []
        if not row.onnx:
            reasons.append("no faithful ONNX form")
        if policy.max_latency_ms is not None and (row.latency_ms or np.inf) > policy.max_latency_ms:
            reasons.append(f"latency above {policy.max_latency_ms:g} ms")
        if policy.max_size_mb is not None and (row.size_kb or np.inf) > policy.max_size_mb * 1024:
            reasons.append(f"size above {policy.max_size_mb:g} MB")
        if policy.interpretable_only and row.interpretability != "glass-box":
            reasons.append("not interpretable")
        row.eligible = not reasons
        if reasons:
            row.note = "; ".join(filter(None, [row.note, *reasons]))
    eligible = [r for r in board.rows if r.eligible]
    if eligible:
        board.selected = eligible[0].name
        return
    servable = [r for r in board.rows if r.onnx] or board.rows
    board.selected = servable[0].name
    board.notes.append(
        f"no candidate meets the selection policy; packaged the best servable one "
        f"({board.selected}) instead. Relax selection.* in the spec"
    )


def pareto_front(rows: list[LeaderboardRow], greater: bool) -> list[str]:
    """Names of rows no other row beats on both validation score and latency."""
    timed = [r for r in rows if r.latency_ms is not None and r.onnx]
    front = []
    for r in timed:
        dominated = any(
            (o.cv_score >= r.cv_score if greater else o.cv_score <= r.cv_score)
            and (o.latency_ms or 0) <= (r.latency_ms or 0)
            and (o.cv_score != r.cv_score or o.latency_ms != r.latency_ms)
            for o in timed
        )
        if not dominated:
            front.append(r.name)
    return sorted(front, key=lambda n: next(r.latency_ms or 0 for r in timed if r.name == n))


def best_threshold(
    oof: pd.DataFrame, name: str, y_test: np.ndarray, model: Any, x_test: pd.DataFrame
) -> Threshold | None:
    """The F1-optimal threshold on out-of-fold P(class 1), checked on the test split."""
    column = f"{name}:1"
    if column not in oof:
        return None
    from sklearn.metrics import f1_score

    p = oof[column].to_numpy()
    mask = ~np.isnan(p)
    y = oof["__target__"].to_numpy()[mask]
    p = p[mask]
    grid = np.unique(np.quantile(p, np.linspace(0.01, 0.99, 99)))
    scores = [f1_score(y, (p >= t).astype(int), zero_division=0) for t in grid]
    t = float(grid[int(np.argmax(scores))])
    p_test = model.predict_proba(x_test)[:, 1]
    return Threshold(
        threshold=t,
        f1_validation=float(max(scores)),
        f1_test_at_threshold=float(f1_score(y_test, (p_test >= t).astype(int), zero_division=0)),
        f1_test_at_half=float(f1_score(y_test, (p_test >= 0.5).astype(int), zero_division=0)),
    )
