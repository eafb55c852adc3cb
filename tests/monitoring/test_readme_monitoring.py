"""Every command of the README's monitoring section, run for real (the server as a process)."""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest
from typer.testing import CliRunner

from monitoring.bikes import records, train_bike
from tabpipe.cli import app
from tabpipe.monitoring.logstore import read_log
from tabpipe.registry import Registry
from tabpipe.workspace import Workspace

pytestmark = pytest.mark.slow
README = Path(__file__).parents[2] / "README.md"


def _readme_commands() -> list[list[str]]:
    text = README.read_text(encoding="utf-8")
    block = text.split("## Monitoring and retraining", 1)[1].split("```shell", 1)[1]
    block = block.split("```", 1)[0]
    return [shlex.split(line) for line in block.strip().splitlines()]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(cmd: list[str], root: Path, port: int) -> subprocess.Popen[bytes]:
    assert cmd[:2] == ["tabpipe", "serve"]
    exe = str(Path(sys.executable).with_name("tabpipe"))
    env = {**os.environ, "TABPIPE_WORKSPACE": str(root)}
    proc = subprocess.Popen([exe, *cmd[1:], "--port", str(port)], env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v2/health/ready").status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError("the server did not become ready")


def test_readme_monitoring_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    commands = _readme_commands()
    assert [c[1] for c in commands] == [
        "serve",
        "feedback",
        "monitor",
        "retrain",
        "watch",
        "promote",
        "rollback",
        "history",
    ]
    served = train_bike(tmp_path, "bike")
    first_half = served.frame[served.frame.dteday.between("2012-01-01", "2012-06-30")]
    port = _free_port()
    server = _serve(commands[0], tmp_path, port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            for rec in records(first_half):
                r = client.post("/invocations", json={"dataframe_records": [rec]})
                assert r.status_code == 200
    finally:
        server.send_signal(signal.SIGINT)  # graceful shutdown flushes the log
        assert server.wait(30) == 0
    logged = read_log(tmp_path, "bike").frame
    assert logged["key"].tolist() == first_half["dteday"].tolist()

    monkeypatch.chdir(tmp_path)
    pd.DataFrame({"key": first_half.dteday, "label": first_half.cnt}).to_csv(
        "labels.csv", index=False
    )
    runner = CliRunner()
    outputs = {}
    for cmd in commands[1:]:
        result = runner.invoke(app, [*cmd[1:], "--workspace", str(tmp_path)])
        assert result.exit_code == 0, (cmd, result.output)
        outputs[cmd[1]] = result.output
    assert "182 matched" in outputs["feedback"]
    assert (
        "drift" in outputs["monitor"]
        and (tmp_path / "monitoring" / "bike" / "report.html").exists()
    )
    assert "challenger v2" in outputs["retrain"]
    assert "triggered" in outputs["watch"]
    assert "champion is now version 2" in outputs["promote"]
    assert "rolled back to version 1" in outputs["rollback"]
    assert "checked by hand" in outputs["history"]
    with Workspace(tmp_path) as ws:
        assert Registry(ws).resolve("bike").version == 1
