"""The ingest and data commands, as the README shows them."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from tabpipe import metadata as md
from tabpipe.cli import app
from tabpipe.workspace import Workspace

REPO = Path(__file__).parents[2]


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TABPIPE_WORKSPACE", str(tmp_path / "ws"))
    shutil.copytree(REPO / "examples" / "data", tmp_path / "examples" / "data")
    return CliRunner()


def readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Data ingestion and snapshots", 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash", 1)[1].split("```", 1)[0]
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]


def invoke(cli: CliRunner, command: str) -> str:
    import shlex

    args = shlex.split(command)
    assert args[0] == "tabpipe"
    result = cli.invoke(app, args[1:])
    assert result.exit_code == 0, f"{command}\n{result.output}"
    return result.output


def test_readme_examples(cli: CliRunner, tmp_path: Path) -> None:
    commands = readme_commands()
    assert len(commands) >= 6
    outputs = {}
    new = pd.read_csv(tmp_path / "examples" / "data" / "churn_new.csv")
    for command in commands:
        outputs[command] = invoke(cli, command)
    joined = "\n".join(outputs.values())
    assert re.search(r"snapshot [0-9a-f]{32} churn: 7043 rows x 21 columns \(new\)", joined)
    assert re.search(
        rf"snapshot [0-9a-f]{{32}} churn: {len(new)} rows x 20 columns \(new\)", joined
    )
    listing = next(o for c, o in outputs.items() if "data list" in c)
    assert listing.splitlines()[0].startswith("id") and len(listing.splitlines()) == 3
    diff = next(o for c, o in outputs.items() if "data diff" in c)
    assert f"rows: 7043 -> {len(new)} ({len(new) - 7043:+d})" in diff
    assert "- column Churn" in diff
    sql = next(o for c, o in outputs.items() if "data sql" in c)
    expected = new.groupby("Contract").size()
    assert sql.splitlines() == ["Contract,customers"] + [f"{k},{n}" for k, n in expected.items()]


def test_errors_are_clear_messages(cli: CliRunner) -> None:
    cases = {
        ("ingest", "nowhere.csv"): "nowhere.csv: no such file",
        ("data", "show", "missing@latest"): "no snapshot named 'missing'",
        ("ingest", "examples/data/churn.csv", "--follow"): "--follow applies to streams",
    }
    for args, message in cases.items():
        result = cli.invoke(app, list(args))
        assert result.exit_code == 1
        assert message in " ".join(result.output.split())


@pytest.mark.slow
def test_pipeline_runs_from_a_snapshot_reference(cli: CliRunner, tmp_path: Path) -> None:
    shutil.copy(REPO / "tests" / "data" / "penguins.csv", tmp_path)
    invoke(cli, "tabpipe ingest penguins.csv --name birds")
    result = cli.invoke(
        app,
        ["run", "birds@latest", "--target", "species", "--time-budget", "3", "--quiet"],
    )
    assert result.exit_code == 0, result.output
    with Workspace(tmp_path / "ws") as ws:
        snapshot = ws.snapshots.resolve("birds@latest")
        stage = ws.meta.one(select(md.stage_runs).where(md.stage_runs.c.stage == "ingest"))
        assert stage is not None and stage["outputs"] == {"snapshot": snapshot.id}
        assert len(ws.snapshots.list()) == 1  # no copy made by the run
