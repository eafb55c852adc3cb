"""The model zoo: per family a constructor, a search space and a portfolio of proven configs.

Each family names the preprocessing it wants (see :mod:`tabpipe.features.builder`), how it
is early-stopped, and its interpretability class. Library imports happen inside
:func:`make_estimator`, so a family whose library fails to import is skipped by the search
with a note instead of breaking the run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from tabpipe.config import Family, Task

Preprocessing = Literal["tree_native", "tree_impute", "linear", "knn"]
Interpretability = Literal["glass-box", "tree ensemble", "instance-based"]
EarlyStopping = Literal["lightgbm", "xgboost", "catboost", "internal", "none"]

Params = dict[str, Any]


@dataclass(frozen=True)
class FamilySpec:
    """What the search needs to know about one family."""

    name: Family
    preprocessing: Preprocessing
    interpretability: Interpretability
    early_stopping: EarlyStopping
    space: Callable[[Any], Params]
    portfolio: tuple[Params, ...] = field(default_factory=tuple)


def _lightgbm_space(trial: Any) -> Params:
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
        "num_leaves": trial.suggest_int("num_leaves", 4, 128, log=True),
        "min_child_samples": trial.suggest_int("min_child_samples", 2, 100, log=True),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.3, 1.0),
        "subsample": trial.suggest_float("subsample", 0.5, 1.0),
        "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 10.0, log=True),
    }


def _xgboost_space(trial: Any) -> Params:
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
        "max_depth": trial.suggest_int("max_depth", 2, 10),
        "min_child_weight": trial.suggest_float("min_child_weight", 0.5, 20.0, log=True),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.3, 1.0),
        "subsample": trial.suggest_float("subsample", 0.5, 1.0),
        "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 10.0, log=True),
    }


def _catboost_space(trial: Any) -> Params:
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.2, log=True),
        "depth": trial.suggest_int("depth", 3, 8),
        "l2_leaf_reg": trial.suggest_float("l2_leaf_reg", 0.5, 20.0, log=True),
    }


def _hist_gb_space(trial: Any) -> Params:
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.3, log=True),
        "max_leaf_nodes": trial.suggest_int("max_leaf_nodes", 4, 64, log=True),
        "min_samples_leaf": trial.suggest_int("min_samples_leaf", 2, 60, log=True),
        "l2_regularization": trial.suggest_float("l2_regularization", 1e-4, 10.0, log=True),
    }


def _forest_space(trial: Any) -> Params:
    return {
        "max_features": trial.suggest_float("max_features", 0.1, 1.0),
        "min_samples_leaf": trial.suggest_int("min_samples_leaf", 2, 20, log=True),
    }


def _linear_space(trial: Any) -> Params:
    return {"C": trial.suggest_float("C", 1e-3, 100.0, log=True)}


def _knn_space(trial: Any) -> Params:
    return {
        "n_neighbors": trial.suggest_int("n_neighbors", 3, 60, log=True),
    }


FAMILIES: dict[Family, FamilySpec] = {
    "lightgbm": FamilySpec(
        "lightgbm",
        "tree_native",
        "tree ensemble",
        "lightgbm",
        _lightgbm_space,
        (
            {
                "learning_rate": 0.05,
                "num_leaves": 31,
                "min_child_samples": 20,
                "colsample_bytree": 0.8,
                "subsample": 0.8,
                "reg_lambda": 0.001,
            },
            {
                "learning_rate": 0.03,
                "num_leaves": 8,
                "min_child_samples": 10,
                "colsample_bytree": 0.5,
                "subsample": 0.9,
                "reg_lambda": 1.0,
            },
            {
                "learning_rate": 0.08,
                "num_leaves": 96,
                "min_child_samples": 40,
                "colsample_bytree": 0.6,
                "subsample": 0.7,
                "reg_lambda": 3.0,
            },
        ),
    ),
    "catboost": FamilySpec(
        "catboost",
        "tree_native",
        "tree ensemble",
        "catboost",
        _catboost_space,
        (
            {"learning_rate": 0.08, "depth": 6, "l2_leaf_reg": 3.0},
            {"learning_rate": 0.05, "depth": 4, "l2_leaf_reg": 8.0},
        ),
    ),
    "xgboost": FamilySpec(
        "xgboost",
        "tree_native",
        "tree ensemble",
        "xgboost",
        _xgboost_space,
        (
            {
                "learning_rate": 0.05,
                "max_depth": 6,
                "min_child_weight": 1.0,
                "colsample_bytree": 0.8,
                "subsample": 0.8,
                "reg_lambda": 1.0,
            },
            {
                "learning_rate": 0.03,
                "max_depth": 3,
                "min_child_weight": 2.0,
                "colsample_bytree": 0.6,
                "subsample": 0.9,
                "reg_lambda": 5.0,
            },
        ),
    ),
    "extra_trees": FamilySpec(
        "extra_trees",
        "tree_impute",
        "tree ensemble",
        "none",
        _forest_space,
        ({"max_features": 0.5, "min_samples_leaf": 2},),
    ),
    "random_forest": FamilySpec(
        "random_forest",
        "tree_impute",
        "tree ensemble",
        "none",
        _forest_space,
        ({"max_features": 0.5, "min_samples_leaf": 3},),
    ),
    "hist_gb": FamilySpec(
        "hist_gb",
        "tree_native",
        "tree ensemble",
        "internal",
        _hist_gb_space,
        (
            {
                "learning_rate": 0.06,
                "max_leaf_nodes": 31,
                "min_samples_leaf": 20,
                "l2_regularization": 0.01,
            },
        ),
    ),
    "linear": FamilySpec(
        "linear", "linear", "glass-box", "none", _linear_space, ({"C": 1.0}, {"C": 0.05})
    ),
    "knn": FamilySpec(
        "knn",
        "knn",
        "instance-based",
        "none",
        _knn_space,
        ({"n_neighbors": 15},),
    ),
}

#: The zero-shot portfolio order: strong, cheap configurations first, then diversity.
#: Families kept out of the ensemble: their ONNX form may break ties differently.
NOT_IN_ENSEMBLE: frozenset[str] = frozenset({"knn"})

PORTFOLIO_ORDER: tuple[tuple[Family, int], ...] = (
    ("lightgbm", 0),
    ("xgboost", 0),
    ("linear", 0),
    ("catboost", 0),
    ("extra_trees", 0),
    ("lightgbm", 1),
    ("random_forest", 0),
    ("hist_gb", 0),
    ("knn", 0),
    ("xgboost", 1),
    ("lightgbm", 2),
    ("catboost", 1),
    ("linear", 1),
)

#: Upper bound on boosting rounds; early stopping picks the real number.
MAX_ROUNDS = 2000
#: Forest size: more trees add little here but make the ONNX graph slow to build and large.
FOREST_TREES = 200


def make_estimator(
    family: Family, params: Params, task: Task, seed: int, n_jobs: int, rounds: int | None = None
) -> Any:
    """An unfitted estimator of ``family`` with ``params`` (``rounds`` fixes boosting rounds)."""
    classify = task != "regression"
    n_rounds = rounds or MAX_ROUNDS
    if family == "lightgbm":
        from lightgbm import LGBMClassifier, LGBMRegressor

        cls: Any = LGBMClassifier if classify else LGBMRegressor
        return cls(
            n_estimators=n_rounds,
            subsample_freq=1,
            random_state=seed,
            n_jobs=n_jobs,
            deterministic=True,
            force_row_wise=True,
            verbose=-1,
            **params,
        )
    if family == "xgboost":
        from xgboost import XGBClassifier, XGBRegressor

        cls = XGBClassifier if classify else XGBRegressor
        return cls(
            n_estimators=n_rounds,
            tree_method="hist",
            random_state=seed,
            n_jobs=n_jobs,
            early_stopping_rounds=None if rounds else 50,
            **params,
        )
    if family == "catboost":
        from catboost import CatBoostClassifier, CatBoostRegressor

        cls = CatBoostClassifier if classify else CatBoostRegressor
        extra = {"loss_function": "MultiClass"} if task == "multiclass" else {}
        return cls(
            iterations=n_rounds,
            random_seed=seed,
            thread_count=n_jobs,
            verbose=False,
            allow_writing_files=False,
            **extra,
            **params,
        )
    if family == "hist_gb":
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

        cls = HistGradientBoostingClassifier if classify else HistGradientBoostingRegressor
        return cls(max_iter=500, early_stopping=True, random_state=seed, **params)
    if family in ("random_forest", "extra_trees"):
        from sklearn import ensemble

        name = ("RandomForest" if family == "random_forest" else "ExtraTrees") + (
            "Classifier" if classify else "Regressor"
        )
        return getattr(ensemble, name)(
            n_estimators=FOREST_TREES, n_jobs=n_jobs, random_state=seed, **params
        )
    if family == "linear":
        from sklearn.linear_model import LogisticRegression, Ridge

        if classify:
            return LogisticRegression(C=params["C"], max_iter=3000)
        return Ridge(alpha=1.0 / params["C"])
    if family == "knn":
        from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

        # uniform weights only: distance weights divide by zero on exact matches in ONNX
        cls = KNeighborsClassifier if classify else KNeighborsRegressor
        return cls(**params)
    raise ValueError(f"unknown model family {family!r}; valid families: {', '.join(FAMILIES)}")
