"""Serve a trained model with the real server and check both protocols against batch scoring."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from support import DATA, start, train
from tabpipe import api
from tabpipe.packaging.export import export
from tabpipe.packaging.mlflow_pyfunc import TabpipeOnnxModel
from tabpipe.registry import Registry
from tabpipe.serving.app import ServeSettings, create_app
from tabpipe.workspace import Workspace

TABPIPE = str(Path(sys.executable).parent / "tabpipe")


@pytest.fixture(scope="module")
def titanic_server(titanic_ws: Path) -> Iterator[str]:
    """`tabpipe serve titanic` as a real uvicorn process on a free loopback port."""
    proc, url = start(["serve", "titanic", "-w", str(titanic_ws)])
    yield url
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def scored(titanic_ws: Path, tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """`tabpipe predict` output for the first 20 rows."""
    folder = tmp_path_factory.mktemp("scored")
    pd.read_csv(DATA / "titanic.csv").head(20).to_csv(folder / "rows.csv", index=False)
    subprocess.run(
        [
            TABPIPE,
            "predict",
            "titanic",
            str(folder / "rows.csv"),
            "-o",
            str(folder / "scored.csv"),
            "-w",
            str(titanic_ws),
        ],
        check=True,
    )
    return pd.read_csv(folder / "scored.csv")


def rows() -> pd.DataFrame:
    return pd.read_csv(DATA / "titanic.csv").head(20)


def records(frame: pd.DataFrame) -> list[dict[str, object]]:
    return json.loads(frame.to_json(orient="records"))


def test_health_and_metadata(titanic_server: str) -> None:
    assert httpx.get(f"{titanic_server}/v2/health/live").json() == {"live": True}
    meta = httpx.get(f"{titanic_server}/v2/models/titanic").json()
    names = [i["name"] for i in meta["inputs"]]
    assert "Sex" in names and "Age" in names and "PassengerId" not in names
    assert meta["parameters"]["classes"] == [0, 1]


def test_open_inference_protocol_matches_batch_scoring(
    titanic_server: str, scored: pd.DataFrame
) -> None:
    frame = rows()
    body = {
        "inputs": [
            {
                "name": c,
                "shape": [len(frame)],
                "datatype": "BYTES" if frame[c].dtype == object else "FP64",
                "data": json.loads(frame[c].to_json(orient="values")),
            }
            for c in frame.columns
        ],
        "parameters": {"content_type": "pd"},
    }
    response = httpx.post(f"{titanic_server}/v2/models/titanic/infer", json=body)
    assert response.status_code == 200, response.text
    outputs = {o["name"]: o["data"] for o in response.json()["outputs"]}
    assert outputs["prediction"] == scored["prediction"].tolist()
    np.testing.assert_allclose(outputs["proba_1"], scored["proba_1"], rtol=0, atol=1e-6)


@pytest.mark.parametrize("fmt", ["dataframe_split", "dataframe_records", "instances", "inputs"])
def test_mlflow_formats_match_batch_scoring(
    titanic_server: str, scored: pd.DataFrame, fmt: str
) -> None:
    frame = rows()
    if fmt == "dataframe_split":
        body: object = {fmt: json.loads(frame.to_json(orient="split", index=False))}
    elif fmt == "inputs":
        body = {fmt: {c: json.loads(frame[c].to_json(orient="values")) for c in frame.columns}}
    else:
        body = {fmt: records(frame)}
    response = httpx.post(f"{titanic_server}/invocations", json=body)
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert [p["prediction"] for p in predictions] == scored["prediction"].tolist()
    np.testing.assert_allclose([p["proba_1"] for p in predictions], scored["proba_1"], atol=1e-6)


def test_mlflow_csv_body(titanic_server: str, scored: pd.DataFrame) -> None:
    buffer = io.StringIO()
    rows().to_csv(buffer, index=False)
    response = httpx.post(
        f"{titanic_server}/invocations",
        content=buffer.getvalue(),
        headers={"content-type": "text/csv"},
    )
    assert response.status_code == 200, response.text
    assert [p["prediction"] for p in response.json()["predictions"]] == scored[
        "prediction"
    ].tolist()


def test_in_process_bundle_matches(titanic_ws: Path, scored: pd.DataFrame) -> None:
    with Workspace(titanic_ws) as ws:
        bundle = Registry(ws).resolve("titanic").path
    for runtime in ("onnx", "native"):
        local = api.score(rows(), bundle, runtime)  # type: ignore[arg-type]
        assert local["prediction"].tolist() == scored["prediction"].tolist()
        np.testing.assert_allclose(local["proba_1"], scored["proba_1"], atol=1e-5)


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"inputs": [{"name": "Age", "shape": [1], "datatype": "FP32", "data": [3]}]}, 400, "Sex"),
        ({"inputs": "nope"}, 400, "inputs"),
        ({"wrong": 1}, 400, "inputs"),
    ],
)
def test_bad_oip_requests_get_4xx(
    titanic_server: str, body: object, status: int, needle: str
) -> None:
    response = httpx.post(f"{titanic_server}/v2/models/titanic/infer", json=body)
    assert response.status_code == status
    assert needle in response.json()["error"]


def test_wrong_type_names_the_column(titanic_server: str) -> None:
    record = records(rows().head(1))[0]
    record["Age"] = "very old"
    response = httpx.post(f"{titanic_server}/invocations", json={"dataframe_records": [record]})
    assert response.status_code == 400
    assert response.json()["field"] == "Age"
    assert "very old" in response.json()["message"]


def test_malformed_json_is_a_400(titanic_server: str) -> None:
    response = httpx.post(
        f"{titanic_server}/invocations",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["message"]


def test_unknown_model_is_a_404(titanic_server: str) -> None:
    response = httpx.post(f"{titanic_server}/v2/models/other/infer", json={"inputs": []})
    assert response.status_code == 404


def test_regression_served_in_process(ames_ws: Path) -> None:
    frame = pd.read_csv(DATA / "ames.csv").head(5)
    with Workspace(ames_ws) as ws:
        bundle = Registry(ws).resolve("ames").path
    expected = api.score(frame, bundle)["prediction"].tolist()
    settings = ServeSettings(workspace=ames_ws, model="ames")
    with TestClient(create_app(settings)) as client:
        response = client.post("/invocations", json={"dataframe_records": records(frame)})
        assert response.status_code == 200, response.text
        got = [p["prediction"] for p in response.json()["predictions"]]
        np.testing.assert_allclose(got, expected, rtol=1e-6)
        meta = client.get("/v2/models/ames").json()
        assert meta["parameters"]["task"] == "regression"


@pytest.mark.slow
def test_a_date_column_travels_from_training_to_a_served_row(tmp_path: Path) -> None:
    """Bike rentals by day: `dteday` is a feature, the bundle passes ONNX parity, and a
    request row with the date as text gets the same prediction from ONNX, the native
    pipeline and the server."""
    frame = pd.read_csv(DATA / "bike_sharing_day.csv").drop(
        columns=["instant", "casual", "registered", "yr"]
    )
    source = tmp_path / "bikes.csv"
    frame.to_csv(source, index=False)
    train(tmp_path, source, "cnt", name="bikes", models=["lightgbm", "linear"], max_trials=6)
    with Workspace(tmp_path) as ws:
        bundle = Registry(ws).resolve("bikes").path
    manifest = json.loads((bundle / "manifest.json").read_text())
    (date,) = [c for c in manifest["signature"]["columns"] if c["name"] == "dteday"]
    assert date["kind"] == "datetime"
    assert manifest["parity"]["max_difference"] <= 1e-4
    row = frame.drop(columns=["cnt"]).iloc[[400]].assign(dteday="2012-12-31")
    earlier = row.assign(dteday="2011-01-03")
    onnx_out = api.score(pd.concat([row, earlier]), bundle)["prediction"].tolist()
    native = api.score(pd.concat([row, earlier]), bundle, "native")["prediction"].tolist()
    np.testing.assert_allclose(onnx_out, native, rtol=1e-4)
    assert onnx_out[0] != onnx_out[1]  # the date alone moves the prediction
    with TestClient(create_app(ServeSettings(workspace=tmp_path, model="bikes"))) as client:
        response = client.post("/invocations", json={"dataframe_records": records(row)})
        assert response.status_code == 200, response.text
        got = response.json()["predictions"][0]["prediction"]
        assert got == pytest.approx(onnx_out[0], rel=1e-6)
        bad = client.post(
            "/invocations", json={"dataframe_records": records(row.assign(dteday="soon"))}
        )
        assert bad.status_code == 400 and bad.json()["field"] == "dteday"
    # the MLflow export's loader (ONNX, no tabpipe) reads the date text the same way
    out = export(bundle, tmp_path / "mlflow", "mlflow")
    mlflow_out = TabpipeOnnxModel(str(out / "data")).predict(pd.concat([row, earlier]))
    np.testing.assert_allclose(mlflow_out["prediction"], onnx_out, rtol=1e-6)
