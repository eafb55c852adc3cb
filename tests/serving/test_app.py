"""The REST app end to end through Starlette's test client, on a real trained model."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from support import TITANIC_ROW
from tabpipe.serving.app import create_app

DATA = Path(__file__).parents[1] / "data"

ROW: dict[str, Any] = TITANIC_ROW


def records(
    client: TestClient, rows: list[dict[str, Any]], headers: dict[str, str] | None = None, **kw: Any
) -> Any:
    return client.post(
        "/v1/models/titanic/predict",
        content=json.dumps(rows),
        headers={"content-type": "application/json", **(headers or {})},
        **kw,
    )


def test_metadata_lists_inputs_and_outputs(client: TestClient) -> None:
    meta = client.get("/v2/models/titanic").json()
    names = {i["name"] for i in meta["inputs"]}
    assert {"Pclass", "Sex", "Age", "Fare"} <= names
    assert [o["name"] for o in meta["outputs"]] == ["prediction", "proba_0", "proba_1"]
    assert meta["parameters"]["contributions"] is True


def test_records_endpoint_answers_probabilities(client: TestClient) -> None:
    response = records(client, [ROW, {**ROW, "Sex": "female", "Pclass": 1}])
    assert response.status_code == 200
    body = response.json()
    first, second = body["predictions"]
    assert first["proba_0"] + first["proba_1"] == pytest.approx(1.0)
    assert second["proba_1"] > first["proba_1"]  # first-class women survived more
    assert body["version"] == 1
    assert body["request_id"] == response.headers["x-request-id"]


def test_contributions_sum_to_the_log_odds(client: TestClient) -> None:
    response = records(client, [ROW], params={"contributions": "true"})
    assert response.status_code == 200, response.text
    row = response.json()["predictions"][0]
    total = sum(row["contributions"].values())
    assert total == pytest.approx(math.log(row["proba_1"] / row["proba_0"]), abs=1e-3)
    assert set(row["contributions"]) >= {"Sex", "Age", "_bias"}


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        ({"Age": "old"}, 400, "Age"),
        ({"Age": True}, 400, "Age"),
        ({"Fare": 1e39}, 400, "Fare"),
        ({"Sex": {"a": 1}}, 400, "Sex"),
        ({"Pclass": None, "Sex": ["x"]}, 400, "Sex"),
    ],
)
def test_bad_values_are_400_naming_the_field(
    client: TestClient, change: dict[str, Any], status: int, field: str
) -> None:
    response = records(client, [{**ROW, **change}])
    assert response.status_code == status
    assert response.json()["field"] == field


def test_infinity_in_json_is_refused(client: TestClient) -> None:
    body = '[{"Pclass": 3, "Sex": "male", "Age": Infinity, "SibSp": 1, "Parch": 0, "Fare": 1, "Cabin": null, "Embarked": "S"}]'
    response = client.post(
        "/v1/models/titanic/predict", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["field"] == "Age"


def test_missing_column_is_400(client: TestClient) -> None:
    row = {k: v for k, v in ROW.items() if k != "Fare"}
    response = records(client, [row])
    assert response.status_code == 400
    assert response.json()["field"] == "Fare"
    assert "missing required column" in response.json()["message"]


def test_unseen_and_out_of_range_are_answered_counted_and_warned(client: TestClient) -> None:
    response = records(client, [{**ROW, "Sex": "alien", "Age": 250}])
    assert response.status_code == 200
    assert response.headers["x-tabpipe-warnings"] == "out_of_range:Age=1;unseen:Sex=1"
    assert len(response.json()["warnings"]) == 2
    text = client.get("/metrics").text
    assert 'tabpipe_unseen_categories_total{column="Sex"} 1.0' in text
    assert 'tabpipe_out_of_range_values_total{column="Age"} 1.0' in text


def test_limits_and_content_types(settings_factory: Any, ready: Any) -> None:
    app = create_app(settings_factory(max_rows=2, max_body_bytes=2000))
    with TestClient(app) as client:
        ready(client)
        assert records(client, [ROW] * 3).status_code == 413
        big = json.dumps([ROW] * 30)
        response = client.post(
            "/v1/models/titanic/predict", content=big, headers={"content-type": "application/json"}
        )
        assert response.status_code == 413
        assert response.json()["error_code"] == "PAYLOAD_TOO_LARGE"
        wrong = client.post(
            "/v1/models/titanic/predict", content="x", headers={"content-type": "text/plain"}
        )
        assert wrong.status_code == 415
        assert wrong.json()["field"] == "content-type"
        broken = client.post(
            "/v1/models/titanic/predict", content="{", headers={"content-type": "application/json"}
        )
        assert broken.status_code == 400
        assert client.post("/v1/models/other/predict", json=[ROW]).status_code == 404
        assert client.get("/v1/models/titanic/predict").status_code == 405
        assert (
            client.post(
                "/invocations", content="a", headers={"content-type": "text/xml"}
            ).status_code
            == 415
        )


def test_nothing_yields_a_500(client: TestClient) -> None:
    bodies = [
        "null",
        "[]",
        "[1]",
        '{"records": 5}',
        '{"records": [], "x": 1}',
        '[{"Age": [1, 2]}]',
        '{"inputs": "x"}',
        '{"dataframe_split": {"columns": ["a"], "data": [[1, 2]]}}',
        '{"dataframe_records": [{"Pclass": "first"}]}',
        '"text"',
        "1e999",
    ]
    for path in ("/v1/models/titanic/predict", "/invocations", "/v2/models/titanic/infer"):
        for body in bodies:
            response = client.post(path, content=body, headers={"content-type": "application/json"})
            assert 400 <= response.status_code < 500, (path, body, response.text)
            assert "error_code" in response.json()


def test_oip_infer(client: TestClient) -> None:
    inputs = [
        {
            "name": k,
            "shape": [1],
            "datatype": "BYTES" if isinstance(v, str) or v is None else "FP32",
            "data": [v],
        }
        for k, v in ROW.items()
    ]
    response = client.post(
        "/v2/models/titanic/infer",
        json={"id": "r1", "inputs": inputs, "parameters": {"contributions": True}},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == "r1"
    names = [o["name"] for o in body["outputs"]]
    assert names[:3] == ["prediction", "proba_0", "proba_1"]
    assert "contrib_Sex" in names


def test_invocations_json_and_csv_agree(client: TestClient) -> None:
    split = {"dataframe_split": {"columns": list(ROW), "data": [list(ROW.values())]}}
    a = client.post("/invocations", json=split).json()["predictions"][0]
    text = ",".join(ROW) + "\n" + ",".join("" if v is None else str(v) for v in ROW.values()) + "\n"
    b = client.post("/invocations", content=text, headers={"content-type": "text/csv"})
    assert b.status_code == 200
    assert b.json()["predictions"][0]["proba_1"] == pytest.approx(a["proba_1"])


def test_batch_csv_and_parquet_uploads(client: TestClient) -> None:
    data = (DATA / "titanic.csv").read_bytes()
    response = client.post(
        "/v1/models/titanic/batch", content=data, headers={"content-type": "text/csv"}
    )
    assert response.status_code == 200
    scored = pcsv.read_csv(pa.BufferReader(response.content))
    assert scored.num_rows == 891
    assert scored.column_names[-3:] == ["prediction", "proba_0", "proba_1"]
    sink = io.BytesIO()
    pq.write_table(pcsv.read_csv(DATA / "titanic.csv"), sink)
    response = client.post(
        "/v1/models/titanic/batch",
        files={"file": ("rows.parquet", sink.getvalue(), "application/octet-stream")},
    )
    assert response.status_code == 200
    table = pq.read_table(pa.BufferReader(response.content))
    assert table.column("proba_1").to_pylist() == pytest.approx(
        scored.column("proba_1").to_pylist(), abs=1e-6
    )
    bad = client.post(
        "/v1/models/titanic/batch",
        content=b"not parquet",
        headers={"content-type": "application/vnd.apache.parquet"},
    )
    assert bad.status_code == 400


def test_request_id_is_echoed_and_metrics_count_statuses(client: TestClient) -> None:
    response = records(client, [ROW], headers={"x-request-id": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    records(client, [{**ROW, "Age": "x"}])
    text = client.get("/metrics").text
    assert (
        'tabpipe_requests_total{endpoint="/v1/models/{name}/predict",method="POST",status="200"}'
        in text
    )
    assert 'status="400"' in text
    assert 'tabpipe_model_version{model="titanic"} 1.0' in text
    assert "tabpipe_request_seconds_bucket" in text
    assert 'tabpipe_predicted_class_total{label="0"}' in text


def test_api_keys_from_env_and_file(
    settings_factory: Any, ready: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TABPIPE_TEST_KEYS", "k-env-1, k-env-2")
    key_file = tmp_path / "keys.txt"
    key_file.write_text("# one per line\nk-file\n")
    app = create_app(settings_factory(api_keys_env="TABPIPE_TEST_KEYS", api_keys_file=key_file))
    with TestClient(app) as client:
        ready(client)  # health is open
        assert records(client, [ROW]).status_code == 401
        wrong = records(client, [ROW], headers={"authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert wrong.json()["error_code"] == "UNAUTHENTICATED"
        assert (
            records(client, [ROW], headers={"authorization": "Bearer k-env-2"}).status_code == 200
        )
        assert records(client, [ROW], headers={"x-api-key": "k-file"}).status_code == 200
        assert client.get("/metrics").status_code == 200


def test_startup_load_fails_loudly(settings_factory: Any) -> None:
    from tabpipe.serving.errors import NotReadyError

    with (
        pytest.raises(NotReadyError, match="no_such_model"),
        TestClient(create_app(settings_factory(model="no_such_model"))),
    ):
        pass


def test_background_load_turns_ready(settings_factory: Any, ready: Any) -> None:
    with TestClient(create_app(settings_factory(load="background"))) as client:
        ready(client)
        assert records(client, [ROW]).status_code == 200


def test_auth_is_off_without_keys(client: TestClient) -> None:
    assert records(client, [ROW]).status_code == 200


def test_not_ready_is_503_with_the_reason(settings_factory: Any) -> None:
    app = create_app(settings_factory(model="no_such_model", load="background"))
    with TestClient(app) as client:
        for _ in range(200):
            body = client.get("/v2/health/ready").json()
            if "error" in body:
                break
        assert client.get("/v2/health/ready").status_code == 503
        assert "no_such_model" in body["error"]
        assert client.get("/v2/health/live").status_code == 200
        response = client.post("/invocations", json={"dataframe_records": [ROW]})
        assert response.status_code == 503
        assert response.json()["error_code"] == "NOT_READY"


def test_prediction_page_is_served_at_the_root(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert "Sex" in page.text and "<form" in page.text


@pytest.mark.parametrize("load", ["startup", "background"])
def test_startup_objects_are_frozen_out_of_the_collector_while_serving(
    settings_factory: Any, ready: Any, load: str
) -> None:
    import gc

    assert gc.get_freeze_count() == 0
    with TestClient(create_app(settings_factory(load=load))) as client:
        ready(client)
        assert gc.get_freeze_count() > 0
        assert records(client, [ROW]).status_code == 200
    assert gc.get_freeze_count() == 0  # unfrozen at shutdown
    with TestClient(create_app(settings_factory(freeze_gc=False))) as client:
        ready(client)
        assert gc.get_freeze_count() == 0
