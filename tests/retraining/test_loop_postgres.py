"""The feedback loop with the metadata store on PostgreSQL and a real uvicorn server.

A lean variant of test_loop: train on 2011, serve from a uvicorn process that
reads the registry from PostgreSQL, send 2012 as HTTP traffic, post labels
late, and let the policy retrain and promote; the running server then answers
from the new version. Every alert, alias move and retraining decision lands in
a schema of its own.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from monitoring.bikes import FIRST_DAY, records, train_bike
from support import start
from tabpipe.monitoring.alerts import list_alerts
from tabpipe.monitoring.logstore import read_log
from tabpipe.registry import Registry
from tabpipe.retraining.policy import run_policies
from tabpipe.retraining.retrain import retrain_history
from tabpipe.workspace import Workspace

pytestmark = [pytest.mark.slow, pytest.mark.service]


@pytest.fixture
def pg_schema(pg_url: str) -> Iterator[str]:
    """A metadata URL whose tables live in a fresh schema, dropped afterwards."""
    schema = f"tabpipe_loop_{uuid.uuid4().hex[:8]}"
    admin = create_engine(pg_url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{pg_url}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def _version(url: str) -> str:
    body = httpx.post(
        f"{url}/v2/models/bike/infer",
        json={"inputs": [{"name": k, "data": [v]} for k, v in FIRST_DAY.items()]},
        timeout=10,
    ).json()
    return str(body["model_version"])


def _wait(check: object, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_the_loop_with_postgresql_metadata(
    tmp_path: Path, pg_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TABPIPE_DB_URL", pg_schema)  # the training run registers in PostgreSQL
    served = train_bike(
        tmp_path,
        "bike",
        models=["linear"],  # lean: the store, not the model family, is under test here
        time_budget=4,
        monitoring={
            "window": {"rows": 100},
            "min_rows": 50,
            "min_labels": 30,
            "policies": [
                {"when": "drift", "then": "alert"},
                {"when": "performance", "then": "retrain"},
            ],
        },
        retraining={"window": "sliding", "max_rows": 250, "holdout_rows": 60, "margin": 0.05},
    )
    # `tabpipe serve` as a real uvicorn process, reading the registry from PostgreSQL
    proc, url = start(
        [
            "serve",
            "bike",
            "--workspace",
            str(tmp_path),
            "--db-url",
            pg_schema,
            "--poll-seconds",
            "0.2",
            "--log-key",
            "dteday",
        ]
    )
    try:
        assert _version(url) == "1"
        year_2012 = served.frame[served.frame.dteday >= "2012-01-01"]
        rows = records(year_2012)
        for first in range(0, len(rows), 10):
            r = httpx.post(
                f"{url}/invocations", json={"dataframe_records": rows[first : first + 10]}
            )
            assert r.status_code == 200, r.text
        _wait(
            lambda: len(read_log(tmp_path, "bike", with_labels=False).frame) >= len(rows) + 1,
            20,
            "the prediction log",
        )
        known = year_2012[year_2012.dteday < "2012-10-01"]
        late = [{"key": k, "label": int(c)} for k, c in zip(known.dteday, known.cnt, strict=True)]
        body = httpx.post(f"{url}/feedback", json={"labels": late}, timeout=30).json()
        assert body["matched"] == len(known) and body["unmatched"] == 0

        with Workspace(tmp_path, pg_schema) as ws:
            assert ws.meta.engine.dialect.name == "postgresql"
            outcome = run_policies(ws, "bike", actor="test")
        assert {t.finding.kind for t in outcome.triggered} == {"drift", "performance"}
        decision = outcome.decision
        assert decision is not None and decision.promoted, decision
        assert decision.challenger_score is not None and decision.champion_score is not None
        assert decision.challenger_score.value < decision.champion_score.value  # rmse
        # the running server follows the champion alias in PostgreSQL
        _wait(lambda: _version(url) == "2", 20, "the server to answer from version 2")
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    with Workspace(tmp_path, pg_schema) as ws:
        alerts = list_alerts(ws, "bike")
        assert {(a["kind"], a["action"]) for a in alerts} == {
            ("drift", "alert"),
            ("performance", "retrain"),
        }
        moves = [(e["alias"], e["version"]) for e in Registry(ws).history("bike")]
        assert moves == [("champion", 1), ("challenger", 2), ("champion", 2)]
        assert [bool(e["promoted"]) for e in retrain_history(ws, "bike")] == [True]
