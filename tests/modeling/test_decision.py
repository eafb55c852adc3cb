"""Calibration choice, threshold objectives and the calibrated model's ONNX form."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from tabpipe.config import ThresholdSpec, build_spec
from tabpipe.errors import ConfigError
from tabpipe.modeling.decision import (
    CalibratedModel,
    _scores,
    best_threshold,
    choose_calibration,
    decide,
    fit_calibrator,
    objective_value,
)
from tabpipe.packaging.onnx import parity, to_onnx
from tabpipe.packaging.signature import ColumnSpec, Signature


def _overconfident(n: int, classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from true probabilities, and the same probabilities sharpened."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, classes)) * 1.5
    true = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = np.asarray([rng.choice(classes, p=p) for p in true])
    sharp = np.exp(logits * 3) / np.exp(logits * 3).sum(axis=1, keepdims=True)
    return sharp, y


@pytest.mark.parametrize("classes", [2, 3])
def test_auto_calibrates_overconfident_probabilities_and_keeps_calibrated_ones(
    classes: int,
) -> None:
    sharp, y = _overconfident(3000, classes, seed=classes)
    chosen, scores = choose_calibration(sharp, y, "auto", seed=0)
    assert chosen is not None
    assert scores[chosen.method]["log_loss"] < scores["none"]["log_loss"]
    assert scores[chosen.method]["brier"] <= scores["none"]["brier"]
    calibrated = chosen.apply(sharp)
    assert np.allclose(calibrated.sum(axis=1), 1.0)
    # probabilities that are already right are left alone
    rng = np.random.default_rng(1)
    p = rng.uniform(0.02, 0.98, 4000)
    honest = np.column_stack([1 - p, p])
    kept, _ = choose_calibration(honest, (rng.uniform(size=p.size) < p).astype(int), "auto", 0)
    assert kept is None
    none, _ = choose_calibration(sharp, y, "none", seed=0)
    assert none is None


def test_threshold_objectives_f1_and_cost() -> None:
    rng = np.random.default_rng(2)
    p = rng.uniform(0, 1, 5000)
    y = (rng.uniform(size=p.size) < p).astype(int)
    f1 = ThresholdSpec(objective="f1")
    t_f1 = best_threshold(y, p, f1)
    assert objective_value(y, p, t_f1, f1) >= objective_value(y, p, 0.5, f1)
    # with calibrated probabilities the cost-optimal cut is near fp / (fp + fn)
    cost = ThresholdSpec.model_validate({"cost": {"fp": 1, "fn": 5}})
    assert cost.objective == "cost"
    t_cost = best_threshold(y, p, cost)
    assert abs(t_cost - 1 / 6) < 0.05
    assert objective_value(y, p, t_cost, cost) < objective_value(y, p, 0.5, cost)
    expensive_fp = ThresholdSpec.model_validate({"cost": {"fp": 5, "fn": 1}})
    assert best_threshold(y, p, expensive_fp) > 0.7


def test_threshold_spec_is_validated() -> None:
    base = {"source": {"path": "x.csv"}, "target": "y"}
    spec = build_spec({**base, "threshold": {"objective": "f1"}, "calibration": "isotonic"})
    assert spec.threshold.objective == "f1" and spec.calibration == "isotonic"
    with pytest.raises(ConfigError, match="needs cost"):
        build_spec({**base, "threshold": {"objective": "cost"}})
    with pytest.raises(ConfigError, match="calibration"):
        build_spec({**base, "calibration": "platt"})


def test_temperature_softens_overconfident_and_sharpens_timid_probabilities() -> None:
    sharp, y = _overconfident(3000, 3, seed=7)
    fitted = fit_calibrator(sharp, y, "temperature")
    (a,) = fitted.params[0]
    assert 0.2 < a < 0.5  # the probabilities were sharpened 3x: a = 1/T near 1/3
    assert fitted.columns == [0, 1, 2]
    softened = fitted.apply(sharp)
    assert np.allclose(softened.sum(axis=1), 1.0)
    assert np.array_equal(softened.argmax(axis=1), sharp.argmax(axis=1))  # labels unchanged
    scores = _scores(y, sharp)["log_loss"], _scores(y, softened)["log_loss"]
    assert scores[1] < scores[0]
    timid = fit_calibrator(softened**0.3 / (softened**0.3).sum(axis=1, keepdims=True), y,
                           "temperature")  # fmt: skip
    assert timid.params[0][0] > 1.0


@pytest.mark.parametrize("method", ["sigmoid", "isotonic", "temperature"])
@pytest.mark.parametrize("classes", [2, 3])
def test_calibrated_model_matches_its_onnx_graph(method: str, classes: int) -> None:
    rng = np.random.default_rng(classes)
    x = pd.DataFrame({"a": rng.normal(size=600), "b": rng.normal(size=600)}).astype(np.float32)
    y = (x["a"] * 2 + x["b"] + rng.normal(size=600) > 0).astype(int).to_numpy()
    if classes == 3:
        y = y + (x["b"] > 1).to_numpy().astype(int)
    base = Pipeline([("features", StandardScaler()), ("model", LogisticRegression(C=100))])
    base.fit(x, y)
    proba = base.predict_proba(x)
    threshold = ThresholdSpec(objective="f1") if classes == 2 else ThresholdSpec()
    decision = decide(proba, y, proba, y, "binary" if classes == 2 else "multiclass",
                      method, threshold, seed=0)  # fmt: skip
    assert decision.calibration is not None and decision.calibration.method == method
    model = CalibratedModel.from_fitted(base, decision)
    signature = Signature(columns=[ColumnSpec(name=c, kind="numeric") for c in ("a", "b")])
    session = ort.InferenceSession(
        to_onnx(model, signature, classifier=True), providers=["CPUExecutionProvider"]
    )
    feeds = {c: x[c].to_numpy().reshape(-1, 1) for c in ("a", "b")}
    label, converted = session.run(["label", "probabilities"], feeds)
    assert parity(model.predict_proba(x), converted) < 1e-4
    assert (label == model.predict(x)).mean() == 1.0
    if classes == 2:
        assert decision.threshold is not None
        expected = (model.predict_proba(x)[:, 1] >= decision.threshold).astype(int)
        assert model.predict(x).tolist() == expected.tolist()
