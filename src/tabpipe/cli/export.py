"""``tabpipe export``: a registered model as ONNX, MLflow, Docker context, PMML or model card."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tabpipe.cli._common import DbOpt, WorkspaceOpt, err, errors, open_workspace

app = typer.Typer()


@app.command("export")
def export_command(
    name: Annotated[str, typer.Argument(help="Model name.")],
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="onnx, mlflow, docker, pmml or card.")
    ] = "onnx",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="New folder (default NAME-FORMAT).")
    ] = None,
    alias: Annotated[str, typer.Option(help="Alias or version number.")] = "champion",
    workspace: WorkspaceOpt = None,
    db_url: DbOpt = None,
) -> None:
    """Export a registered model; the folder is written whole or not at all."""
    from tabpipe.packaging.export import export_registered

    with errors(), open_workspace(workspace, db_url) as ws:
        target = (output or Path(f"{name}-{fmt}")).resolve()
        export_registered(ws, name, fmt, target, alias=alias)
        err.print(f"exported {name}@{alias} as {fmt} to {target}")
        if fmt == "pmml":
            import json

            check = json.loads((target / "pmml_parity.json").read_text(encoding="utf-8"))
            err.print(
                f"checked with {check['evaluator']} on {check['rows']} rows: largest difference "
                f"from the native pipeline {check['max_difference']:.3g} "
                f"(tolerance {check['tolerance']})"
            )
