"""Every command in the README's code blocks runs, as written, against a fresh workspace."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support import EXAMPLES, ROOT, free_port, wait_until_up

README = ROOT / "README.md"
BIN = Path(sys.executable).parent


def readme_commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    commands = []
    for block in blocks:
        for line in block.splitlines():
            command = line.split("  #")[0].strip()
            if command.startswith(("tabpipe ", "curl ")):
                commands.append(command)
    return commands


def test_the_readme_has_the_commands_the_issue_names() -> None:
    commands = readme_commands()
    for needed in (
        "tabpipe run ",
        "tabpipe models list",
        "tabpipe predict ",
        "tabpipe serve ",
        "tabpipe report ",
    ):
        assert any(c.startswith(needed) for c in commands), needed
    text = README.read_text(encoding="utf-8")
    assert "make demo" in text and "make test" in text


@pytest.mark.slow
def test_every_readme_command_runs(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "TABPIPE_WORKSPACE": str(tmp_path / "ws"),
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
    }
    port = str(free_port())
    server: subprocess.Popen[bytes] | None = None
    try:
        for written in readme_commands():
            command = written.replace("8000", port)
            args = shlex.split(command)
            if args[:2] == ["tabpipe", "serve"]:
                if server is None:
                    server = subprocess.Popen(args, cwd=ROOT, env=env)
                    wait_until_up(f"http://127.0.0.1:{port}", server, "/v2/health/ready")
                continue
            result = subprocess.run(
                args, cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=900
            )
            assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
            if args[0] == "curl" and "infer" in command:
                outputs = {o["name"] for o in json.loads(result.stdout)["outputs"]}
                assert outputs == {"prediction", "proba_No", "proba_Yes"}
            if args[0] == "curl" and "invocations" in command:
                assert json.loads(result.stdout)["predictions"][0]["prediction"] in {"Yes", "No"}
        assert server is not None
    finally:
        (ROOT / "scored.csv").unlink(missing_ok=True)
        for exported in ROOT.glob("churn-*"):  # `tabpipe export` examples
            shutil.rmtree(exported)
        if server is not None:
            server.terminate()
            server.wait(timeout=30)


@pytest.mark.slow
def test_demo_script_ends_with_a_served_prediction(tmp_path: Path) -> None:
    env = {**os.environ, "TABPIPE_WORKSPACE": str(tmp_path / "ws"), "TABPIPE_DEMO_BUDGET": "10"}
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "demo.py")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr
    line = next(x for x in result.stdout.splitlines() if x.startswith("served prediction"))
    served = json.loads(line.split(":", 1)[1])
    assert served["prediction"] in {"Yes", "No"}
    assert abs(served["proba_Yes"] + served["proba_No"] - 1) < 1e-6
