"""The README's export examples, run on the test model (``churn`` becomes ``titanic``)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tabpipe.cli import app

README = Path(__file__).parents[2] / "README.md"


def export_lines() -> list[str]:
    lines = [ln.split("#")[0].strip() for ln in README.read_text().splitlines()]
    return [ln for ln in lines if ln.startswith("tabpipe export churn --format")]


def test_readme_has_export_examples() -> None:
    assert len(export_lines()) >= 4


@pytest.mark.parametrize("line", export_lines())
def test_readme_export_example_runs(
    line: str, workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    args = shlex.split(line.replace("churn", "titanic"))[1:]
    result = CliRunner().invoke(app, [*args, "-w", str(workspace)])
    assert result.exit_code == 0, result.output
    target = tmp_path / args[args.index("-o") + 1]
    assert any(target.iterdir())
