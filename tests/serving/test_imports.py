"""The serving path needs neither scikit-learn nor the training libraries."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HEAVY = ("sklearn", "lightgbm", "xgboost", "catboost", "skl2onnx", "onnxmltools", "skops", "optuna")
FIXTURE = Path(__file__).parents[1] / "packaging" / "fixtures" / "bundle_v1"


def loaded_modules(code: str) -> set[str]:
    probe = code + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    return {m.split(".")[0] for m in json.loads(out.strip().splitlines()[-1])}


def test_importing_the_app_loads_no_training_library() -> None:
    modules = loaded_modules("import tabpipe.serving.app")
    assert not modules & set(HEAVY)
    assert "pandas" not in modules


def test_serving_a_bundle_with_onnx_loads_no_training_library() -> None:
    code = f"""
from fastapi.testclient import TestClient
from tabpipe.serving.app import create_app
from tabpipe.serving.settings import ServeSettings
import time
app = create_app(ServeSettings(model="titanic_v1", bundle={str(FIXTURE)!r}))
with TestClient(app) as c:
    while c.get("/v2/health/ready").status_code != 200:
        time.sleep(0.01)
    row = {{"Pclass": 1, "Age": 30, "SibSp": 0, "Parch": 0, "Fare": 80, "Sex": "female",
            "Embarked": "C"}}
    r = c.post("/v1/models/titanic_v1/predict", json=[row])
    assert r.status_code == 200, r.text
"""
    modules = loaded_modules(code)
    assert not modules & set(HEAVY), modules & set(HEAVY)
