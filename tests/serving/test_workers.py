"""Several worker processes (``--workers 2``): shared metrics, one log part writer each, hot swap."""

from __future__ import annotations

import json
import re
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest

from support import TITANIC_ROW
from tabpipe.registry import Registry
from tabpipe.serving.predlog import log_folder
from tabpipe.serving.settings import ServeSettings
from tabpipe.workspace import Workspace

REQUESTS = 120
GRACEFUL = (0, -signal.SIGTERM)


def predict(url: str) -> httpx.Response:
    """One request on a new connection (so the kernel may hand it to either worker)."""
    response = httpx.post(f"{url}/v1/models/titanic/predict", json=[TITANIC_ROW], timeout=20)
    assert response.status_code == 200, response.text
    return response


def worker_versions(url: str) -> dict[str, float]:
    """``tabpipe_model_version`` per worker pid, as ``/metrics`` reports it."""
    text = httpx.get(f"{url}/metrics", timeout=20).text
    found = re.findall(r'tabpipe_model_version\{model="titanic",pid="(\d+)"\} ([\d.]+)', text)
    return {pid: float(v) for pid, v in found}


def counted(url: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=20).text
    line = re.search(
        r'^tabpipe_requests_total\{endpoint="/v1/models/\{name\}/predict",method="POST",'
        r'status="200"\} ([\d.]+)$',
        text,
        re.M,
    )
    assert line is not None, text
    return float(line.group(1))


@pytest.mark.slow
def test_two_workers_share_metrics_write_their_own_log_parts_and_both_swap(
    two_versions: Path, server_factory: Any, tmp_path: Path
) -> None:
    with Workspace(two_versions) as ws:
        Registry(ws).set_alias("titanic", "champion", 1, actor="test", reason="start at 1")
    folder = log_folder(two_versions, "titanic")
    before = {p.name for p in folder.glob("part-*.parquet")}
    settings = ServeSettings(workspace=two_versions, model="titanic", poll_seconds=0.3)
    url, proc, log_file = server_factory(settings, workers=2, env={"TMPDIR": str(tmp_path)})
    try:
        ids = {predict(url).headers["x-request-id"] for _ in range(REQUESTS)}
        # the counts are the sum over both workers, whichever worker answers the scrape
        assert [counted(url) for _ in range(4)] == [float(REQUESTS)] * 4
        assert sorted(worker_versions(url).values()) == [1.0, 1.0]

        with Workspace(two_versions) as ws:
            Registry(ws).set_alias("titanic", "champion", 2, actor="test", reason="promote")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and sorted(worker_versions(url).values()) != [2.0, 2.0]:
            time.sleep(0.2)
        assert sorted(worker_versions(url).values()) == [2.0, 2.0]  # each worker swapped
        assert {predict(url).json()["version"] for _ in range(20)} == {2}
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
        with Workspace(two_versions) as ws:
            Registry(ws).set_alias("titanic", "champion", 1, actor="test", reason="reset")
    log = log_file.read_text()
    assert code in GRACEFUL, log[-3000:]
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    served = [e for e in lines if e.get("event") == "request" and e["request_id"] in ids]
    assert len(served) == REQUESTS
    assert len({e["pid"] for e in served}) == 2, "one worker served every request"
    assert sum(e.get("event") == "stopped" for e in lines) == 2  # both logs flushed at exit
    # every prediction is logged once: the workers wrote separate parts, none lost
    parts = sorted(p for p in folder.glob("part-*.parquet") if p.name not in before)
    logged = [r for p in parts for r in pq.read_table(p, columns=["request_id"]).to_pylist()]
    mine = [r["request_id"] for r in logged if r["request_id"] in ids]
    assert sorted(mine) == sorted(ids)
    assert len(parts) >= 2
    assert not list(tmp_path.glob("tabpipe-metrics-*")), "the shared metrics folder is removed"
