"""The preprocessing builder: datetimes, free text, power transforms and interactions
through every style, as fitted pipelines and as ONNX graphs fed by the signature."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
from lightgbm import LGBMRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsRegressor
from sklearn.pipeline import Pipeline

from tabpipe.config import ColumnDeclaration, FeaturesSpec
from tabpipe.data.cleaning import clean
from tabpipe.data.dates import epoch_seconds
from tabpipe.features.builder import build_preprocessor, plan_features
from tabpipe.features.frame import FeaturePlan, to_model_frame
from tabpipe.packaging import onnx as tabpipe_onnx
from tabpipe.packaging.build import signature_of
from tabpipe.packaging.signature import ColumnSpec, Signature

DATA = Path(__file__).parents[1] / "data"


@pytest.fixture(scope="module")
def bikes() -> tuple[pd.DataFrame, pd.DataFrame, object]:
    """Daily bike rentals with the date as text; a few dates blanked out."""
    raw = pd.read_csv(DATA / "bike_day.csv").drop(columns=["instant", "casual", "registered"])
    raw = raw.astype({"dteday": object})
    raw.loc[raw.index[5::60], "dteday"] = ""
    cleaned, _, report = clean(raw, "cnt", "regression")
    return raw, cleaned, report


def test_datetime_columns_are_features_with_missing_indicators(bikes):
    _, cleaned, report = bikes
    assert report.column("dteday").role == "feature"
    assert report.column("dteday").kind == "datetime"
    plan = plan_features(report)
    assert plan.datetime == ["dteday"] and "dteday" in plan.with_missing
    assert plan.columns[-1] == "dteday"
    x = to_model_frame(cleaned, plan)
    assert x["dteday"].dtype == np.float64
    assert x["dteday"].iloc[0] == pd.Timestamp("2011-01-01").timestamp()
    pre = build_preprocessor(plan, "linear").fit(x, cleaned["cnt"])
    names = list(pre.get_feature_names_out())
    assert "datetime__dteday_year" in names and "datetime_missing__dteday_missing" in names
    assert "datetime__dteday_hour" not in names  # dates only: no time of day


def _onnx_vs_native(pipeline, plan, report, rows: pd.DataFrame, *, classifier: bool):
    signature = signature_of(report, plan)
    feeds = signature.check({c: rows[c].tolist() for c in signature.names}).feeds
    frame = pd.DataFrame({k: v.reshape(-1) for k, v in feeds.items()})
    native = pipeline.predict_proba(frame) if classifier else pipeline.predict(frame)
    model = tabpipe_onnx.to_onnx(pipeline, signature, classifier=classifier)
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    output = "probabilities" if classifier else "variable"
    (got,) = session.run([output], feeds)
    return tabpipe_onnx.parity(native, got), native


@pytest.mark.parametrize(
    ("style", "model"),
    [
        ("tree_native", LGBMRegressor(n_estimators=60, verbose=-1, random_state=0)),
        ("linear", Ridge()),
        ("knn", KNeighborsRegressor(5)),
    ],
)
def test_bike_pipelines_match_onnx_from_raw_date_strings(bikes, style, model):
    raw, cleaned, report = bikes
    plan = plan_features(report, FeaturesSpec(interactions=3))
    assert len(plan.interactions) == 3
    train, test = cleaned.iloc[:550], raw.iloc[550:]
    pipeline = Pipeline([("features", build_preprocessor(plan, style)), ("model", model)])
    pipeline.fit(to_model_frame(train, plan), train["cnt"])
    # the held-out rows arrive as the user sends them: dates as text, some blank
    difference, native = _onnx_vs_native(pipeline, plan, report, test, classifier=False)
    assert difference <= 1e-4
    assert np.isfinite(native).all()


def test_datetime_improves_a_linear_model_on_a_trend(bikes):
    """2012 rentals are higher than 2011: elapsed days carry the trend without `yr`."""
    _, cleaned, report = bikes
    data = cleaned.drop(columns=["yr"])
    base = plan_features(report)
    without = base.model_copy(update={"numeric": [c for c in base.numeric if c != "yr"]})
    no_date = without.model_copy(update={"datetime": [], "with_missing": []})
    train, test = data.iloc[::2], data.iloc[1::2]
    errors = {}
    for name, plan in (("with", without), ("without", no_date)):
        pipe = Pipeline([("features", build_preprocessor(plan, "linear")), ("model", Ridge())])
        pipe.fit(to_model_frame(train, plan), train["cnt"])
        predicted = pipe.predict(to_model_frame(test, plan))
        errors[name] = float(np.sqrt(np.mean((predicted - test["cnt"]) ** 2)))
    assert errors["with"] < 0.8 * errors["without"]


def test_free_text_is_opt_in_tfidf_with_a_cap_and_onnx_parity():
    raw = pd.read_csv(DATA / "titanic.csv")
    _, _, default = clean(raw, "Survived", "binary")
    assert default.column("Name").role == "excluded"
    cleaned, _, report = clean(
        raw, "Survived", "binary", columns={"Name": ColumnDeclaration(type="text", role="feature")}
    )
    assert report.column("Name").kind == "text" and report.column("Name").role == "feature"
    plan = plan_features(report, FeaturesSpec(text_max_features=40))
    assert plan.text == ["Name"]
    pipeline = Pipeline(
        [("features", build_preprocessor(plan, "linear")), ("model", LogisticRegression())]
    )
    pipeline.fit(to_model_frame(cleaned.iloc[:600], plan), cleaned["Survived"].iloc[:600])
    names = list(pipeline[0].get_feature_names_out())
    words = [n for n in names if n.startswith("text0__")]
    assert len(words) == 40 and "text0__mr" in words and "text0__mrs" in words
    difference, _ = _onnx_vs_native(pipeline, plan, report, raw.iloc[600:], classifier=True)
    assert difference <= 1e-4


def test_power_transform_is_on_for_linear_and_can_be_turned_off(bikes):
    _, _, report = bikes
    plan = plan_features(report)

    def numeric_steps(plan: FeaturePlan) -> list[str]:
        parts = {name: step for name, step, _ in build_preprocessor(plan, "knn").transformers}
        return [name for name, _ in parts["numeric"].steps]

    assert numeric_steps(plan) == ["impute", "power", "scale"]
    off = plan_features(report, FeaturesSpec(power_transform=False))
    assert numeric_steps(off) == ["impute", "scale"]
    assert isinstance(plan, FeaturePlan) and plan_features(report).interactions == []


def test_epoch_seconds_of_a_parsed_column_matches_the_request_path(bikes):
    _, _, report = bikes
    plan = plan_features(report)
    signature = signature_of(report, plan)
    texts = pd.read_csv(DATA / "bike_day.csv")["dteday"].head(50)
    feeds = signature.check(
        {**{c: [None] * 50 for c in signature.names}, "dteday": texts.tolist()}
    ).feeds
    np.testing.assert_array_equal(feeds["dteday"].reshape(-1), epoch_seconds(pd.to_datetime(texts)))


def test_text_tokens_agree_with_onnx_beyond_ascii():
    """Accents, other scripts and a non-breaking space tokenise alike in both runtimes."""
    notes = [
        "Café crème au lait",
        "le CAFÉ noir, très fort",
        "Straße in Köln: 12,5 kg",
        "naïve x-ray(1) über\u00a0alles",
        "日本語 テキスト です",
        "plain ASCII words",
        "",
    ] * 6
    frame = pd.DataFrame({"note": notes, "y": np.arange(len(notes)) % 5})
    plan = FeaturePlan(numeric=[], categorical=[], text=["note"])
    signature = Signature(columns=[ColumnSpec(name="note", kind="text")])
    feeds = signature.check({"note": notes}).feeds
    pipeline = Pipeline([("features", build_preprocessor(plan, "linear")), ("model", Ridge())])
    pipeline.fit(to_model_frame(frame, plan), frame["y"])
    vocabulary = pipeline[0].named_transformers_["text0"].vocabulary_
    assert {"café", "crème", "straße", "köln", "über\u00a0alles", "日本語"} <= set(vocabulary)
    model = tabpipe_onnx.to_onnx(pipeline, signature, classifier=False)
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    (got,) = session.run(["variable"], feeds)
    native = pipeline.predict(pd.DataFrame({"note": feeds["note"].reshape(-1)}))
    assert tabpipe_onnx.parity(native, got) <= 1e-5
