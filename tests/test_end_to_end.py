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

from support import DATA, start
from tabpipe import api
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
