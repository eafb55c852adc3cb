"""The training pipeline's stages, wired to the functions of each room."""

from __future__ import annotations

from typing import Any

import pandas as pd
from sklearn.model_selection import train_test_split

from tabpipe.artifacts import ESTIMATORS, HTML, TABLE, Codec, json_codec
from tabpipe.config import PipelineSpec
from tabpipe.data.cleaning import CleaningReport, clean
from tabpipe.data.contract import DataContract
from tabpipe.data.validation import raise_for_errors, validate_frame
from tabpipe.eda.profile import Profile, profile
from tabpipe.eda.report import render_html
from tabpipe.errors import SchemaError
from tabpipe.features.builder import plan_features
from tabpipe.features.frame import FeaturePlan
from tabpipe.modeling.select import Leaderboard, evaluate
from tabpipe.modeling.train import TrainReport, train_candidates
from tabpipe.packaging import bundle
from tabpipe.packaging.build import package
from tabpipe.pipeline import Stage
from tabpipe.run_report import render_run_report

BUNDLE: Codec[Any] = Codec("bundle", bundle.write, bundle.read_manifest)


def _clean(spec: PipelineSpec, snapshot: pd.DataFrame) -> tuple[Any, ...]:
    cleaned, removed, report = clean(snapshot, spec.target, spec.task, spec.cleaning, spec.columns)
    if report.contract is not None and spec.columns:
        raise_for_errors(validate_frame(snapshot, report.contract.declared_only()))
    return cleaned, removed, report, report.contract


def _profile(
    spec: PipelineSpec,
    cleaned: pd.DataFrame,
    cleaning: CleaningReport,
    train: pd.DataFrame,
    test: pd.DataFrame,
) -> tuple[Any, ...]:
    prof = profile(cleaned, cleaning, train=train, test=test)
    return prof, render_html(prof, cleaning, f"{spec.model_name}: data profile")


def _split(spec: PipelineSpec, cleaned: pd.DataFrame, cleaning: CleaningReport) -> tuple[Any, ...]:
    y = cleaned[cleaning.target]
    stratify = None
    if cleaning.task != "regression" and spec.split.stratify and y.value_counts().min() >= 2:
        stratify = y
    if len(cleaned) < 10:
        raise SchemaError(
            f"only {len(cleaned)} usable rows; at least 10 are needed to train and test"
        )
    train, test = train_test_split(
        cleaned, test_size=spec.split.test_size, random_state=spec.seed, stratify=stratify
    )
    return train.reset_index(drop=True), test.reset_index(drop=True)


def _features(spec: PipelineSpec, cleaning: CleaningReport) -> tuple[Any, ...]:
    return (plan_features(cleaning, spec.features),)


def _train(
    spec: PipelineSpec, train: pd.DataFrame, plan: FeaturePlan, cleaning: CleaningReport
) -> tuple[Any, ...]:
    return train_candidates(train, plan, cleaning, spec)


def _evaluate(
    spec: PipelineSpec,
    models: dict[str, Any],
    test: pd.DataFrame,
    plan: FeaturePlan,
    cleaning: CleaningReport,
    training: TrainReport,
    oof: pd.DataFrame,
) -> tuple[Any, ...]:
    board = evaluate(
        models,
        test,
        plan,
        cleaning,
        training,
        spec.selection,
        oof,
        seed=spec.seed,
        calibration=spec.calibration,
        threshold=spec.threshold,
    )
    return (board,)


def _package(
    spec: PipelineSpec,
    models: dict[str, Any],
    leaderboard: Leaderboard,
    plan: FeaturePlan,
    cleaning: CleaningReport,
    test: pd.DataFrame,
    snapshot: str,
    run_id: str,
    spec_hash: str,
) -> tuple[Any, ...]:
    lineage = bundle.Lineage(snapshot_id=snapshot, run_id=run_id, spec_hash=spec_hash)
    return (
        package(spec.model_name, models, leaderboard, plan, cleaning, test, lineage, spec.seed),
    )


def _report(
    spec: PipelineSpec,
    profile: Profile,
    cleaning: CleaningReport,
    training: TrainReport,
    leaderboard: Leaderboard,
) -> tuple[Any, ...]:
    return (render_run_report(spec, profile, cleaning, training, leaderboard),)


def _training_params(spec: PipelineSpec) -> dict[str, Any]:
    return {
        "time_budget": spec.time_budget,
        "metric": spec.metric,
        "seed": spec.seed,
        "models": list(spec.models),
        "folds": spec.split.folds,
        "stratify": spec.split.stratify,
        "group_column": spec.split.group_column,
        "time_column": spec.split.time_column,
        "max_trials": spec.max_trials,
        "n_jobs": spec.n_jobs,
        "ensemble": spec.selection.ensemble,
        # Where trials run does not change them; how many are asked at once does.
        "parallel_trials": spec.engine.parallel_trials,
        "tuning_sample_rows": spec.tuning_sample_rows,
    }


TRAINING_STAGES: list[Stage] = [
    Stage(
        "clean",
        _clean,
        ("snapshot",),
        (
            ("cleaned", TABLE),
            ("set_aside", TABLE),
            ("cleaning", json_codec(CleaningReport)),
            ("contract", json_codec(DataContract)),
        ),
        params=lambda s: {
            "target": s.target,
            "task": s.task,
            "cleaning": s.cleaning.model_dump(mode="json"),
            "columns": {k: v.model_dump(mode="json") for k, v in s.columns.items()},
        },
        version=3,  # 3: datetime columns are features
    ),
    Stage(
        "split",
        _split,
        ("cleaned", "cleaning"),
        (("train", TABLE), ("test", TABLE)),
        params=lambda s: {"split": s.split.model_dump(), "seed": s.seed},
    ),
    Stage(
        "profile",
        _profile,
        ("cleaned", "cleaning", "train", "test"),
        (("profile", json_codec(Profile)), ("profile_html", HTML)),
        params=lambda s: {"name": s.model_name},
        version=2,
    ),
    Stage(
        "features",
        _features,
        ("cleaning",),
        (("plan", json_codec(FeaturePlan)),),
        params=lambda s: {"features": s.features.model_dump(mode="json")},
        version=3,
    ),
    Stage(
        "train",
        _train,
        ("train", "plan", "cleaning"),
        (("models", ESTIMATORS), ("training", json_codec(TrainReport)), ("oof", TABLE)),
        params=_training_params,
        version=2,
    ),
    Stage(
        "evaluate",
        _evaluate,
        ("models", "test", "plan", "cleaning", "training", "oof"),
        (("leaderboard", json_codec(Leaderboard)),),
        params=lambda s: {
            "selection": s.selection.model_dump(),
            "seed": s.seed,
            "calibration": s.calibration,
            "threshold": s.threshold.model_dump(mode="json"),
        },
        version=3,
    ),
    Stage(
        "package",
        _package,
        ("models", "leaderboard", "plan", "cleaning", "test"),
        (("bundle", BUNDLE),),
        params=lambda s: {"name": s.model_name, "seed": s.seed},
        context=("snapshot", "run_id", "spec_hash"),
        version=2,
    ),
    Stage(
        "report",
        _report,
        ("profile", "cleaning", "training", "leaderboard"),
        (("report", HTML),),
        params=lambda s: {"name": s.model_name},
    ),
]
