"""Model-based (nearest-neighbours) imputation: planned by cleaning, fitted in the pipeline,
replayed at serving and in ONNX; on the automobile data with its '?' markers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from tabpipe.config import CleaningSpec, ColumnDeclaration, build_spec
from tabpipe.data.cleaning import clean
from tabpipe.errors import ConfigError
from tabpipe.features.builder import plan_features
from tabpipe.features.encoders import MissingIndicator
from tabpipe.features.impute import NeighbourImputer
from tabpipe.modeling.train import train_candidates
from tabpipe.packaging import persist
from tabpipe.packaging.build import signature_of
from tabpipe.packaging.onnx import parity, to_onnx
from tabpipe.packaging.signature import ColumnSpec, Signature

DATA = Path(__file__).parents[1] / "data"


@parametrize_with_checks([NeighbourImputer(), NeighbourImputer(columns=[0], n_neighbors=2)])
def test_sklearn_conformance(estimator: NeighbourImputer, check: Any) -> None:
    check(estimator)


def test_neighbour_imputer_fills_marked_columns_from_the_nearest_rows() -> None:
    x = np.array(
        [[1.0, 10.0, 0.0], [1.1, 11.0, 5.0], [5.0, 50.0, 9.0], [5.2, np.nan, np.nan]],
        dtype=np.float32,
    )
    imputer = NeighbourImputer(columns=[1, 2], n_neighbors=1).fit(x[:3])
    out = imputer.transform(x)
    assert out.shape == (4, 2)
    assert out[3].tolist() == [50.0, 9.0]  # the row nearest on column 0
    assert imputer.get_feature_names_out(["a", "b", "c"]).tolist() == ["b", "c"]


def test_tied_donors_impute_the_same_in_onnx() -> None:
    """Titanic's numeric rows repeat a lot, so donors tie on distance; ties go to the
    earlier training row on both sides (scikit-learn's KNNImputer differs from its ONNX
    form on 14 of these 32 rows)."""
    raw = pd.read_csv(DATA / "titanic.csv")
    x = raw[["Pclass", "Age", "SibSp", "Parch", "Fare"]].to_numpy(np.float32)
    imputer = NeighbourImputer(columns=[1]).fit(x[:700])
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    from tabpipe.features.impute import register
    from tabpipe.packaging.onnx import TARGET_OPSET

    register()
    graph = convert_sklearn(
        imputer, initial_types=[("x", FloatTensorType([None, 5]))], target_opset=TARGET_OPSET
    )
    import onnxruntime as ort

    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    (converted,) = session.run(None, {"x": x[700:]})
    assert np.isnan(x[700:, 1]).sum() == 32
    assert np.array_equal(converted, imputer.transform(x[700:]))


def test_pipeline_with_neighbours_and_indicators_converts_to_onnx() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(300, 3)), columns=["a", "b", "c"]).astype(np.float32)
    frame.loc[rng.uniform(size=300) < 0.2, "b"] = np.nan
    y = (frame["a"] + frame["c"] > 0).astype(int)
    from sklearn.linear_model import LogisticRegression

    pre = ColumnTransformer(
        [
            ("knn", NeighbourImputer(columns=[1]), ["a", "b", "c"]),
            ("numeric", "passthrough", ["a", "c"]),
            ("missing", MissingIndicator(), ["b"]),
        ]
    )
    model = Pipeline([("features", pre), ("model", LogisticRegression())]).fit(frame, y)
    signature = Signature(columns=[ColumnSpec(name=c, kind="numeric") for c in "abc"])
    import onnxruntime as ort

    session = ort.InferenceSession(
        to_onnx(model, signature, classifier=True), providers=["CPUExecutionProvider"]
    )
    feeds = {c: frame[c].to_numpy().reshape(-1, 1) for c in "abc"}
    (proba,) = session.run(["probabilities"], feeds)
    assert parity(model.predict_proba(frame), proba) < 1e-4
    restored = persist.loads(persist.dumps(model))
    assert np.allclose(restored.predict_proba(frame), model.predict_proba(frame))


def test_knn_policy_and_column_override_on_the_automobile_data() -> None:
    raw = pd.read_csv(DATA / "automobile.csv")
    spec = CleaningSpec(impute_numeric="knn")
    cleaned, _, report = clean(
        raw, "price", "auto", spec, {"bore": ColumnDeclaration(impute="median")}
    )
    plan = plan_features(report)
    # '?' markers became missing values; knn is planned for them except the override
    assert {"normalized-losses", "horsepower", "peak-rpm", "stroke"} <= set(plan.knn_impute)
    assert "bore" not in plan.knn_impute
    knn = {e.column: e for e in report.actions if e.action == "impute_knn"}
    assert knn["normalized-losses"].rows == 37 and "nearest" in knn["normalized-losses"].detail
    assert any(e.column == "bore" and "median" in e.detail for e in report.actions)
    assert cleaned["normalized-losses"].isna().sum() == 37  # imputed in the pipeline, not here
    full = build_spec(
        {
            "source": {"path": str(DATA / "automobile.csv")},
            "target": "price",
            "models": ["linear", "random_forest"],
            "max_trials": 2,
            "split": {"folds": 2},
            "selection": {"ensemble": False},
        }
    )
    train = cleaned.iloc[:150]
    models, _, _ = train_candidates(train, plan, report, full)
    signature = signature_of(report, plan)
    # a serving request: raw values with their '?' markers, through the signature's rules
    rows = raw[raw["price"] != "?"].iloc[150:][signature.names]
    feeds = signature.to_feeds({c: rows[c].tolist() for c in signature.names})
    assert np.isnan(feeds["normalized-losses"]).sum() > 0
    frame = pd.DataFrame({k: v.reshape(-1) for k, v in feeds.items()})
    import onnxruntime as ort

    for name, model in models.items():
        step = model.named_steps["features"].named_transformers_["knn"]
        assert isinstance(getattr(step, "steps", [[None, step]])[0][1], NeighbourImputer)
        session = ort.InferenceSession(
            to_onnx(model, signature, classifier=False), providers=["CPUExecutionProvider"]
        )
        inputs = {
            i.name: feeds[c] for i, c in zip(session.get_inputs(), signature.names, strict=True)
        }
        (converted,) = session.run(["variable"], inputs)
        assert parity(model.predict(frame), converted) < 1e-4, name


def test_knn_is_refused_for_a_categorical_column() -> None:
    raw = pd.read_csv(DATA / "automobile.csv")
    with pytest.raises(ConfigError, match="num-of-doors"):
        clean(raw, "price", "auto", None, {"num-of-doors": ColumnDeclaration(impute="knn")})
    with pytest.raises(ConfigError, match="mode"):
        clean(raw, "price", "auto", None, {"bore": ColumnDeclaration(impute="mode")})
