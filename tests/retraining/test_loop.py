"""The whole feedback loop on bike sharing, through the real app over HTTP.

Train on 2011; a stable period stays quiet; 2012 arrives as traffic, its labels
come late; drift and the performance drop are detected; the policy retrains;
the challenger wins on the newest labelled rows and is promoted; the server
answers from the new version.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from monitoring.bikes import FIRST_DAY, Served, records, train_bike
from tabpipe.artifacts import TABLE
from tabpipe.cli import app
from tabpipe.errors import MonitoringError
from tabpipe.monitoring.alerts import list_alerts
from tabpipe.monitoring.monitor import champion_spec, monitor, run_artifact_id
from tabpipe.registry import ModelVersion, Registry
from tabpipe.retraining.policy import evaluate, run_policies
from tabpipe.retraining.retrain import RetrainDecision, retrain, retrain_history
from tabpipe.workspace import Workspace

pytestmark = pytest.mark.slow


class _Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        _Hook.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        return


@pytest.fixture
def webhook() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Hook.received = []
    yield f"http://127.0.0.1:{server.server_port}/alerts"
    server.shutdown()


def _version_of(client: TestClient) -> str:
    body = client.post(
        "/v2/models/bike/infer",
        json={"inputs": [{"name": k, "data": [v]} for k, v in FIRST_DAY.items()]},
    ).json()
    return str(body["model_version"])


def _served_version(served: Served) -> str:
    with served.client() as client:
        return _version_of(client)


def _check_label_and_schedule_policies(ws: Workspace) -> None:
    # the labels policy counts only rows the champion has not learned from
    spec = champion_spec(ws, Registry(ws).resolve("bike"))
    result = monitor(ws, "bike")
    labels_policy = type(spec).model_validate(
        {
            **spec.model_dump(),
            "monitoring": {
                **spec.monitoring.model_dump(),
                "policies": [{"when": "labels", "min_labels": 50, "then": "retrain"}],
            },
        }
    )
    assert evaluate(ws, "bike", result, labels_policy) != []
    schedule = type(spec).model_validate(
        {
            **spec.model_dump(),
            "monitoring": {
                **spec.monitoring.model_dump(),
                "policies": [{"when": "schedule", "every": "1w", "then": "retrain"}],
            },
        }
    )
    assert evaluate(ws, "bike", result, schedule) == []


def _promote_rollback_history(tmp_path: Path, served: Served) -> None:
    # 6. promote, roll back and the history, from the command line
    cli = CliRunner()
    ws_opt = ["--workspace", str(tmp_path)]
    rolled = cli.invoke(app, ["rollback", "bike", "--reason", "check", *ws_opt])
    assert rolled.exit_code == 0 and "version 1" in rolled.output
    assert _served_version(served) == "1"
    promoted = cli.invoke(app, ["promote", "bike", "2", "--actor", "ops", *ws_opt])
    assert promoted.exit_code == 0 and "version 2" in promoted.output
    history = cli.invoke(app, ["history", "bike", *ws_opt])
    assert history.exit_code == 0
    assert "ops" in history.output and "challenger" in history.output
    with Workspace(tmp_path) as ws:
        moves = [(e["alias"], e["version"], e["actor"]) for e in Registry(ws).history("bike")]
    assert moves == [
        ("champion", 1, "tabpipe run"),
        ("challenger", 2, "test"),
        ("champion", 2, "test"),
        ("champion", 1, moves[3][2]),
        ("champion", 2, "ops"),
    ]
    unknown = cli.invoke(app, ["promote", "bike", "9", *ws_opt])
    assert unknown.exit_code == 1 and "no version 9" in unknown.output


def _check_decision(decision: RetrainDecision | None) -> None:
    assert decision is not None and decision.promoted, decision
    assert decision.trigger == "performance"
    assert decision.champion == 1 and decision.challenger == 2
    assert decision.challenger_score is not None and decision.champion_score is not None
    # measurably better on the same newest 60 labelled rows: the intervals do not overlap
    assert decision.challenger_score.high is not None and decision.champion_score.low is not None
    assert decision.challenger_score.high < decision.champion_score.low
    assert decision.holdout_rows == 60 and decision.training_rows == 250


def _refuses_a_holdout_larger_than_the_labels(tmp_path: Path, v1: ModelVersion) -> None:
    with Workspace(tmp_path) as ws:
        # too few rows to judge on: refused with a reason, nothing trained
        tight = champion_spec(ws, v1)
        tight = tight.model_copy(
            update={"retraining": tight.retraining.model_copy(update={"holdout_rows": 5000})}
        )
        with pytest.raises(MonitoringError, match="labelled predictions"):
            retrain(ws, "bike", spec=tight)


def test_the_whole_loop(tmp_path: Path, webhook: str) -> None:
    served = train_bike(
        tmp_path,
        "bike",
        monitoring={
            "window": {"rows": 100},
            "min_rows": 50,
            "min_labels": 30,
            "webhook": webhook,
            "policies": [
                {"when": "drift", "then": "alert"},
                {"when": "performance", "then": "retrain"},
            ],
        },
        retraining={"window": "sliding", "max_rows": 250, "holdout_rows": 60, "margin": 0.05},
    )
    assert _served_version(served) == "1"
    with Workspace(tmp_path) as ws:
        v1 = Registry(ws).resolve("bike")
        held = ws.artifacts.get(TABLE, run_artifact_id(ws, v1.run_id, "test"))
    held = held.assign(dteday=[f"2011-stable-{i}" for i in range(len(held))])
    year_2012 = served.frame[served.frame.dteday >= "2012-01-01"]

    with served.client() as client:
        # 1. a stable period: the 2011 rows the model never trained on
        for rec in records(held):
            assert client.post("/invocations", json={"dataframe_records": [rec]}).is_success
        labels = [{"key": k, "label": float(c)} for k, c in zip(held.dteday, held.cnt, strict=True)]
        assert client.post("/feedback", json=labels).json()["matched"] == len(held)
    with Workspace(tmp_path) as ws:
        quiet = run_policies(ws, "bike")
    assert quiet.triggered == [] and quiet.decision is None  # no false alarm
    assert _Hook.received == []
    # too few labels to retrain yet: refused with the count and what to do
    refused = CliRunner().invoke(app, ["retrain", "bike", "-q", "--workspace", str(tmp_path)])
    assert refused.exit_code == 1
    assert f"{len(held)} labelled predictions" in refused.output and "feedback" in refused.output

    with served.client() as client:
        # 2. 2012 arrives as traffic, one day per request
        for rec in records(year_2012):
            assert client.post("/invocations", json={"dataframe_records": [rec]}).is_success
        # 3. labels arrive late, by user key: so far for January to September only
        known = year_2012[year_2012.dteday < "2012-10-01"]
        late = [{"key": k, "label": int(c)} for k, c in zip(known.dteday, known.cnt, strict=True)]
        body = client.post("/feedback", json={"labels": late}).json()
        assert body["matched"] == len(known) and body["unmatched"] == 0

    _refuses_a_holdout_larger_than_the_labels(tmp_path, v1)
    # a server that stays up through the retraining and follows the champion alias
    with served.client(poll_seconds=0.2) as live:
        assert _version_of(live) == "1"
        with Workspace(tmp_path) as ws:
            # 4. drift and the performance drop are detected; the policy retrains
            outcome = run_policies(ws, "bike", actor="test")
        # 5. the running server answers from the new version (hot swap, no restart)
        deadline = time.monotonic() + 20
        while _version_of(live) != "2" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _version_of(live) == "2"
    kinds = {t.finding.kind for t in outcome.triggered}
    assert kinds == {"drift", "performance"}
    assert {h["kind"] for h in _Hook.received} == {"drift", "performance"}
    _check_decision(outcome.decision)

    assert _served_version(served) == "2"  # and a restarted one too

    with Workspace(tmp_path) as ws:
        alerts = list_alerts(ws, "bike")
        assert {(a["kind"], a["action"]) for a in alerts} == {
            ("drift", "alert"),
            ("performance", "retrain"),
        }
        assert all(a["delivered"] == "HTTP 204" for a in alerts)
        # nothing new to learn from: the champion stays, and the reason is recorded
        again = retrain(ws, "bike", trigger="manual")
        assert not again.promoted and again.reason
        assert Registry(ws).resolve("bike").version == 2
        events = retrain_history(ws, "bike")
        assert [bool(e["promoted"]) for e in events] == [True, False]
        _check_label_and_schedule_policies(ws)

    _promote_rollback_history(tmp_path, served)
