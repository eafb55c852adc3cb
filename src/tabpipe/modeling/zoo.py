"""The model zoo: one strong default configuration per family."""

from __future__ import annotations

from typing import Any

from lightgbm import LGBMClassifier, LGBMRegressor
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LogisticRegression, Ridge

from tabpipe.config import Family, Task

#: Families ordered from cheapest to most expensive to fit.
FIT_ORDER: tuple[Family, ...] = ("linear", "lightgbm", "random_forest")

#: Linear models want scaled inputs; trees do not (and must not, for ONNX parity).
NEEDS_SCALING: dict[Family, bool] = {"linear": True, "lightgbm": False, "random_forest": False}


def make_estimator(family: Family, task: Task, seed: int, n_jobs: int = -1) -> Any:
    classify = task != "regression"
    if family == "linear":
        return LogisticRegression(C=1.0, max_iter=2000) if classify else Ridge(alpha=1.0)
    if family == "random_forest":
        cls = RandomForestClassifier if classify else RandomForestRegressor
        return cls(
            n_estimators=300,
            min_samples_leaf=2,
            max_features="sqrt" if classify else 0.5,
            n_jobs=n_jobs,
            random_state=seed,
        )
    params: dict[str, Any] = {
        "n_estimators": 300,
        "learning_rate": 0.05,
        "num_leaves": 31,
        "subsample": 0.8,
        "subsample_freq": 1,
        "colsample_bytree": 0.8,
        "random_state": seed,
        "n_jobs": n_jobs,
        "verbose": -1,
    }
    return LGBMClassifier(**params) if classify else LGBMRegressor(**params)
