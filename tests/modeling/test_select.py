"""Evaluation, the selection policy, the Pareto front, diagnostics and the leaderboard CLI."""

from __future__ import annotations

import math

import numpy as np
import pytest
from typer.testing import CliRunner

from modeling.modeling_data import prepared
from tabpipe.config import METRICS, SelectionSpec
from tabpipe.modeling import metrics
from tabpipe.modeling.select import Leaderboard, evaluate, pareto_front, select
from tabpipe.modeling.train import train_candidates


@pytest.fixture(scope="module")
def titanic_board():
    data = prepared("titanic.csv", "Survived", max_trials=4)
    train, test = data["frame"].iloc[:700], data["frame"].iloc[700:].reset_index(drop=True)
    spec = data["spec"].model_copy(update={"models": ("linear", "lightgbm"), "time_budget": 60.0})
    models, report, oof = train_candidates(train, data["plan"], data["report"], spec)
    board = evaluate(models, test, data["plan"], data["report"], report, oof=oof)
    return board


def test_leaderboard_rows_carry_scores_and_costs(titanic_board):
    board = titanic_board
    names = [r.name for r in board.rows]
    assert {"linear", "lightgbm"} <= set(names)
    scores = [r.cv_score for r in board.rows]
    assert scores == sorted(scores, reverse=True)  # ranked by validation, not test
    for row in board.rows:
        assert set(row.test) == {m for m in METRICS["binary"] if m in row.test}
        assert row.latency_ms and row.latency_ms > 0 and row.size_kb and row.size_kb > 0
        assert row.interpretability
    assert board.best.name == board.selected == board.rows[0].name
    assert board.threshold is not None and 0 < board.threshold.threshold < 1
    diag = board.diagnostics
    assert diag is not None and diag.roc is not None and diag.calibration is not None
    assert sum(map(sum, diag.confusion or [])) == 191
    plan = prepared("titanic.csv", "Survived")["plan"]
    assert set(diag.permutation_importance) == set(plan.columns)
    assert "Sex" in list(diag.permutation_importance)[:3]
    assert board.shap_model is not None and "Sex" in diag.shap_importance
    # calibration was tried on the selected model's out-of-fold output (spec default auto)
    decision = board.decision
    assert decision is not None and {"none", "sigmoid", "isotonic"} <= set(
        decision.calibration_scores
    )
    assert decision.threshold is None and "roc_auc" in decision.test_metrics


def test_policy_constraints_change_the_selection(titanic_board):
    board = titanic_board.model_copy(deep=True)
    select(board, SelectionSpec(interpretable_only=True))
    assert board.best.interpretability == "glass-box"
    tiny = min(r.size_kb or 0 for r in board.rows) / 1024
    board = titanic_board.model_copy(deep=True)
    select(board, SelectionSpec(max_size_mb=tiny))
    assert board.best.size_kb == min(r.size_kb or 0 for r in board.rows)
    board = titanic_board.model_copy(deep=True)
    select(board, SelectionSpec(max_latency_ms=1e-9))
    assert board.notes and "no candidate meets the selection policy" in board.notes[0]


def test_pareto_front_is_not_dominated(titanic_board):
    rows = titanic_board.rows
    front = pareto_front(rows, greater=True)
    assert front
    on = [r for r in rows if r.name in front]
    for r in on:
        assert not any(
            o.cv_score > r.cv_score and (o.latency_ms or 0) < (r.latency_ms or 0) for o in rows
        )
    best = max(rows, key=lambda r: r.cv_score)
    assert best.name in front


def test_every_metric_of_every_task_computes():
    rng = np.random.default_rng(0)
    y_bin = np.array([0, 1] * 20)
    p = np.clip(y_bin * 0.6 + rng.random(40) * 0.4, 0, 1)
    proba = np.column_stack([1 - p, p])
    y_multi = np.array([0, 1, 2] * 10)
    pm = rng.dirichlet([1, 1, 1], 30)
    y_reg = rng.random(30) * 10 + 1
    for task, y, out in (
        ("binary", y_bin, proba),
        ("multiclass", y_multi, pm),
        ("regression", y_reg, y_reg + rng.normal(0, 0.5, 30)),
    ):
        scores = metrics.score_all(task, y, out)
        assert set(scores) == set(METRICS[task]), task
        assert all(math.isfinite(v) for v in scores.values())


def test_leaderboard_command(tmp_path):
    from tabpipe.cli import app

    runner = CliRunner()
    data = "tests/data/penguins.csv"
    ws = str(tmp_path / "ws")
    result = runner.invoke(
        app, ["run", data, "--target", "species", "--time-budget", "8", "-q", "-w", ws]
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["leaderboard", "penguins", "-w", ws])
    assert result.exit_code == 0, result.output
    assert "selected" in result.output and "log_loss" in result.output
    assert "packaged model applies calibration:" in result.output
    missing = runner.invoke(app, ["leaderboard", "nope", "-w", ws])
    assert missing.exit_code == 1 and "nope" in missing.output


def test_leaderboard_model_round_trips_json(titanic_board):
    again = Leaderboard.model_validate_json(titanic_board.model_dump_json())
    assert again == titanic_board


def test_spec_carries_the_selection_policy_and_rejects_unknown_keys():
    from tabpipe.config import build_spec
    from tabpipe.errors import ConfigError

    spec = build_spec(
        {
            "source": {"path": "x.csv"},
            "target": "y",
            "max_trials": 40,
            "selection": {"max_latency_ms": 0.1, "max_size_mb": 5, "interpretable_only": True},
        }
    )
    assert spec.selection.max_latency_ms == 0.1 and spec.max_trials == 40
    with pytest.raises(ConfigError, match="max_latency_ms"):
        build_spec({"source": {"path": "x.csv"}, "target": "y", "selection": {"latency": 1}})
