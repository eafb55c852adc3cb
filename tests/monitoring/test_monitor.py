"""monitor(): windows, a stable period that stays quiet, a shift that alarms, the report."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from monitoring.bikes import Served, records
from tabpipe.artifacts import TABLE
from tabpipe.cli import app
from tabpipe.errors import MonitoringError
from tabpipe.monitoring import report
from tabpipe.monitoring.alerts import list_alerts
from tabpipe.monitoring.monitor import (
    champion_spec,
    monitor,
    quality_finding,
    run_artifact_id,
)
from tabpipe.monitoring.spec import MonitoringSpec, PolicySpec, WindowSpec
from tabpipe.registry import Registry
from tabpipe.retraining.policy import alert_on
from tabpipe.workspace import Workspace


def _held_out(served: Served) -> pd.DataFrame:
    """The run's own test split: the same period and distribution as the reference."""
    with Workspace(served.root) as ws:
        version = Registry(ws).resolve(served.name)
        return ws.artifacts.get(TABLE, run_artifact_id(ws, version.run_id, "test"))


def _send(served: Served, frame: pd.DataFrame, labels: bool = False) -> None:
    with served.client() as client:
        for rec in records(frame):
            assert client.post("/invocations", json={"dataframe_records": [rec]}).is_success
        if labels:
            body = [
                {"key": k, "label": float(c)} for k, c in zip(frame.dteday, frame.cnt, strict=True)
            ]
            assert client.post("/feedback", json=body).json()["unmatched"] == 0


def test_a_stable_period_raises_no_alarm(fresh: Served) -> None:
    held = _held_out(fresh)
    held = held.assign(dteday=[f"stable-{i}" for i in range(len(held))])
    _send(fresh, held, labels=True)
    spec = MonitoringSpec(window={"rows": 100}, min_rows=50, min_labels=30)
    with Workspace(fresh.root) as ws:
        result = monitor(ws, "bike", spec=spec)
    assert result.rows == len(held) and result.labelled_rows == len(held)
    assert result.decision_window == 0
    window = result.windows[0]
    assert not window.too_small and window.tests
    assert result.findings == []
    assert not any(t.alarm for t in window.tests)
    assert window.performance is not None and not window.performance_alarm
    # the held-out rows are the run's test split: the measured score is the test score
    assert window.performance.value == pytest.approx(result.reference_score)


def test_a_later_season_alarms_and_a_small_tail_says_so(fresh: Served) -> None:
    summer_2012 = fresh.frame[fresh.frame.dteday.between("2012-06-01", "2012-08-31")]
    _send(fresh, summer_2012, labels=True)
    spec = MonitoringSpec(window={"rows": 60}, min_rows=40, min_labels=30)
    with Workspace(fresh.root) as ws:
        result = monitor(ws, "bike", spec=spec)
    assert [w.rows for w in result.windows] == [60, 32]
    assert result.windows[-1].too_small and not result.windows[-1].tests
    assert result.decision_window == 0
    assert any("too small to decide" in n for n in result.notes)
    kinds = {f.kind for f in result.findings}
    assert kinds == {"drift", "performance"}
    drifted = result.windows[0].drifted
    assert "temp" in drifted and "prediction" in drifted
    assert result.windows[0].performance_drop is not None
    assert result.windows[0].performance_drop > 0.5


def test_time_windows_and_the_report(fresh: Served, tmp_path: Path) -> None:
    _send(fresh, fresh.frame.iloc[500:620])
    with Workspace(fresh.root) as ws:
        result = monitor(ws, "bike", spec=MonitoringSpec(window={"every": "1d"}, min_rows=50))
    assert len(result.windows) == 1 and result.windows[0].rows == 120
    page = report.render(result, [])
    assert "<script src=" not in page.split("<body>")[1]  # nothing fetched from outside
    assert "Plotly" in page and "Drift tests" in page
    out = report.write(result, tmp_path)
    data = json.loads((tmp_path / "monitor.json").read_text())
    assert data["model"] == "bike" and data["windows"][0]["rows"] == 120
    assert out.read_text(encoding="utf-8").count('class="plotly-graph-div"') == 4


def test_monitor_command_prints_a_table_and_writes_the_report(
    fresh: Served, tmp_path: Path
) -> None:
    _send(fresh, fresh.frame[fresh.frame.dteday >= "2012-09-01"])
    result = CliRunner().invoke(
        app,
        [
            "monitor",
            "bike",
            "--workspace",
            str(fresh.root),
            "-o",
            str(tmp_path),
            "--min-rows",
            "50",
            "--time-column",
            "dteday",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "drift" in result.output and "report:" in result.output
    assert (tmp_path / "report.html").exists() and (tmp_path / "monitor.json").exists()
    written = json.loads((tmp_path / "monitor.json").read_text())
    assert written["time_column"] == "dteday"
    assert written["windows"][0]["start"].startswith("2012-09-01")
    with Workspace(fresh.root) as ws:
        from tabpipe.monitoring.alerts import list_alerts

        alerts = list_alerts(ws, "bike")
    assert alerts and alerts[-1]["kind"] == "drift"


def test_a_classifier_gets_measured_and_estimated_performance(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from tabpipe import api
    from tabpipe.config import build_spec
    from tabpipe.serving.app import ServeSettings, create_app

    titanic = pd.read_csv(Path(__file__).parents[1] / "data" / "titanic.csv")
    titanic.iloc[:600].to_csv(tmp_path / "titanic.csv", index=False)
    spec = build_spec(
        {
            "source": {"path": str(tmp_path / "titanic.csv")},
            "target": "Survived",
            "time_budget": 5,
            "models": ["linear"],
            "split": {"folds": 3},
        }
    )
    with Workspace(tmp_path) as ws:
        api.run(spec, ws, show_progress=False)
    later = titanic.iloc[600:].drop(columns=["Survived"])
    with TestClient(create_app(ServeSettings(workspace=tmp_path, model="titanic"))) as client:
        r = client.post(
            "/invocations",
            json={"dataframe_split": json.loads(later.to_json(orient="split", index=False))},
        )
        assert r.status_code == 200, r.text
        rid = r.headers["x-request-id"]
        labels = [
            {"request_id": rid, "row": i, "label": int(y)}
            for i, y in enumerate(titanic["Survived"].iloc[600:800])
        ]
        assert client.post("/feedback", json=labels).json()["matched"] == 200
        wrong = client.post("/feedback", json=[{"request_id": rid, "label": 7}])
        assert wrong.status_code == 400 and "valid classes" in wrong.json()["error"]
    with Workspace(tmp_path) as ws:
        result = monitor(ws, "titanic", spec=MonitoringSpec(window={"rows": 300}, min_rows=50))
    window = result.windows[0]
    assert result.metric == "roc_auc" and window.labelled == 200
    assert window.performance is not None and window.performance.rows == 200
    assert window.performance.low is not None and window.performance.low < window.performance.value
    assert window.estimated is not None and 0.5 < window.estimated.value <= 1.0
    # the estimate (no labels used) lands near the measured value on the same rows
    assert abs(window.estimated.value - window.performance.value) < 0.1
    est = window.estimated
    assert est.metric == "roc_auc" and est.low is not None and est.high is not None
    assert est.low < est.value < est.high
    assert window.estimated_measured == window.performance  # the same metric, measured
    # the report draws the estimate against the measured value, window by window
    page = report.render(result, [])
    assert "estimated roc_auc (CBPE, 95% interval)" in page
    assert "measured roc_auc (95% bootstrap CI)" in page
    assert f"{est.value:.4g} [{est.low:.3g}, {est.high:.3g}]" in page


def test_windows_follow_the_event_time_column(fresh: Served) -> None:
    """Backfilled traffic, scored newest first within a second, lands in its own months."""
    days = fresh.frame[fresh.frame.dteday >= "2012-01-01"].iloc[:120]  # 2012-01-01 .. 04-29
    backfill = records(days.iloc[::-1])
    undated = records(days.iloc[:1])
    undated[0]["dteday"] = "someday"
    with fresh.client() as client:
        for start in range(0, len(backfill), 40):
            chunk = backfill[start : start + 40]
            assert client.post("/invocations", json={"dataframe_records": chunk}).is_success
        assert client.post("/invocations", json={"dataframe_records": undated}).is_success
    by_month = MonitoringSpec(window={"every": "30d"}, min_rows=20, time_column="dteday")
    with Workspace(fresh.root) as ws:
        logged = monitor(ws, "bike", spec=by_month.model_copy(update={"time_column": None}))
        event = monitor(ws, "bike", spec=by_month)
        by_rows = monitor(
            ws, "bike", spec=by_month.model_copy(update={"window": WindowSpec(rows=60)})
        )
        with pytest.raises(MonitoringError, match=r"time_column 'hour'.*--log-key hour"):
            monitor(ws, "bike", spec=by_month.model_copy(update={"time_column": "hour"}))
    assert [w.rows for w in logged.windows] == [121]  # logging time: one window
    assert event.time_column == "dteday"
    assert [w.rows for w in event.windows] == [30, 30, 30, 30]
    assert event.windows[0].start == datetime(2012, 1, 1, tzinfo=UTC)
    assert event.windows[-1].end == datetime(2012, 4, 29, tzinfo=UTC)
    assert any(
        "1 logged rows have no readable 'dteday'" in n and "someday" in n for n in event.notes
    )
    # row windows follow the event order too, not the order the rows were scored in
    assert [(w.start.date().isoformat(), w.end.date().isoformat()) for w in by_rows.windows] == [
        ("2012-01-01", "2012-02-29"),
        ("2012-03-01", "2012-04-29"),
    ]


def test_data_quality_above_the_share_alerts(fresh: Served) -> None:
    rows = records(fresh.frame.iloc[360:420])
    for rec in rows[:15]:
        rec["weathersit"] = "snowstorm"  # 25% unseen
    for rec in rows[20:23]:
        rec["temp"] = 5.0  # 5% out of range: under the threshold
    with fresh.client() as client:
        assert client.post("/invocations", json={"dataframe_records": rows}).is_success
    mon = MonitoringSpec(
        window={"rows": 100},
        min_rows=50,
        policies=[
            {"when": "data_quality", "max_share": 0.1, "then": "alert"},
            {"when": "data_quality", "max_share": 0.1, "flags": ["missing"], "then": "retrain"},
        ],
    )
    with Workspace(fresh.root) as ws:
        spec = champion_spec(ws, Registry(ws).resolve(fresh.name))
        spec = spec.model_copy(update={"monitoring": mon})
        result = monitor(ws, "bike", spec=mon)
        window = result.windows[0]
        assert window.quality["unseen_share"] == pytest.approx(0.25)
        assert window.quality["range_share"] == pytest.approx(0.05)
        assert window.quality["any_share"] == pytest.approx(0.30)
        assert window.quality_columns == {
            "unseen:weathersit": pytest.approx(0.25),
            "range:temp": pytest.approx(0.05),
        }
        triggered = alert_on(ws, "bike", result, spec)
        assert [(t.finding.kind, t.policy.then) for t in triggered] == [("data_quality", "alert")]
        message = triggered[0].finding.message
        assert "unseen categories in 25% of rows (weathersit 25%)" in message
        assert "range" not in message and "max_share 10%" in message
        stored = [a for a in list_alerts(ws, "bike") if a["kind"] == "data_quality"]
        assert len(stored) == 1 and stored[0]["action"] == "alert"
        assert stored[0]["details"]["shares"] == {"unseen": pytest.approx(0.25)}
        # the same window monitored again raises no second alert
        alert_on(ws, "bike", monitor(ws, "bike", spec=mon), spec)
        assert len([a for a in list_alerts(ws, "bike") if a["kind"] == "data_quality"]) == 1


def test_clean_traffic_raises_no_data_quality_finding(fresh: Served) -> None:
    with fresh.client() as client:
        rows = records(fresh.frame.iloc[360:420])
        assert client.post("/invocations", json={"dataframe_records": rows}).is_success
    policy = PolicySpec(when="data_quality", max_share=0.01)
    with Workspace(fresh.root) as ws:
        result = monitor(ws, "bike", spec=MonitoringSpec(window={"rows": 100}, min_rows=50))
    assert result.windows[0].quality["any_share"] == 0.0
    assert quality_finding(result, policy) is None
