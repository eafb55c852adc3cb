"""The ONNX conversion keeps tree splits exact on the float32 values tabpipe feeds."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
from lightgbm import LGBMClassifier, LGBMRegressor
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline

from tabpipe.packaging.onnx import float32_down, parity, to_onnx
from tabpipe.packaging.signature import ColumnSpec, Signature


def _adjacent_floats(n: int, seed: int = 0) -> np.ndarray:
    """Values one float32 step apart: LightGBM's double midpoints between them tie in float32."""
    rng = np.random.default_rng(seed)
    steps = rng.integers(0, 40, n).astype(np.int32)
    return (np.array([np.float32(0.3)]).view(np.int32) + steps).view(np.float32)


@pytest.mark.parametrize("value", [0.1, 0.30000002682209015, -2.5e-8, 1e30, -7.0])
def test_float32_down_is_the_largest_float32_not_above(value: float) -> None:
    down = float32_down(value)
    assert float(np.float32(down)) == down
    assert down <= value
    assert float(np.nextafter(np.float32(down), np.float32(np.inf))) > value


@pytest.mark.parametrize("estimator", [LGBMRegressor, LGBMClassifier])
def test_lightgbm_splits_between_adjacent_float32_values_survive_conversion(
    estimator: type,
) -> None:
    x = _adjacent_floats(3000)
    z = np.random.default_rng(1).normal(size=len(x)).astype(np.float32)
    signal = (x > np.sort(x)[len(x) // 2]).astype(int) + (x.view(np.int32) % 2)
    frame = pd.DataFrame({"x": x.astype(np.float64), "z": z.astype(np.float64)})
    classify = estimator is LGBMClassifier
    y = (signal >= 1).astype(int) if classify else 1000.0 * signal + z
    model = estimator(n_estimators=40, min_child_samples=5, verbose=-1)
    pipe = Pipeline([("cols", ColumnTransformer([("p", "passthrough", ["x", "z"])])), ("m", model)])
    pipe.fit(frame, y)
    signature = Signature(
        columns=[ColumnSpec(name="x", kind="numeric"), ColumnSpec(name="z", kind="numeric")]
    )
    session = ort.InferenceSession(
        to_onnx(pipe, signature, classifier=classify), providers=["CPUExecutionProvider"]
    )
    feeds = signature.to_feeds({"x": frame["x"].tolist(), "z": frame["z"].tolist()})
    output = "probabilities" if classify else "variable"
    (converted,) = session.run([output], feeds)
    native_frame = pd.DataFrame({k: v.reshape(-1) for k, v in feeds.items()})
    native = pipe.predict_proba(native_frame) if classify else pipe.predict(native_frame)
    assert parity(np.asarray(native), np.asarray(converted)) <= 1e-4
