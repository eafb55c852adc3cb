"""``tabpipe export`` on a registered model."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from tabpipe.cli import app


def test_export_card_and_onnx_from_the_registry(workspace: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    card = tmp_path / "card"
    result = runner.invoke(
        app, ["export", "titanic", "-w", str(workspace), "--format", "card", "-o", str(card)]
    )
    assert result.exit_code == 0, result.output
    text = (card / "model_card.md").read_text()
    assert "- registered version: 1" in text
    assert "rows in: 891" in text  # the run's cleaning ledger
    result = runner.invoke(
        app, ["export", "titanic", "-w", str(workspace), "-o", str(tmp_path / "onnx")]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "onnx" / "model.onnx").exists()
    result = runner.invoke(
        app, ["export", "nobody", "-w", str(workspace), "-o", str(tmp_path / "x")]
    )
    assert result.exit_code == 1
    assert "no model named 'nobody'" in result.output
