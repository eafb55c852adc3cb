"""`tabpipe eda` and `tabpipe validate` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from tabpipe.cli import app

DATA = Path(__file__).parents[1] / "data"
runner = CliRunner()


def test_eda_writes_the_report_and_validate_checks_against_its_contract(tmp_path: Path) -> None:
    out = tmp_path / "eda"
    result = runner.invoke(
        app, ["eda", str(DATA / "automobile.csv"), "--target", "price", "--output", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "cleaning.json",
        "contract.json",
        "profile.json",
        "removed_rows.csv",
        "report.html",
    ]
    profile = json.loads((out / "profile.json").read_text(encoding="utf-8"))
    assert profile["rows"] == 201
    contract = str(out / "contract.json")
    same = runner.invoke(app, ["validate", str(DATA / "automobile.csv"), "--contract", contract])
    assert same.exit_code == 0 and "0 error(s)" in same.output

    broken = pd.read_csv(DATA / "automobile.csv").drop(columns=["bore"])
    broken.to_csv(tmp_path / "later.csv", index=False)
    report = tmp_path / "validation.json"
    bad = runner.invoke(
        app,
        ["validate", str(tmp_path / "later.csv"), "--contract", contract, "--report", str(report)],
    )
    assert bad.exit_code == 1 and "bore: required column is missing" in bad.output
    assert json.loads(report.read_text(encoding="utf-8"))["errors"] == 1


def test_validate_needs_exactly_one_contract_source(tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", str(DATA / "automobile.csv")])
    assert (
        result.exit_code == 1 and "exactly one of --contract FILE or --model NAME" in result.output
    )


def test_eda_names_a_missing_target(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["eda", str(DATA / "automobile.csv"), "--target", "nope", "-o", str(tmp_path)]
    )
    assert result.exit_code == 1 and "target column 'nope' not found" in result.output
