"""SkewPowerTransformer: conformance, agreement with scikit-learn, and ONNX parity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.preprocessing import PowerTransformer
from sklearn.utils.estimator_checks import parametrize_with_checks

from tabpipe.features import converters
from tabpipe.features.numeric import SkewPowerTransformer, yeo_johnson

DATA = Path(__file__).parents[1] / "data"


@parametrize_with_checks([SkewPowerTransformer(), SkewPowerTransformer(threshold=0.0)])
def test_sklearn_conformance(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def ames() -> np.ndarray:
    frame = pd.read_csv(DATA / "ames.csv")
    cols = ["LotArea", "GrLivArea", "MasVnrArea", "YearBuilt", "OverallQual"]
    return frame[cols].to_numpy(dtype=np.float32)


def test_only_skewed_columns_are_transformed_as_scikit_learn_does(ames):
    x = ames[~np.isnan(ames).any(axis=1)]
    enc = SkewPowerTransformer(threshold=1.0).fit(x)
    skewed = np.flatnonzero(~np.isnan(enc.lambdas_))
    assert set(skewed) == {0, 1, 2}  # areas have long tails; years and grades do not
    reference = PowerTransformer(standardize=False).fit(x[:, skewed].astype(np.float64))
    np.testing.assert_allclose(enc.lambdas_[skewed], reference.lambdas_)
    out = enc.transform(x)
    np.testing.assert_allclose(out[:, skewed], reference.transform(x[:, skewed]), rtol=1e-5)
    np.testing.assert_array_equal(out[:, [3, 4]], x[:, [3, 4]])
    assert abs(pd.Series(out[:, 0]).skew()) < abs(pd.Series(x[:, 0]).skew())


@pytest.mark.parametrize(
    "lambdas",
    [
        [0.0, 2.0, 0.5, 1.7],  # both logarithm branches and two powers
        [np.nan, 2.0, np.nan, -0.3],  # columns left as they are between transformed ones
        [0.5, 1.0, 3.0, 1.7],  # powers only
    ],
)
def test_onnx_parity_on_every_branch(ames, lambdas):
    converters.register()
    rng = np.random.default_rng(0)
    x = np.column_stack(
        [rng.normal(0, 3, 4000) for _ in range(4)] + [np.resize(ames[:, 0], 4000) - 5000]
    ).astype(np.float32)
    x[::50, 1] = np.nan
    enc = SkewPowerTransformer(threshold=0.0).fit(x)
    enc.lambdas_[:4] = lambdas
    model = convert_sklearn(enc, initial_types=[("x", FloatTensorType([None, 5]))], target_opset=17)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = session.run(None, {"x": x})[0]
    want = enc.transform(x)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    assert yeo_johnson(np.array([-1.0, 0.0, 1.0]), 1.0).tolist() == [-1.0, 0.0, 1.0]


def test_onnx_graph_size_does_not_grow_with_the_columns(ames):
    """The transform is one set of whole-matrix nodes, not a chain per column."""
    converters.register()
    sizes = []
    for width in (2, 12):
        x = np.column_stack([np.resize(ames[:, 0], 500) + j for j in range(width)])
        enc = SkewPowerTransformer(threshold=0.0).fit(x.astype(np.float32))
        model = convert_sklearn(
            enc, initial_types=[("x", FloatTensorType([None, width]))], target_opset=17
        )
        sizes.append(len(model.graph.node))
    assert sizes[0] == sizes[1]
