"""Measured performance with bootstrap intervals; CBPE estimates without labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from tabpipe.modeling import metrics as mx
from tabpipe.monitoring.performance import (
    cbpe_accuracy,
    cbpe_roc_auc,
    cbpe_roc_auc_ovr,
    cbpe_value,
    estimated,
    expected_confusion,
    from_confusion,
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


def _fit(x: np.ndarray, y: np.ndarray, n_train: int, seed: int) -> tuple[Pipeline, np.ndarray]:
    """A logistic regression (well calibrated) on ``n_train`` random rows; the rest's indices."""
    order = np.random.default_rng(seed).permutation(len(y))
    model = make_pipeline(SimpleImputer(), StandardScaler(), LogisticRegression(max_iter=500))
    return model.fit(x[order[:n_train]], y[order[:n_train]]), order[n_train:]


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
    model, test = _fit(x, y, 500, seed=0)
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


def _wine() -> tuple[np.ndarray, np.ndarray]:
    """White vinho verde (UCI), quality in three classes: up to 5, 6, from 7."""
    wine = pd.read_csv(DATA / "wine_white.csv", sep=";")
    y = np.digitize(wine.pop("quality").to_numpy(), [6, 7])
    return wine.to_numpy(float), y


def test_the_confusion_matrix_metrics_match_sklearn() -> None:
    rng = np.random.default_rng(3)
    general = ("accuracy", "balanced_accuracy", "mcc", "f1_macro", "f1_weighted")
    for k, names in ((2, ("f1", "precision", "recall")), (4, ("precision_macro", "recall_macro"))):
        y = rng.integers(0, k, 300)
        pred = np.where(rng.random(300) < 0.6, y, rng.integers(0, k, 300))
        confusion = skm.confusion_matrix(y, pred, labels=np.arange(k)).astype(float)
        for name in (*names, *general):
            expected = mx.score(name, y, np.eye(k)[pred])
            assert from_confusion(name, confusion) == pytest.approx(expected), name
        # one-hot probabilities: the expected confusion matrix is the realised one
        # a class that neither occurs nor is predicted is left out of macro averages
        wide = np.zeros((k + 1, k + 1))
        wide[:k, :k] = confusion
        for name in ("f1_macro", "precision_macro", "recall_macro", "balanced_accuracy"):
            assert from_confusion(name, wide) == pytest.approx(mx.score(name, y, np.eye(k)[pred]))
        one_hot = expected_confusion(np.eye(k)[pred])
        assert np.array_equal(one_hot, skm.confusion_matrix(pred, pred, labels=np.arange(k)))


def test_cbpe_binary_f1_precision_recall_track_realised_on_titanic() -> None:
    x, y = _adult_like()
    model, test = _fit(x, y, 450, seed=0)
    proba = model.predict_proba(x[test])
    for name in ("f1", "precision", "recall", "mcc", "balanced_accuracy"):
        est = estimated(name, proba)
        assert est is not None and est.low is not None and est.high is not None
        realised = mx.score(name, y[test], proba)
        assert est.low - 0.03 <= realised <= est.high + 0.03, (name, est, realised)
        assert est.value == pytest.approx(realised, abs=0.08), name
    # binary-only metrics are not estimated for several classes, and the reverse
    assert estimated("f1", np.full((10, 3), 1 / 3)) is None
    assert estimated("log_loss", proba) is None


def test_cbpe_multiclass_tracks_realised_on_wine_without_concept_shift() -> None:
    """Calibrated model, same concept: each window's estimate sits near its realised value."""
    x, y = _wine()
    model, test = _fit(x, y, 2400, seed=1)
    proba = model.predict_proba(x[test])
    inside = total = 0
    for window in np.array_split(np.arange(len(test)), 5):  # five windows of ~500 rows
        p, truth = proba[window], y[test][window]
        for name in ("accuracy", "balanced_accuracy", "f1_macro", "roc_auc_ovr"):
            est = estimated(name, p)
            assert est is not None and est.low is not None and est.high is not None
            assert est.low < est.value < est.high and est.high - est.low < 0.1
            realised = mx.score(name, truth, p)
            # within the interval's full width: about four standard errors of label noise
            assert abs(est.value - realised) <= est.high - est.low, (name, est, realised)
            inside += est.low <= realised <= est.high
            total += 1
    assert inside >= 0.75 * total  # the 95% intervals hold most realised values
    # over the whole test set (2498 rows), the estimates are close
    for name in ("accuracy", "f1_macro", "f1_weighted", "mcc", "roc_auc_ovr"):
        assert cbpe_value(name, proba) == pytest.approx(mx.score(name, y[test], proba), abs=0.015)
    assert cbpe_roc_auc_ovr(proba) == pytest.approx(
        skm.roc_auc_score(y[test], proba, multi_class="ovr"), abs=0.01
    )
