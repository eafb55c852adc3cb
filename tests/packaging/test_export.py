"""Exports of a bundle: ONNX, MLflow pyfunc (loaded by MLflow itself), Docker context, PMML, card."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from tabpipe.errors import PackagingError
from tabpipe.packaging import bundle
from tabpipe.packaging.export import export, locked_requirements
from tabpipe.serving.runtime import load_predictor

FIXTURE = Path(__file__).parent / "fixtures" / "bundle_v1"
MLFLOW_PY = Path.home() / ".cache" / "tabpipe-peers" / "mlflow" / "bin" / "python"
ROWS = {
    "Pclass": [3, 1, 2],
    "Age": [22.0, None, 40.0],
    "SibSp": [1, 0, 0],
    "Parch": [0, 0, 2],
    "Fare": [7.25, 80.0, 20.0],
    "Sex": ["male", "female", "female"],
    "Embarked": ["S", "C", None],
}


def tabpipe_proba(rows: dict[str, list[object]]) -> np.ndarray:
    predictor = load_predictor(FIXTURE)
    prediction = predictor.predict(predictor.manifest.signature.to_feeds(rows))
    assert prediction.proba is not None
    return prediction.proba


def test_onnx_export_runs_alone(tmp_path: Path) -> None:
    out = export(FIXTURE, tmp_path / "onnx", "onnx")
    doc = json.loads((out / "signature.json").read_text())
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    feeds = {
        onnx_name: (
            np.array(ROWS[c["name"]], dtype=np.float32)
            if c["kind"] == "numeric"
            else np.array([v or "" for v in ROWS[c["name"]]], dtype=object)
        ).reshape(-1, 1)
        for onnx_name, c in zip(doc["onnx_inputs"], doc["columns"], strict=True)
    }
    (proba,) = session.run([doc["onnx_output"]], feeds)
    assert np.allclose(proba, tabpipe_proba(ROWS), atol=1e-6)


def test_export_refuses_a_non_empty_folder_and_unknown_formats(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep").write_text("mine")
    with pytest.raises(PackagingError, match="not empty"):
        export(FIXTURE, tmp_path / "x", "onnx")
    with pytest.raises(PackagingError, match="valid: onnx, mlflow, docker, pmml, card"):
        export(FIXTURE, tmp_path / "y", "zip")
    assert not (tmp_path / "y").exists()


@pytest.mark.skipif(not MLFLOW_PY.exists(), reason=f"MLflow venv missing at {MLFLOW_PY}")
@pytest.mark.slow
def test_mlflow_pyfunc_loads_with_mlflow_and_matches(tmp_path: Path) -> None:
    out = export(FIXTURE, tmp_path / "mlflow", "mlflow")
    script = f"""
import json, sys
import mlflow.pyfunc, pandas as pd
model = mlflow.pyfunc.load_model({str(out)!r})
schema = [c.name for c in model.metadata.get_input_schema().inputs]
example = pd.DataFrame(**json.load(open({str(out / "input_example.json")!r})))
model.predict(example)
rows = pd.DataFrame(json.loads(sys.argv[1]))
# MLflow's schema says double and it refuses int64 -> float64 as unsafe: send floats
rows[["Pclass", "Fare"]] = rows[["Pclass", "Fare"]].astype("float64")
result = model.predict(rows)
print(json.dumps({{"schema": schema, "proba": result["proba_1"].tolist(),
                   "prediction": result["prediction"].tolist()}}))
"""
    done = subprocess.run(
        [str(MLFLOW_PY), "-c", script, json.dumps(ROWS)],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "MLFLOW_TRACKING_URI": f"file://{tmp_path / 'runs'}"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["schema"] == bundle.read_manifest(FIXTURE).signature.names
    assert np.allclose(result["proba"], tabpipe_proba(ROWS)[:, 1], atol=1e-6)
    assert "pkl" not in " ".join(p.name for p in out.rglob("*"))


def test_docker_context_content(tmp_path: Path) -> None:
    out = export(FIXTURE, tmp_path / "docker", "docker")
    dockerfile = (out / "Dockerfile").read_text()
    assert re.search(
        rf"^FROM python:{sys.version_info.major}\.{sys.version_info.minor}-slim$", dockerfile, re.M
    )
    assert "pip install --no-deps -r requirements.lock" in dockerfile
    assert "tabpipe.serving.server" in dockerfile and "TABPIPE_WORKERS=1" in dockerfile
    assert "USER tabpipe" in dockerfile
    settings = json.loads(re.search(r"TABPIPE_SERVE_SETTINGS='(.*)'", dockerfile).group(1))  # type: ignore[union-attr]
    assert settings["bundle"] == "/srv/bundle"
    lock = (out / "requirements.lock").read_text().splitlines()
    pins = dict(line.split("==") for line in lock if "==" in line)
    import onnxruntime

    assert pins["onnxruntime"] == onnxruntime.__version__
    assert {"fastapi", "uvicorn", "numpy", "pydantic", "prometheus-client", "jinja2"} <= set(pins)
    assert not {"scikit-learn", "lightgbm", "pandas", "skops"} & set(pins)
    # the copied bundle still verifies, and the copied code is tabpipe's serving package
    assert bundle.read_manifest(out / "bundle").name == "titanic_v1"
    assert (out / "tabpipe" / "serving" / "app.py").exists()


def test_locked_requirements_follow_extras() -> None:
    pins = {p.split("==")[0] for p in locked_requirements(("uvicorn[standard]",))}
    assert {"uvicorn", "h11", "httptools", "uvloop"} <= pins


def test_model_card(tmp_path: Path) -> None:
    out = export(FIXTURE, tmp_path / "card", "card")
    text = (out / "model_card.md").read_text()
    for heading in (
        "Intended use",
        "Data lineage",
        "Cleaning ledger",
        "Metrics",
        "Feature importance",
        "Limitations",
    ):
        assert f"## {heading}" in text
    importance = re.findall(r"^- (\w+): (0\.\d+)$", text.split("## Feature importance")[1], re.M)
    assert {n for n, _ in importance} <= set(ROWS)
    assert sum(float(v) for _, v in importance) == pytest.approx(1.0, abs=0.01)
    page = (out / "model_card.html").read_text()
    assert "Plotly.newPlot" in page and "Feature importance" in page
    assert "cdn.plot.ly" not in page.split("<script")[1][:200]
