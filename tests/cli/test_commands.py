"""The core commands through the real command line (typer's runner, in-process)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from support import DATA
from tabpipe.cli import app

runner = CliRunner()


def tabpipe(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output + (result.stderr if result.stderr_bytes else "")


def test_classification_run_list_predict_report(tmp_path: Path) -> None:
    ws = str(tmp_path / "ws")
    code, output = tabpipe(
        "run",
        str(DATA / "titanic.csv"),
        "--target",
        "Survived",
        "--time-budget",
        "10",
        "-q",
        "-w",
        ws,
    )
    assert code == 0, output
    assert "model titanic version 1 is champion" in output

    code, output = tabpipe("models", "list", "-w", ws)
    assert code == 0, output
    lines = output.strip().splitlines()
    assert lines[0].split()[0] == "name"
    assert lines[1].split()[:3] == ["titanic", "binary", "Survived"]

    scored_path = tmp_path / "scored.csv"
    code, output = tabpipe(
        "predict", "titanic", str(DATA / "titanic.csv"), "-o", str(scored_path), "-w", ws
    )
    assert code == 0, output
    raw = pd.read_csv(DATA / "titanic.csv")
    scored = pd.read_csv(scored_path)
    assert list(scored.columns) == [*raw.columns, "prediction", "proba_0", "proba_1"]
    assert len(scored) == len(raw)
    assert set(scored["prediction"]) <= {0, 1}
    assert ((scored["proba_0"] + scored["proba_1"]).round(5) == 1).all()
    # better than the majority class on the data it was trained from
    assert (scored["prediction"] == raw["Survived"]).mean() > 0.75

    code, output = tabpipe("report", "titanic", "-w", ws)
    assert code == 0, output
    report = Path(output.strip())
    html = report.read_text(encoding="utf-8")
    assert "Leaderboard" in html
    assert html.count("* plotly.js v") == 1  # one inlined copy serves every chart


def test_regression_run_and_predict(tmp_path: Path) -> None:
    ws = str(tmp_path / "ws")
    code, output = tabpipe(
        "run",
        str(DATA / "ames.csv"),
        "--target",
        "SalePrice",
        "--name",
        "houses",
        "--time-budget",
        "10",
        "-q",
        "-w",
        ws,
    )
    assert code == 0, output
    assert "model houses version 1 is champion" in output
    scored_path = tmp_path / "scored.parquet"
    code, output = tabpipe(
        "predict", "houses", str(DATA / "ames.csv"), "-o", str(scored_path), "-w", ws
    )
    assert code == 0, output
    scored = pd.read_parquet(scored_path)
    assert list(scored.columns)[-1] == "prediction"
    assert not any(c.startswith("proba_") for c in scored.columns)
    error = (scored["prediction"] - scored["SalePrice"]).abs().median()
    assert error < 0.2 * scored["SalePrice"].median()


def test_run_from_a_spec_file(tmp_path: Path) -> None:
    spec = tmp_path / "pipeline.yaml"
    spec.write_text(
        f"name: birds\nsource: {DATA / 'penguins.csv'}\ntarget: species\ntime_budget: 5\n",
        encoding="utf-8",
    )
    code, output = tabpipe("run", str(spec), "-q", "-w", str(tmp_path / "ws"))
    assert code == 0, output
    assert "model birds version 1" in output


def test_unknown_config_key_fails_clearly(tmp_path: Path) -> None:
    spec = tmp_path / "pipeline.yaml"
    spec.write_text("source: x.csv\ntarget: y\nbudget: 5\n", encoding="utf-8")
    code, output = tabpipe("run", str(spec), "-w", str(tmp_path / "ws"))
    assert code == 1
    assert "unknown key 'budget'" in output and "time_budget" in output


def test_missing_target_column_is_named(tmp_path: Path) -> None:
    code, output = tabpipe(
        "run", str(DATA / "penguins.csv"), "--target", "Species", "-q", "-w", str(tmp_path / "ws")
    )
    assert code == 1
    assert "target column 'Species' not found" in output
    assert "species" in output


def test_target_flag_required_for_a_data_file(tmp_path: Path) -> None:
    code, output = tabpipe("run", str(DATA / "penguins.csv"), "-w", str(tmp_path / "ws"))
    assert code == 1
    assert "--target is required" in output


def test_empty_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    code, output = tabpipe("run", str(empty), "--target", "y", "-q", "-w", str(tmp_path / "ws"))
    assert code == 1
    assert "empty" in output and "empty.csv" in output


def test_header_only_file(tmp_path: Path) -> None:
    header = tmp_path / "header.csv"
    header.write_text("a,b,y\n", encoding="utf-8")
    code, output = tabpipe("run", str(header), "--target", "y", "-q", "-w", str(tmp_path / "ws"))
    assert code == 1
    assert "no data rows" in output


def test_a_file_that_is_not_a_csv(tmp_path: Path) -> None:
    garbage = tmp_path / "photo.csv"
    garbage.write_bytes(bytes(range(256)) * 64)
    code, output = tabpipe("run", str(garbage), "--target", "y", "-q", "-w", str(tmp_path / "ws"))
    assert code == 1
    assert "photo.csv" in output
    assert "Traceback" not in output


def test_missing_file(tmp_path: Path) -> None:
    code, output = tabpipe(
        "run", str(tmp_path / "nope.csv"), "--target", "y", "-q", "-w", str(tmp_path / "ws")
    )
    assert code == 1
    assert "no such file" in output


def test_predict_with_unknown_model(tmp_path: Path) -> None:
    code, output = tabpipe(
        "predict",
        "ghost",
        str(DATA / "penguins.csv"),
        "-o",
        str(tmp_path / "out.csv"),
        "-w",
        str(tmp_path / "ws"),
    )
    assert code == 1
    assert "no model named 'ghost'" in output


def test_predict_with_missing_column(titanic_ws: Path, tmp_path: Path) -> None:
    rows = pd.read_csv(DATA / "titanic.csv").drop(columns=["Sex"]).head(5)
    rows.to_csv(tmp_path / "rows.csv", index=False)
    code, output = tabpipe(
        "predict",
        "titanic",
        str(tmp_path / "rows.csv"),
        "-o",
        str(tmp_path / "out.csv"),
        "-w",
        str(titanic_ws),
    )
    assert code == 1
    assert "'Sex'" in output
    assert not (tmp_path / "out.csv").exists()


def test_run_engine_flags_are_validated_before_any_work(tmp_path: Path) -> None:
    code, output = tabpipe(
        "run", str(DATA / "titanic.csv"), "--target", "Survived", "--engine", "spark",
        "--workspace", str(tmp_path / "ws"),
    )  # fmt: skip
    assert code == 1
    assert "engine.kind: Input should be 'local' or 'ray'" in output
    code, output = tabpipe(
        "run", str(DATA / "titanic.csv"), "--target", "Survived", "--address", "10.0.0.1:6379",
        "--workspace", str(tmp_path / "ws"),
    )  # fmt: skip
    assert code == 1
    assert "address applies to kind 'ray' only" in output
    assert not (tmp_path / "ws").exists()
