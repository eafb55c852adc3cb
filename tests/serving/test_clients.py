"""Clients the project did not write: Triton's OIP v2 HTTP client."""

from __future__ import annotations

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
