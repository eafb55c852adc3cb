"""Every request is checked against the bundle's data contract (errors 422, warnings flagged)."""

from __future__ import annotations

import timeit
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from serving.conftest import wait_ready
from tabpipe.data.contract import load_contract
from tabpipe.data.request_check import RequestValidator
from tabpipe.data.validation import validate_records
from tabpipe.monitoring.logstore import read_log
from tabpipe.packaging.bundle import read_manifest
from tabpipe.registry import Registry
from tabpipe.serving.app import create_app
from tabpipe.serving.settings import ServeSettings
from tabpipe.workspace import Workspace

NAME = "titanic_decided"
ROW = {
    "Pclass": 3,
    "Sex": "male",
    "Age": 30,
    "SibSp": 0,
    "Parch": 0,
    "Fare": 8.05,
    "Embarked": "S",
    "Cabin": None,
}


@pytest.fixture
def client(decided_workspace: Path) -> Iterator[TestClient]:
    settings = ServeSettings(workspace=decided_workspace, model=NAME, poll_seconds=0)
    with TestClient(create_app(settings)) as c:
        wait_ready(c)
        yield c


def _folder(root: Path) -> Path:
    with Workspace(root) as ws:
        return Registry(ws).resolve(NAME).path


def test_a_broken_declared_constraint_is_422_naming_the_column(client: TestClient) -> None:
    r = client.post(f"/v1/models/{NAME}/predict", json=[ROW, {**ROW, "Age": 130}])
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["error_code"] == "CONTRACT_VIOLATION" and body["field"] == "Age"
    assert "above the declared maximum 100" in body["message"]
    r = client.post(f"/v1/models/{NAME}/predict", json=[{**ROW, "Embarked": "X"}])
    assert r.status_code == 422 and r.json()["field"] == "Embarked"
    # the same rule on every protocol
    oip = {"inputs": [{"name": k, "data": [v if k != "Age" else 101]} for k, v in ROW.items()]}
    assert client.post(f"/v2/models/{NAME}/infer", json=oip).status_code == 422


def test_warnings_are_answered_and_logged_as_data_quality_flags(
    decided_workspace: Path,
) -> None:
    settings = ServeSettings(workspace=decided_workspace, model=NAME, poll_seconds=0)
    with TestClient(create_app(settings)) as client:
        wait_ready(client)
        # Fare had no missing value in training; 'Extra' is not in the contract
        rows = [ROW, {**ROW, "Fare": None, "Extra": 1}]
        r = client.post(f"/v1/models/{NAME}/predict", json=rows)
        assert r.status_code == 200, r.text
        rid = r.headers["x-request-id"]
        warnings = r.json()["warnings"]
        assert any("'Fare'" in w and "had none" in w for w in warnings), warnings
        assert any("'Extra'" in w and "not in the contract" in w for w in warnings)
        assert "contract:nullable:Fare=1" in r.headers["x-tabpipe-warnings"]
    logged = read_log(decided_workspace, NAME).frame
    mine = logged[logged["request_id"] == rid].sort_values("row")
    assert "contract:nullable:Fare" not in list(mine.iloc[0]["flags"])
    assert "contract:nullable:Fare" in list(mine.iloc[1]["flags"])
    assert "contract:unexpected_column:Extra" in list(mine.iloc[1]["flags"])


def test_the_request_check_agrees_with_validate_records(decided_workspace: Path) -> None:
    folder = _folder(decided_workspace)
    manifest = read_manifest(folder)
    contract = load_contract(folder / "contract.json")
    validator = RequestValidator(contract, manifest.signature.names)
    columns = {k: [v, v] for k, v in ROW.items()}
    columns["Fare"] = [8.05, None]
    columns["Pclass"] = [3, 2.5]
    # (a missing-share shift is judged on 20 rows or more only, so give Cabin values)
    columns["Cabin"] = ["C85", "C85"]
    checked = manifest.signature.check(columns)
    found = validator.check(checked.feeds, checked.rows, columns)
    assert found is not None
    served = {(v.column, v.rule, v.severity, v.count) for v in found.report.violations}
    offline = validate_records(columns, contract)
    assert served == {(v.column, v.rule, v.severity, v.count) for v in offline.violations}
    assert served == {("Fare", "nullable", "warning", 1), ("Pclass", "integer", "warning", 1)}
    # a clean single row costs a few microseconds on top of the signature check
    one = manifest.signature.check({k: [v] for k, v in ROW.items()})
    seconds = min(timeit.repeat(lambda: validator.check(one.feeds, 1, ROW), number=2000, repeat=3))
    assert validator.check(one.feeds, 1, ROW) is None
    assert seconds / 2000 < 200e-6  # generous bound: the real figure is in BENCHMARKS.md
