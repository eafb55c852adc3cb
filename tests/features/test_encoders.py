"""tabpipe's own transformers: scikit-learn conformance, behaviour, and ONNX parity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn.utils.estimator_checks import parametrize_with_checks

from tabpipe.features import converters
from tabpipe.features.encoders import (
    RARE,
    FrequencyEncoder,
    MissingIndicator,
    RareCategoryGrouper,
)
from tabpipe.features.frame import categories_to_str

DATA = Path(__file__).parents[1] / "data"


_TEXT_OUTPUT = "the output is text; this check compares outputs as numbers"
_NUMERIC_COMPARISONS = (
    "check_pipeline_consistency",
    "check_estimators_pickle",
    "check_transformer_data_not_an_array",
    "check_transformer_general",
    "check_methods_sample_order_invariance",
    "check_methods_subset_invariance",
    "check_fit_idempotent",
)


def _expected_failures(estimator) -> dict[str, str]:
    if isinstance(estimator, RareCategoryGrouper):
        return dict.fromkeys(_NUMERIC_COMPARISONS, _TEXT_OUTPUT)
    return {}


@parametrize_with_checks([FrequencyEncoder(), RareCategoryGrouper(min_count=2), MissingIndicator()])
def test_sklearn_conformance(estimator, check):
    # a check that does not apply is skipped, not run as an expected failure
    reason = _expected_failures(estimator).get(getattr(check, "func", check).__name__)
    if reason:
        pytest.skip(reason)
    check(estimator)


@pytest.fixture(scope="module")
def titanic() -> pd.DataFrame:
    return pd.read_csv(DATA / "titanic.csv")


def _strings(frame: pd.DataFrame, cols: list[str]) -> np.ndarray:
    return np.column_stack([categories_to_str(frame[c]) for c in cols])


def _run(model, feeds: dict[str, np.ndarray]) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)[0]


def test_frequency_encoder_shares_and_unseen(titanic):
    x = _strings(titanic, ["Embarked", "Pclass"])
    enc = FrequencyEncoder().fit(x)
    out = enc.transform(x)
    share_s = float((titanic["Embarked"] == "S").mean())
    assert out[titanic["Embarked"].eq("S").to_numpy(), 0] == pytest.approx(share_s)
    assert enc.transform(np.array([["Z", "9"]], dtype=object)).tolist() == [[0.0, 0.0]]
    assert list(enc.get_feature_names_out(["a", "b"])) == ["a_freq", "b_freq"]


def test_rare_grouper_policies(titanic):
    x = _strings(titanic, ["Embarked"])
    counts = titanic["Embarked"].fillna("").value_counts()
    grouper = RareCategoryGrouper(min_count=100).fit(x)
    out = grouper.transform(x)[:, 0]
    rare_values = set(counts[counts < 100].index)
    assert {v for v, o in zip(x[:, 0], out, strict=True) if o == RARE} == rare_values
    unseen = np.array([["Atlantis"]], dtype=object)
    assert grouper.transform(unseen)[0, 0] == RARE
    assert RareCategoryGrouper(100, unseen="missing").fit(x).transform(unseen)[0, 0] == ""
    with pytest.raises(ValueError, match="Atlantis"):
        RareCategoryGrouper(100, unseen="error").fit(x).transform(unseen)
    with pytest.raises(ValueError, match="unseen="):
        RareCategoryGrouper(unseen="drop").fit(x)  # type: ignore[arg-type]


@pytest.mark.parametrize("unseen", ["rare", "missing"])
def test_rare_grouper_onnx_parity(titanic, unseen):
    converters.register()
    cols = ["Embarked", "Cabin"]
    x = _strings(titanic, cols)
    grouper = RareCategoryGrouper(min_count=3, unseen=unseen).fit(x[:600])
    model = convert_sklearn(
        grouper, initial_types=[("x", StringTensorType([None, 2]))], target_opset=17
    )
    got = _run(model, {"x": x})  # rows 600+ hold cabins never seen in fit
    assert got.tolist() == grouper.transform(x).tolist()


def test_frequency_and_indicator_onnx_parity(titanic):
    converters.register()
    x = _strings(titanic, ["Embarked", "Sex", "Ticket"])
    enc = FrequencyEncoder().fit(x[:500])
    model = convert_sklearn(
        enc, initial_types=[("x", StringTensorType([None, 3]))], target_opset=17
    )
    np.testing.assert_allclose(_run(model, {"x": x}), enc.transform(x), atol=1e-7)
    nums = titanic[["Age", "Fare"]].to_numpy(dtype=np.float32)
    ind = MissingIndicator().fit(nums)
    model = convert_sklearn(ind, initial_types=[("x", FloatTensorType([None, 2]))], target_opset=17)
    got = _run(model, {"x": nums})
    assert got.sum() == titanic["Age"].isna().sum()
    np.testing.assert_array_equal(got, ind.transform(nums))


@pytest.mark.parametrize("unseen", ["rare", "missing"])
def test_grouped_one_hot_is_one_encoder_per_column_in_onnx(titanic, unseen):
    """Rare grouping and one-hot encoding of strings: one LabelEncoder per column and one
    OneHot for all of them, equal to scikit-learn, unseen values included."""
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    from tabpipe.packaging.onnx_simplify import simplify

    converters.register()
    cols = ["Embarked", "Cabin", "Sex"]
    x = _strings(titanic, cols)
    pipe = Pipeline(
        [
            ("group", RareCategoryGrouper(min_count=3, unseen=unseen)),
            ("encode", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
        ]
    ).fit(x[:600])
    model = simplify(
        convert_sklearn(pipe, initial_types=[("x", StringTensorType([None, 3]))], target_opset=17)
    )
    kinds = [n.op_type for n in model.graph.node]
    assert kinds.count("LabelEncoder") == len(cols)
    assert kinds.count("OneHot") == 1
    got = _run(model, {"x": x})  # rows 600+ hold cabins never seen in fit
    np.testing.assert_array_equal(got, pipe.transform(x))
    plain = OneHotEncoder(handle_unknown="ignore", sparse_output=False).fit(x[:600])
    model = convert_sklearn(
        plain, initial_types=[("x", StringTensorType([None, 3]))], target_opset=17
    )
    np.testing.assert_array_equal(_run(model, {"x": x}), plain.transform(x))


def test_one_hot_encoders_onnx_cannot_express_go_to_skl2onnx(titanic):
    from sklearn.preprocessing import OneHotEncoder

    converters.register()
    x = _strings(titanic, ["Embarked", "Sex"])
    enc = OneHotEncoder(drop="first", sparse_output=False).fit(x)
    model = convert_sklearn(
        enc, initial_types=[("x", StringTensorType([None, 2]))], target_opset=17
    )
    assert "OneHot" not in [n.op_type for n in model.graph.node]
    np.testing.assert_array_equal(_run(model, {"x": x}), enc.transform(x))
