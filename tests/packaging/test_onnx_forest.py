"""The vectorized forest converters emit what skl2onnx's own converters emit."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import pytest
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from skl2onnx.operator_converters import random_forest
from sklearn import ensemble
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from support import DATA
from tabpipe.packaging import onnx_forest
from tabpipe.packaging.onnx import TARGET_OPSET, to_onnx
from tabpipe.packaging.signature import ColumnSpec, Signature

#: data file, target, numeric columns, categorical columns, read_csv keywords
DATASETS: dict[str, tuple[str, str, list[str], list[str], dict[str, Any]]] = {
    "titanic": (
        "titanic.csv",
        "Survived",
        ["Pclass", "Age", "SibSp", "Parch", "Fare"],
        ["Sex", "Embarked"],
        {},
    ),
    "penguins": (
        "penguins.csv",
        "species",
        ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"],
        ["island", "sex"],
        {},
    ),
    "wine": (
        "wine_white.csv",
        "quality",
        [
            "fixed acidity",
            "volatile acidity",
            "citric acid",
            "residual sugar",
            "chlorides",
            "free sulfur dioxide",
            "total sulfur dioxide",
            "density",
            "pH",
            "sulphates",
            "alcohol",
        ],
        [],
        {"sep": ";"},
    ),
}

CASES = [
    ("RandomForestClassifier", "titanic"),
    ("ExtraTreesClassifier", "titanic"),
    ("RandomForestClassifier", "penguins"),
    ("ExtraTreesClassifier", "penguins"),
    ("RandomForestRegressor", "wine"),
    ("ExtraTreesRegressor", "wine"),
]


def _fitted(estimator: str, dataset: str) -> tuple[Pipeline, Signature, pd.DataFrame, bool]:
    """A tabpipe-shaped pipeline (imputation, one-hot, forest) fitted on the values the
    signature feeds, so scikit-learn and ONNX see the same float32 numbers; and the
    test rows."""
    path, target, numeric, categorical, read = DATASETS[dataset]
    frame = pd.read_csv(DATA / path, **read)
    signature = Signature(
        columns=[ColumnSpec(name=c, kind="numeric") for c in numeric]
        + [ColumnSpec(name=c, kind="categorical") for c in categorical]
    )
    feeds = signature.to_feeds({c: frame[c].tolist() for c in signature.names})
    fed = pd.DataFrame({k: v.reshape(-1) for k, v in feeds.items()})
    steps = [("num", SimpleImputer(strategy="median"), numeric)]
    if categorical:
        steps.append(("cat", OneHotEncoder(handle_unknown="ignore"), categorical))
    classify = estimator.endswith("Classifier")
    model = getattr(ensemble, estimator)(n_estimators=30, min_samples_leaf=2, random_state=0)
    pipe = Pipeline([("features", ColumnTransformer(steps)), ("model", model)])
    train, test = train_test_split(fed.assign(y=frame[target]), test_size=0.25, random_state=0)
    pipe.fit(train[signature.names], train["y"])
    return pipe, signature, test[signature.names], classify


def _run(data: bytes, signature: Signature, rows: pd.DataFrame, output: str) -> np.ndarray:
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    feeds = signature.to_feeds({c: rows[c].tolist() for c in signature.names})
    (result,) = session.run([output], feeds)
    return np.asarray(result)


def _with_skl2onnx(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make tabpipe register skl2onnx's own forest converters instead of the vectorized."""
    monkeypatch.setattr(
        onnx_forest,
        "convert_forest_classifier",
        random_forest.convert_sklearn_random_forest_classifier,
    )
    monkeypatch.setattr(
        onnx_forest,
        "convert_forest_regressor",
        random_forest.convert_sklearn_random_forest_regressor_converter,
    )


def _graph(data: bytes) -> onnx.GraphProto:
    graph = onnx.load_from_string(data).graph
    graph.name = ""  # skl2onnx names each graph anew
    return graph


@pytest.mark.parametrize(("estimator", "dataset"), CASES)
def test_a_converted_forest_predicts_like_scikit_learn(estimator: str, dataset: str) -> None:
    pipe, signature, rows, classify = _fitted(estimator, dataset)
    data = to_onnx(pipe, signature, classifier=classify)
    if classify:
        proba = _run(data, signature, rows, "probabilities")
        assert proba.shape == (len(rows), len(pipe.classes_))
        assert np.max(np.abs(proba - pipe.predict_proba(rows))) <= 1e-5
        labels = _run(data, signature, rows, "label")
        same = labels.astype(str) == pipe.predict(rows).astype(str)
        assert same.mean() >= 0.99  # a tie between two classes may break either way
    else:
        native = pipe.predict(rows)
        converted = _run(data, signature, rows, "variable").reshape(-1)
        assert np.max(np.abs(converted - native) / np.abs(native)) <= 1e-5


@pytest.mark.parametrize(("estimator", "dataset"), CASES)
def test_the_graph_is_the_one_skl2onnx_builds(
    monkeypatch: pytest.MonkeyPatch, estimator: str, dataset: str
) -> None:
    pipe, signature, _, classify = _fitted(estimator, dataset)
    ours = _graph(to_onnx(pipe, signature, classifier=classify))
    with monkeypatch.context() as patch:
        _with_skl2onnx(patch)
        theirs = _graph(to_onnx(pipe, signature, classifier=classify))
    (tree,) = [n for n in ours.node if n.op_type.startswith("TreeEnsemble")]
    assert len(tree.attribute) >= 14
    assert ours == theirs  # every node, attribute for attribute


def test_float32_thresholds_round_down() -> None:
    doubles = np.array([0.1, 0.30000002682209015, -2.5e-8, -7.0, 1.5, 3.0e38])
    down = onnx_forest.float32_thresholds(doubles)
    assert down.dtype == np.float32
    assert np.all(down.astype(np.float64) <= doubles)
    above = np.nextafter(down, np.float32(np.inf)).astype(np.float64)
    assert np.all(above > doubles)


def _convert_direct(model: Any, n_features: int, options: Any = None) -> onnx.GraphProto:
    onnx_forest.register()
    converted = convert_sklearn(
        model,
        initial_types=[("x", FloatTensorType([None, n_features]))],
        options=options,
        target_opset=TARGET_OPSET,
    )
    converted.graph.name = ""
    return converted.graph


def _direct_with_skl2onnx(model: Any, n_features: int, options: Any = None) -> onnx.GraphProto:
    from skl2onnx import update_registered_converter
    from skl2onnx.shape_calculators.ensemble_shapes import (
        calculate_tree_classifier_output_shapes,
        calculate_tree_regressor_output_shapes,
    )

    classify = isinstance(model, ensemble.RandomForestClassifier)
    update_registered_converter(
        type(model),
        f"Sklearn{type(model).__name__}",
        calculate_tree_classifier_output_shapes
        if classify
        else calculate_tree_regressor_output_shapes,
        random_forest.convert_sklearn_random_forest_classifier
        if classify
        else random_forest.convert_sklearn_random_forest_regressor_converter,
        options=onnx_forest.CLASSIFIER_OPTIONS if classify else onnx_forest.REGRESSOR_OPTIONS,
    )
    try:
        converted = convert_sklearn(
            model,
            initial_types=[("x", FloatTensorType([None, n_features]))],
            options=options,
            target_opset=TARGET_OPSET,
        )
    finally:
        onnx_forest.register()
    converted.graph.name = ""
    return converted.graph


def test_outside_tabpipe_the_converter_attaches_attributes_at_once_and_honours_nocl() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3)).astype(np.float32)
    y = np.where(x[:, 0] > 0, "yes", "no")
    model = ensemble.RandomForestClassifier(n_estimators=5, random_state=0).fit(x, y)
    options = {id(model): {"zipmap": False, "nocl": True}}
    ours = _convert_direct(model, 3, options)
    assert ours == _direct_with_skl2onnx(model, 3, options)
    (tree,) = [n for n in ours.node if n.op_type == "TreeEnsembleClassifier"]
    labels = [a for a in tree.attribute if a.name == "classlabels_int64s"]
    assert list(labels[0].ints) == [0, 1]


def test_a_multi_output_forest_goes_to_skl2onnx() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3)).astype(np.float32)
    y = np.column_stack([x[:, 0] * 2, x[:, 1] - x[:, 2]])
    model = ensemble.RandomForestRegressor(n_estimators=5, random_state=0).fit(x, y)
    ours = _convert_direct(model, 3)
    assert ours == _direct_with_skl2onnx(model, 3)
    (tree,) = [n for n in ours.node if n.op_type == "TreeEnsembleRegressor"]
    assert [a.i for a in tree.attribute if a.name == "n_targets"] == [2]
