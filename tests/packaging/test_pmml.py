"""PMML export: trained pipelines converted by sklearn2pmml, scored by jpmml-evaluator.

These tests need the ``pmml`` extra, a Java runtime and a scikit-learn version the
installed sklearn2pmml converts (sklearn2pmml 0.133 stops at scikit-learn 1.9.0); the
``converter`` fixture converts a tiny model first and skips with the converter's own
reason when one of those is missing.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from support import DATA, TITANIC_ROW, train
from tabpipe.cli import app
from tabpipe.errors import PackagingError
from tabpipe.packaging.bundle import read_manifest
from tabpipe.packaging.export import export, export_registered
from tabpipe.packaging.pmml import PMML_TOLERANCE, edge_rows
from tabpipe.serving.runtime import load_predictor
from tabpipe.workspace import Workspace

FIXTURE = Path(__file__).parent / "fixtures" / "bundle_v1"


@pytest.fixture(scope="module")
def converter(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Skip unless sklearn2pmml converts a plain model here and jpmml-evaluator reads it."""
    pytest.importorskip("sklearn2pmml", reason="PMML export needs the 'pmml' extra")
    pytest.importorskip("jpmml_evaluator", reason="PMML export needs the 'pmml' extra")
    if shutil.which("java") is None:
        pytest.skip("PMML export needs a Java runtime (java not on PATH)")
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn2pmml import sklearn2pmml
    from sklearn2pmml.pipeline import PMMLPipeline

    x = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0]})
    y = pd.Series([0, 0, 1, 1], name="y")
    path = tmp_path_factory.mktemp("probe") / "probe.pmml"
    import contextlib
    import io

    captured = io.StringIO()
    try:
        with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
            sklearn2pmml(PMMLPipeline([("m", LogisticRegression())]).fit(x, y), str(path))
    except RuntimeError:
        reason = [line for line in captured.getvalue().splitlines() if "Exception:" in line]
        pytest.skip(f"sklearn2pmml cannot convert here: {(reason or ['unknown'])[0].strip()}")


def pmml_scores(path: Path, rows: dict[str, list[Any]]) -> np.ndarray:
    """Score ``rows`` with jpmml-evaluator alone: class probabilities in the file's class
    order (the pipeline's), or the predicted value."""
    import pandas as pd
    from jpmml_evaluator import make_evaluator

    evaluator = make_evaluator(str(path)).verify()
    names = [f.getName() for f in evaluator.getOutputFields()]
    outputs = [n for n in names if n.startswith("probability(")]
    if not outputs:
        outputs = [f.getName() for f in evaluator.getTargetFields()]
    scored = evaluator.evaluateAll(pd.DataFrame(rows, dtype=object))
    return np.asarray(scored[outputs], dtype=np.float64)


def native_scores(bundle: Path, rows: dict[str, list[Any]]) -> np.ndarray:
    predictor = load_predictor(bundle, runtime="native")
    prediction = predictor.predict(predictor.manifest.signature.to_feeds(rows))
    if prediction.proba is not None:
        return np.asarray(prediction.proba, dtype=np.float64)
    return np.asarray(prediction.values, dtype=np.float64).reshape(-1, 1)


def test_the_fixture_bundle_exports_and_scores_alike(converter: None, tmp_path: Path) -> None:
    out = export(FIXTURE, tmp_path / "pmml", "pmml")
    assert (out / "model.pmml").read_text()[:300].count("<PMML") == 1
    check = json.loads((out / "pmml_parity.json").read_text())
    manifest = read_manifest(FIXTURE)
    assert check["rows"] == len(edge_rows(manifest)["Sex"])
    assert check["max_difference"] <= PMML_TOLERANCE
    rows = {c: [TITANIC_ROW.get(c)] for c in manifest.signature.names}
    rows["Embarked"] = [None]  # a missing category, sent to PMML as a missing value
    proba = pmml_scores(out / "model.pmml", rows)
    assert np.allclose(proba, native_scores(FIXTURE, rows), atol=1e-6)


CASES = {
    # binary, LightGBM ensemble: one-hot encoding, ordinal codes, missing numbers
    "titanic": ("titanic.csv", "Survived", {"models": ["lightgbm"]}),
    # binary, linear + XGBoost ensemble: Yeo-Johnson, scaling, missing indicators,
    # rare-category grouping, target and frequency encoding, pairwise products
    "adult": ("adult_census.csv", "income", {"models": ["linear", "xgboost"]}),
    # multiclass: scikit-learn trees on imputed numbers and ordinal codes
    "penguins": ("penguins.csv", "species", {"models": ["random_forest", "extra_trees"]}),
    # regression with a date column (calendar parts, cycles, elapsed days) and LightGBM
    "bike": ("bike_day.csv", "cnt", {"models": ["lightgbm"]}),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_a_trained_model_exports_to_pmml_that_scores_like_the_native_pipeline(
    converter: None, tmp_path: Path, case: str
) -> None:
    data, target, spec = CASES[case]
    extra = {"features": {"interactions": 3}} if case == "adult" else {}
    summary = train(
        tmp_path / "ws",
        DATA / data,
        target,
        max_trials=4,
        calibration="none",
        **spec,
        **extra,
    )
    out = tmp_path / "pmml"
    result = CliRunner().invoke(
        app,
        ["export", summary.name, "--format", "pmml", "-o", str(out), "-w", str(tmp_path / "ws")],
    )
    output = result.output + (result.stderr if result.stderr_bytes else "")
    assert result.exit_code == 0, output
    manifest = read_manifest(summary.version.path)
    check = json.loads((out / "pmml_parity.json").read_text())
    version = check["evaluator"].split()[-1]
    assert f"checked with jpmml_evaluator {version} on {check['rows']} rows" in output
    # the run's test split was scored as well as the edge rows
    assert check["rows"] > len(edge_rows(manifest)[manifest.signature.names[0]])
    assert check["max_difference"] <= PMML_TOLERANCE
    assert check["evaluator"].startswith("jpmml_evaluator")
    # and independently of the export's own check, on the edge rows
    rows = edge_rows(manifest)
    fed = manifest.signature.to_feeds(rows)
    sent = {  # what a PMML consumer sends: cleaned values, a missing value as missing
        c.name: [
            None
            if (c.kind == "categorical" and v == "") or (c.kind != "categorical" and np.isnan(v))
            else v
            for v in fed[c.name].reshape(-1).tolist()
        ]
        for c in manifest.signature.columns
    }
    assert np.allclose(
        pmml_scores(out / "model.pmml", sent),
        native_scores(summary.version.path, rows),
        atol=PMML_TOLERANCE,
    )


REFUSED = {
    "catboost": (
        "titanic.csv",
        "Survived",
        {"models": ["catboost"]},
        r"'catboost'.*no CatBoost converter",
    ),
    "knn": (
        "penguins.csv",
        "species",
        {"models": ["knn"]},
        r"'knn'.*majority class, not class probabilities",
    ),
    "threshold": (
        "titanic.csv",
        "Survived",
        {"models": ["linear"], "threshold": {"objective": "f1"}},
        r"the decision threshold 0\.\d+ would be lost in PMML",
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(REFUSED))
def test_what_pmml_cannot_express_is_refused_by_name(
    converter: None, tmp_path: Path, case: str
) -> None:
    data, target, spec, message = REFUSED[case]
    summary = train(
        tmp_path / "ws",
        DATA / data,
        target,
        max_trials=2,
        calibration="none",
        selection={"ensemble": False},
        **spec,
    )
    with (
        Workspace(tmp_path / "ws") as ws,
        pytest.raises(PackagingError, match=message + r".*Use the ONNX or MLflow export"),
    ):
        export_registered(ws, summary.name, "pmml", tmp_path / "pmml")
    assert not (tmp_path / "pmml").exists()
    assert not list(tmp_path.glob(".pmml*"))
