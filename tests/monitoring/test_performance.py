"""Measured performance with bootstrap intervals; CBPE estimates without labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from tabpipe.monitoring.performance import (
    cbpe_accuracy,
    cbpe_roc_auc,
    estimated,
    measured,
    relative_drop,
)

DATA = Path(__file__).parents[1] / "data"


def _adult_like() -> tuple[np.ndarray, np.ndarray]:
    titanic = pd.read_csv(DATA / "titanic.csv")
    x = pd.DataFrame(
        {
            "pclass": titanic["Pclass"],
            "male": (titanic["Sex"] == "male").astype(int),
            "age": titanic["Age"],
            "fare": titanic["Fare"],
            "sibsp": titanic["SibSp"],
            "parch": titanic["Parch"],
        }
    ).to_numpy(float)
    return x, titanic["Survived"].to_numpy(int)


def test_bootstrap_interval_brackets_the_value() -> None:
    _x, y = _adult_like()
    rng = np.random.default_rng(0)
    proba = np.clip(y * 0.7 + rng.uniform(0, 0.3, len(y)), 0, 1)
    output = np.column_stack([1 - proba, proba])
    est = measured("roc_auc", y, output, resamples=200)
    assert est.low is not None and est.high is not None
    assert est.low <= est.value <= est.high
    assert est.high - est.low < 0.1
    assert est.value == pytest.approx(roc_auc_score(y, proba))


def test_cbpe_tracks_realised_performance_of_a_calibrated_classifier() -> None:
    x, y = _adult_like()
    rng = np.random.default_rng(0)
    order = rng.permutation(len(y))
    train, test = order[:500], order[500:]
    model = make_pipeline(SimpleImputer(), StandardScaler(), LogisticRegression())
    model.fit(x[train], y[train])
    proba = model.predict_proba(x[test])
    realised_acc = accuracy_score(y[test], proba.argmax(axis=1))
    realised_auc = roc_auc_score(y[test], proba[:, 1])
    assert cbpe_accuracy(proba) == pytest.approx(realised_acc, abs=0.05)
    assert cbpe_roc_auc(proba) == pytest.approx(realised_auc, abs=0.05)
    # covariate shift: only women arrive; CBPE follows the realised accuracy without labels
    women = test[x[test, 1] == 0]
    hard_proba = model.predict_proba(x[women])
    realised = accuracy_score(y[women], hard_proba.argmax(axis=1))
    assert cbpe_accuracy(hard_proba) == pytest.approx(realised, abs=0.08)
    est = estimated("accuracy", hard_proba)
    assert est is not None and est.rows == len(women)
    assert estimated("log_loss", hard_proba) is None


def test_relative_drop_follows_the_metric_direction() -> None:
    assert relative_drop("rmse", 100.0, 150.0) == pytest.approx(0.5)
    assert relative_drop("roc_auc", 0.8, 0.6) == pytest.approx(0.25)
    assert relative_drop("r2", 0.8, 0.9) < 0
