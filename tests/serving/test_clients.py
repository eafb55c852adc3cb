"""Clients the project did not write: Triton's OIP v2 HTTP client, MLflow's scoring client."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

ROWS = {
    "Pclass": [3, 1],
    "Age": [22.0, 38.0],
    "SibSp": [1, 1],
    "Parch": [0, 0],
    "Fare": [7.25, 71.28],
    "Sex": ["male", "female"],
    "Cabin": ["", "C85"],
    "Embarked": ["S", "C"],
}


def inputs(client_rows: dict[str, list[object]]) -> list[triton.InferInput]:
    out = []
    for name, values in client_rows.items():
        if isinstance(values[0], str):
            array = np.array(values, dtype=object).reshape(-1, 1)
            tensor = triton.InferInput(name, list(array.shape), "BYTES")
        else:
            array = np.array(values, dtype=np.float32).reshape(-1, 1)
            tensor = triton.InferInput(name, list(array.shape), "FP32")
        tensor.set_data_from_numpy(array, binary_data=False)
        out.append(tensor)
    return out


def test_triton_client_health_metadata_and_infer(live_server: str) -> None:
    client = triton.InferenceServerClient(live_server.removeprefix("http://"))
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("titanic")
    meta = client.get_model_metadata("titanic")
    assert {i["name"] for i in meta["inputs"]} == set(ROWS)
    outputs = [triton.InferRequestedOutput(n, binary_data=False) for n in ("prediction", "proba_1")]
    result = client.infer("titanic", inputs(ROWS), outputs=outputs)
    proba = result.as_numpy("proba_1")
    assert proba.shape == (2,)
    assert proba[1] > proba[0]
    assert result.as_numpy("prediction").tolist() == [int(p > 0.5) for p in proba]


def test_triton_client_sees_errors_as_errors(live_server: str) -> None:
    client = triton.InferenceServerClient(live_server.removeprefix("http://"))
    bad = {**ROWS, "Age": ["old", "young"]}
    with pytest.raises(InferenceServerException, match="column 'Age'"):
        client.infer("titanic", inputs(bad))
    with pytest.raises(InferenceServerException):
        client.get_model_metadata("unknown")


MLFLOW_PY = Path.home() / ".cache" / "tabpipe-peers" / "mlflow" / "bin" / "python"


@pytest.mark.skipif(not MLFLOW_PY.exists(), reason=f"MLflow venv missing at {MLFLOW_PY}")
@pytest.mark.slow
def test_mlflow_scoring_client_against_invocations(live_server: str) -> None:
    """MLflow's own client and payload helpers talk to /invocations and parse the answer."""
    host, port = live_server.removeprefix("http://").split(":")
    script = f"""
import json
import pandas as pd
from mlflow.pyfunc.scoring_server.client import ScoringServerClient
from mlflow.models.utils import convert_input_example_to_serving_input
rows = pd.DataFrame(json.loads({json.dumps(json.dumps(ROWS))}))
client = ScoringServerClient({host!r}, {port})
client.wait_server_ready(timeout=30)
split = client.invoke(rows).get_predictions()
records = json.loads(convert_input_example_to_serving_input(rows))
print(json.dumps({{"split": split["proba_1"].tolist(), "payload_keys": list(records)}}))
"""
    done = subprocess.run(
        [str(MLFLOW_PY), "-c", script], check=False, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["payload_keys"] == ["dataframe_split"]
    direct = httpx.post(
        f"{live_server}/invocations",
        json={
            "dataframe_records": [
                dict(zip(ROWS, r, strict=True)) for r in zip(*ROWS.values(), strict=True)
            ]
        },
    ).json()["predictions"]
    assert result["split"] == pytest.approx([p["proba_1"] for p in direct])
