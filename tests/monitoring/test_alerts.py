"""Alerts in the metadata store (SQLite and PostgreSQL), and a webhook that fails."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tabpipe.monitoring.alerts import Alert, list_alerts, raise_alert
from tabpipe.workspace import Workspace


def _alert(name: str) -> Alert:
    return Alert(
        name=name,
        version=3,
        kind="drift",
        window="window 2",
        message="drift in 2 of 9 columns: temp, hum",
        details={"tests": [{"feature": "temp", "effect": 0.4}]},
    )


def test_alerts_are_stored_and_listed(tmp_path: Path) -> None:
    with Workspace(tmp_path) as ws:
        assert raise_alert(ws, _alert("m")) is None
        rows = list_alerts(ws, "m")
    assert len(rows) == 1
    assert rows[0]["details"]["tests"][0]["feature"] == "temp"
    assert rows[0]["window_label"] == "window 2" and rows[0]["action"] == "alert"


def test_a_failing_webhook_is_recorded_not_raised(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with Workspace(tmp_path) as ws:
        status = raise_alert(ws, _alert("m"), f"http://127.0.0.1:{port}/hook")
        assert status is not None and status.startswith("failed: ")
        assert list_alerts(ws, "m")[0]["delivered"] == status


@pytest.mark.service
def test_alerts_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    name = f"alerts-{uuid.uuid4().hex[:8]}"
    with Workspace(tmp_path, db_url=pg_url) as ws:
        raise_alert(ws, _alert(name))
        raise_alert(ws, _alert(name).model_copy(update={"kind": "performance"}))
        rows = list_alerts(ws, name)
    assert [r["kind"] for r in rows] == ["drift", "performance"]


def test_the_same_alert_is_not_raised_twice(tmp_path: Path) -> None:
    with Workspace(tmp_path) as ws:
        raise_alert(ws, _alert("m"))
        assert raise_alert(ws, _alert("m")) == "duplicate"
        other = _alert("m").model_copy(update={"window": "window 3"})
        assert raise_alert(ws, other) is None
        assert len(list_alerts(ws, "m")) == 2
