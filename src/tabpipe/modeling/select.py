"""Evaluation on the held-out test split, and selection by validation score."""

from __future__ import annotations

from typing import Any

import pandas as pd
from pydantic import BaseModel

from tabpipe.data.cleaning import CleaningReport
from tabpipe.features.frame import FeaturePlan, to_model_frame
from tabpipe.modeling import metrics
from tabpipe.modeling.train import TrainReport, encode_target, model_output


class LeaderboardRow(BaseModel):
    name: str
    cv_score: float
    test: dict[str, float]
    fit_seconds: float


class Leaderboard(BaseModel):
    metric: str
    greater_is_better: bool
    rows: list[LeaderboardRow]

    @property
    def best(self) -> LeaderboardRow:
        return self.rows[0]


def evaluate(
    models: dict[str, Any],
    test: pd.DataFrame,
    plan: FeaturePlan,
    report: CleaningReport,
    train_report: TrainReport,
) -> Leaderboard:
    """Score every candidate on the test split; rank by validation (never by test) score."""
    x = to_model_frame(test, plan)
    y = encode_target(test[report.target], report)
    rows = []
    for cand in train_report.candidates:
        if cand.name not in models or cand.cv_score is None:
            continue
        output = model_output(models[cand.name], x, report.task)
        rows.append(
            LeaderboardRow(
                name=cand.name,
                cv_score=cand.cv_score,
                test=metrics.score_all(report.task, y, output),
                fit_seconds=cand.fit_seconds,
            )
        )
    greater = metrics.REGISTRY[train_report.metric].greater_is_better
    rows.sort(key=lambda r: -r.cv_score if greater else r.cv_score)
    return Leaderboard(metric=train_report.metric, greater_is_better=greater, rows=rows)
