"""Calibration and the decision threshold: one label rule for native, ONNX, server and batch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd
from fastapi.testclient import TestClient

from serving.conftest import DATA, wait_ready
from tabpipe import api
from tabpipe.features.impute import NeighbourImputer
from tabpipe.packaging.export import export
from tabpipe.packaging.mlflow_pyfunc import TabpipeOnnxModel
from tabpipe.registry import Registry
from tabpipe.serving.app import create_app
from tabpipe.serving.runtime import load_predictor
from tabpipe.serving.settings import ServeSettings
from tabpipe.workspace import Workspace

NAME = "titanic_decided"


def _bundle(root: Path) -> Path:
    with Workspace(root) as ws:
        return Registry(ws).resolve(NAME).path


def _columns(frame: pd.DataFrame, names: list[str]) -> dict[str, list[object]]:
    return {c: frame[c].tolist() for c in names}


def test_the_cost_threshold_is_applied_alike_by_every_runtime(
    decided_workspace: Path, tmp_path: Path
) -> None:
    folder = _bundle(decided_workspace)
    onnx_model = load_predictor(folder, "onnx")
    native = load_predictor(folder, "native")
    manifest = onnx_model.manifest
    assert manifest.calibration == "sigmoid"
    # Age's missing values are imputed by the nearest-neighbours step of the model itself
    pipeline = native._pipeline.estimator_  # type: ignore[attr-defined]
    knn = pipeline.named_steps["features"].named_transformers_["knn"]
    assert isinstance(knn, NeighbourImputer)
    # false negatives cost five times more: the cut on P(survived) is well below 0.5
    assert manifest.threshold is not None and 0.05 < manifest.threshold < 0.5
    frame = pd.read_csv(DATA / "titanic.csv")
    feeds = manifest.signature.to_feeds(_columns(frame, manifest.signature.names))
    a, b = onnx_model.predict(feeds), native.predict(feeds)
    assert a.proba is not None and b.proba is not None
    assert np.max(np.abs(a.proba - b.proba)) < 1e-4
    expected = np.where(a.proba[:, 1] >= manifest.threshold, 1, 0)
    assert a.values == b.values == expected.tolist()
    # the threshold changes labels: more rows are called survivors than by argmax
    assert sum(a.values) > int((a.proba.argmax(axis=1) == 1).sum())
    # the ONNX graph's own label output follows the same rule (for ONNX-only consumers)
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    inputs = {
        i.name: feeds[c]
        for i, c in zip(session.get_inputs(), manifest.signature.names, strict=True)
    }
    (label,) = session.run(["label"], inputs)
    assert label.reshape(-1).tolist() == expected.tolist()
    # the server and batch scoring (`tabpipe predict`) agree row by row
    settings = ServeSettings(model=NAME, bundle=folder)
    with TestClient(create_app(settings)) as client:
        wait_ready(client)
        rows = frame[manifest.signature.names].iloc[:60]
        body = rows.astype(object).where(rows.notna(), None).to_dict(orient="records")
        r = client.post(f"/v1/models/{NAME}/predict", json=body)
        assert r.status_code == 200, r.text
        served = [p["prediction"] for p in r.json()["predictions"]]
    assert served == expected[:60].tolist()
    with Workspace(decided_workspace) as ws:
        scored = api.predict_file(ws, NAME, DATA / "titanic.csv", tmp_path / "scored.csv")
    assert scored["prediction"].tolist() == expected.tolist()
    # the MLflow export's loader labels rows by the graph's thresholded label
    out = export(folder, tmp_path / "mlflow", "mlflow")
    pyfunc = TabpipeOnnxModel(str(out / "data"))
    assert pyfunc.predict(frame)["prediction"].tolist() == expected.tolist()
