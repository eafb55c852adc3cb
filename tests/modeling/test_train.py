"""The search, refit and ensemble: determinism, budgets, failures and bad input."""

from __future__ import annotations

import time
import warnings

import numpy as np
import pytest

from modeling.modeling_data import prepared
from tabpipe.config import build_spec
from tabpipe.errors import SchemaError, TrainingError
from tabpipe.features.frame import to_model_frame
from tabpipe.modeling.select import evaluate
from tabpipe.modeling.train import (
    ENSEMBLE,
    UndersizedBudgetWarning,
    make_folds,
    model_output,
    train_candidates,
)


@pytest.fixture(scope="module")
def penguins():
    return prepared("penguins.csv", "species")


def _train(data, **overrides):
    spec = data["spec"].model_copy(update=overrides)
    return train_candidates(data["frame"], data["plan"], data["report"], spec)


@pytest.mark.slow
def test_same_seed_and_trial_count_give_identical_results(penguins):
    kwargs = {"models": ("lightgbm", "linear"), "max_trials": 3, "time_budget": 300.0}
    first_models, first, _ = _train(penguins, **kwargs)
    second_models, second, _ = _train(penguins, **kwargs)
    assert first.stopped_by == "max_trials=3 reached"
    assert [(t.family, t.params, t.score) for t in first.trials] == [
        (t.family, t.params, t.score) for t in second.trials
    ]
    assert [(c.name, c.cv_score) for c in first.candidates] == [
        (c.name, c.cv_score) for c in second.candidates
    ]
    x = to_model_frame(penguins["frame"], penguins["plan"])
    for name in first_models:
        np.testing.assert_array_equal(
            model_output(first_models[name], x, "multiclass"),
            model_output(second_models[name], x, "multiclass"),
        )


def test_search_honours_the_budget():
    data = prepared("titanic.csv", "Survived")
    started = time.perf_counter()
    _, report, _ = _train(
        data, time_budget=6.0, max_trials=50, models=("linear", "lightgbm", "catboost")
    )
    assert time.perf_counter() - started <= 6.0 * 1.1
    assert report.stopped_by == "time budget"


def test_without_max_trials_the_budget_sets_a_trial_cap(penguins):
    from tabpipe.modeling.train import trial_cap

    spec = penguins["spec"]
    assert trial_cap(spec.model_copy(update={"time_budget": 60.0})) == 24
    assert trial_cap(spec.model_copy(update={"time_budget": 1.0})) == 4
    assert trial_cap(spec.model_copy(update={"time_budget": 60.0, "max_trials": 7})) == 7


@pytest.mark.slow
def test_greedy_ensemble_of_out_of_fold_predictions():
    data = prepared("titanic.csv", "Survived")
    models, report, oof = _train(
        data, time_budget=300.0, max_trials=4, models=("lightgbm", "linear")
    )
    assert ENSEMBLE in models
    ens = next(c for c in report.candidates if c.name == ENSEMBLE)
    assert sum(ens.members.values()) == pytest.approx(1.0)
    assert {f"{name}:1" for name in models} <= set(oof.columns)
    assert oof["__target__"].tolist() == data["frame"]["Survived"].astype(int).tolist()


def test_budget_too_small_returns_the_baseline_with_a_warning(penguins):
    with pytest.warns(UndersizedBudgetWarning, match="too small for any search"):
        models, report, _ = _train(penguins, time_budget=0.01)
    assert len(models) == 1
    assert report.stopped_by == "time budget"


def test_a_crashing_family_is_skipped_and_the_run_goes_on():
    # 12 rows: kNN's 15 neighbours cannot exist in a 9-row training fold; sklearn raises
    data = prepared("penguins.csv", "species", rows=slice(None))
    frame = data["frame"]
    small = frame.groupby("species").head(4).reset_index(drop=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndersizedBudgetWarning)
        models, report, _ = train_candidates(
            small,
            data["plan"],
            data["report"],
            data["spec"].model_copy(update={"models": ("knn", "linear"), "time_budget": 10.0}),
        )
    failed = {c.name: c.note for c in report.candidates if c.status == "failed"}
    assert "knn" in failed and "n_neighbors" in (failed["knn"] or "")
    assert "linear" in models
    assert any(n.startswith("knn skipped") for n in report.notes)


def test_one_class_target_is_refused_with_a_clear_message():
    data = prepared("penguins.csv", "species")
    frame = data["frame"]
    only = frame[frame["species"] == "Adelie"].reset_index(drop=True)
    with pytest.raises((TrainingError, SchemaError), match="species"):
        train_candidates(only, data["plan"], data["report"], data["spec"])


def test_more_columns_than_rows():
    data = prepared("ames.csv", "SalePrice", rows=slice(0, 60), max_trials=3)
    assert len(data["plan"].columns) > len(data["frame"])
    models, report, _ = _train(data, models=("linear", "lightgbm"), time_budget=20.0)
    assert report.trials and models


def test_all_categorical_data_trains_and_converts():
    data = prepared("mushrooms.csv", "type", max_trials=3)
    assert not data["plan"].numeric
    models, report, oof = _train(data, models=("linear", "lightgbm"), time_budget=20.0)
    board = evaluate(
        models,
        data["frame"].iloc[:80],
        data["plan"],
        data["report"],
        report,
        oof=oof,
        diagnose_selected=False,
    )
    assert all(row.onnx for row in board.rows), [row.note for row in board.rows]


def test_group_and_time_folds_keep_their_promise():
    data = prepared("titanic.csv", "Survived")
    y = data["frame"]["Survived"].to_numpy()
    grouped = data["spec"].model_copy(
        update={"split": data["spec"].split.model_copy(update={"group_column": "Cabin"})}
    )
    cabin = data["frame"]["Cabin"].astype(object).fillna("none")
    folds, scheme = make_folds("binary", y, data["frame"].assign(Cabin=cabin), grouped)
    cabins = cabin.to_numpy()
    assert "grouped" in scheme
    for tr, va in folds:
        assert not set(cabins[tr]) & set(cabins[va])
    timed = build_spec({**data["spec"].model_dump(), "split": {"time_column": "PassengerId"}})
    folds, scheme = make_folds("binary", y, data["frame"], timed)
    ids = data["frame"]["PassengerId"].to_numpy()
    assert "time-ordered" in scheme
    for tr, va in folds:
        assert ids[tr].max() < ids[va].min()


def test_tuning_on_a_sample_refits_on_every_row():
    data = prepared("titanic.csv", "Survived")
    _, report, oof = _train(
        data, tuning_sample_rows=300, max_trials=2, models=("linear",), time_budget=300.0
    )
    assert report.validation.endswith(f"on a sample of 300 of {len(data['frame'])} rows")
    assert len(oof) == 300
    assert report.candidates[0].status == "ok"


@pytest.mark.slow
def test_ensemble_members_are_the_bags_of_their_cross_validation_fold_models():
    data = prepared("titanic.csv", "Survived")
    kwargs = {"time_budget": 300.0, "max_trials": 5, "models": ("lightgbm", "xgboost", "linear")}
    bags = data["spec"].selection.model_copy(update={"bagging": True})
    models, report, oof = _train(data, **kwargs, selection=bags)
    members = next(c for c in report.candidates if c.name == ENSEMBLE).members or {}
    assert members and all(name.endswith(" (bag of 5)") for name in members)
    ensemble = models[ENSEMBLE]
    assert len(ensemble.estimators_) == 5 * len(members)
    assert sum(ensemble.weights_) == pytest.approx(1.0)
    # each fold model predicts its own validation fold as the trial's out-of-fold output said
    y = data["frame"]["Survived"].to_numpy()
    folds, _ = make_folds("binary", y, data["frame"], data["spec"])
    x = to_model_frame(data["frame"], data["plan"])
    checked = 0
    for j, name in enumerate(members):
        family = name.removesuffix(" (bag of 5)")
        if f"{family}:1" not in oof:  # a non-best trial of a family: no OOF column kept
            continue
        for i, (_, va) in enumerate(folds):
            fold_model = ensemble.estimators_[5 * j + i]
            np.testing.assert_allclose(
                fold_model.predict_proba(x.iloc[va])[:, 1], oof[f"{family}:1"].to_numpy()[va],
                atol=1e-6,
            )  # fmt: skip
        checked += 1
    assert checked
    board = evaluate(
        models, data["frame"].iloc[:80], data["plan"], data["report"], report, oof=oof,
        diagnose_selected=False,
    )  # fmt: skip
    assert next(r for r in board.rows if r.name == ENSEMBLE).onnx
    refitted, plain, _ = _train(data, **kwargs)  # the default: refits
    names = next(c for c in plain.candidates if c.name == ENSEMBLE).members or {}
    assert len(refitted[ENSEMBLE].estimators_) == len(names)
    assert not any("bag" in name for name in names)


@pytest.mark.slow
def test_a_single_selected_model_is_still_bagged(penguins):
    bags = penguins["spec"].selection.model_copy(update={"bagging": True})
    models, report, _ = _train(
        penguins, time_budget=300.0, max_trials=1, models=("linear",), selection=bags
    )
    members = next(c for c in report.candidates if c.name == ENSEMBLE).members
    assert members == {"linear (bag of 5)": 1.0}
    assert len(models[ENSEMBLE].estimators_) == 5
