"""Cross-validation of one configuration: folds side by side, and the time cut."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from tabpipe.features.frame import to_model_frame
from tabpipe.modeling import fit
from tabpipe.modeling.fit import FitContext, TimeCut, cross_validate, fit_bag, predict_output
from tabpipe.modeling.train import encode_target, make_folds
from tabpipe.modeling.zoo import FAMILIES

from .modeling_data import prepared


@pytest.fixture(scope="module")
def titanic() -> FitContext:
    data = prepared("titanic.csv", "Survived")
    report, frame = data["report"], data["frame"]
    y = encode_target(frame[report.target], report)
    folds, _ = make_folds(report.task, y, frame, data["spec"])
    return FitContext(
        x=to_model_frame(frame, data["plan"]),
        y=y,
        task=report.task,
        plan=data["plan"],
        folds=folds,
        metric="roc_auc",
        seed=0,
        n_jobs=1,
        n_classes=2,
    )


@pytest.mark.parametrize("family", ["lightgbm", "xgboost", "catboost", "extra_trees"])
def test_folds_side_by_side_give_the_same_trial(
    titanic: FitContext, family: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[str] = []
    fit_fold = fit._fit_fold

    def watched(*args: Any) -> Any:
        threads.append(threading.current_thread().name)
        return fit_fold(*args)

    monkeypatch.setattr(fit, "_fit_fold", watched)
    params = FAMILIES[family].portfolio[0]
    one = cross_validate(titanic, 0, family, params)
    assert threads == ["MainThread"] * len(titanic.folds)
    threads.clear()
    two = cross_validate(replace(titanic, fold_workers=2), 0, family, params)
    assert len({t for t in threads if t.startswith("tabpipe-fold")}) == 2
    np.testing.assert_array_equal(one.oof, two.oof)
    assert one.fold_scores == two.fold_scores and one.fold_rounds == two.fold_rounds
    assert one.cut_folds == two.cut_folds == 0
    assert two.fold_seconds > 0


def test_bags_side_by_side_are_the_same_models(titanic: FitContext) -> None:
    params = FAMILIES["lightgbm"].portfolio[0]
    result = cross_validate(titanic, 0, "lightgbm", params)
    one = fit_bag(titanic, result)
    two = fit_bag(replace(titanic, fold_workers=2), result)
    for a, b in zip(one, two, strict=True):
        np.testing.assert_array_equal(
            predict_output(a, titanic.x, "binary", 2), predict_output(b, titanic.x, "binary", 2)
        )


@pytest.mark.parametrize("family", ["lightgbm", "xgboost", "catboost"])
def test_a_passed_time_cut_stops_boosting_after_the_minimum_rounds(
    titanic: FitContext, family: str
) -> None:
    params = {**FAMILIES[family].portfolio[0], "learning_rate": 0.001}  # would run long
    cut = cross_validate(titanic, 0, family, params, time_cut=time.time() - 1)
    assert cut.cut_folds == len(titanic.folds)
    assert cut.fold_rounds and max(cut.fold_rounds) <= TimeCut.MIN_ROUNDS
    assert not np.isnan(cut.oof).any()  # every fold still predicts
    free = cross_validate(titanic, 0, family, params)
    assert free.cut_folds == 0 and min(free.fold_rounds) > TimeCut.MIN_ROUNDS


def test_the_search_notes_a_first_trial_cut_by_the_budget(titanic: FitContext) -> None:
    from tabpipe.engine import LocalEngine
    from tabpipe.modeling.search import Guard, TrialTask, _record, run_trial

    params = {**FAMILIES["lightgbm"].portfolio[0], "learning_rate": 0.001}
    task = TrialTask(0, "lightgbm", params, Guard(greater=True, time_cut=time.time() - 1))
    (outcome,) = LocalEngine().map(run_trial, LocalEngine().share(titanic), [task])
    assert outcome.result is not None and outcome.result.cut_folds == len(titanic.folds)

    import optuna

    from tabpipe.modeling.search import SearchLog

    study = optuna.create_study(direction="maximize")
    log = SearchLog()
    _record(task, study.ask(), outcome, {"lightgbm": study}, log)
    assert log.results and "stopped by the time budget in 5 fold(s)" in log.notes[0]
