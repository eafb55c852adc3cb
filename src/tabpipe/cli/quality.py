"""Data-quality commands: ``tabpipe eda`` (report) and ``tabpipe validate`` (contract check)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tabpipe.cli._common import DbOpt, WorkspaceOpt, err, errors, open_workspace, out

app = typer.Typer()


@app.command()
def eda(
    source: Annotated[str, typer.Argument(help="A CSV or Parquet file.")],
    target: Annotated[str | None, typer.Option(help="Target column (adds target views).")] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Folder for the files (default: <workspace>/eda/<file stem>)."
        ),
    ] = None,
    compare: Annotated[
        str | None, typer.Option(help="A second file (e.g. the test set) to compare against.")
    ] = None,
    spec: Annotated[
        Path | None, typer.Option(help="A pipeline spec whose cleaning: and columns: apply.")
    ] = None,
    task: Annotated[str, typer.Option(help="binary, multiclass, regression or auto.")] = "auto",
    workspace: WorkspaceOpt = None,
) -> None:
    """Clean and profile a table; write an HTML report, profile.json, contract.json,
    cleaning.json (the ledger) and removed_rows.csv."""
    from tabpipe.config import CleaningSpec, SourceSpec, TaskOrAuto, load_spec
    from tabpipe.data.ingest import read_source
    from tabpipe.eda.explore import explore, write_exploration
    from tabpipe.errors import ConfigError

    with errors():
        if task not in ("auto", "binary", "multiclass", "regression"):
            raise ConfigError(f"unknown task {task!r}; valid: auto, binary, multiclass, regression")
        cleaning, columns = CleaningSpec(), {}
        if spec is not None:
            loaded = load_spec(spec)
            cleaning, columns = loaded.cleaning, dict(loaded.columns)
            target = target or loaded.target
        frame = read_source(SourceSpec(path=source))
        other = read_source(SourceSpec(path=compare)) if compare else None
        task_value: TaskOrAuto = task  # type: ignore[assignment]
        result = explore(
            frame,
            target,
            task=task_value,
            cleaning=cleaning,
            columns=columns,
            compare=other,
            title=f"{Path(source).name}: data report",
        )
        from tabpipe.workspace import local_root

        root = local_root(workspace) if workspace else Path("tabpipe-workspace")
        folder = output or root / "eda" / SourceSpec(path=source).stem
        paths = write_exploration(result, folder)
        report = result.report
        err.print(
            f"{report.rows_in:,} rows, {len(report.columns):,} columns: "
            f"{len(report.features())} features, {len(report.actions)} ledger entries, "
            f"{report.rows_set_aside:,} rows removed, {len(result.profile.findings)} warnings"
        )
        out.print(f"report: {paths['report.html']}", highlight=False, soft_wrap=True)


@app.command()
def validate(
    data: Annotated[str, typer.Argument(help="A CSV or Parquet file to check.")],
    contract: Annotated[
        Path | None, typer.Option(help="A contract.json (from a bundle or tabpipe eda).")
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="Check against this registered model's contract instead.")
    ] = None,
    alias: Annotated[str, typer.Option(help="Alias or version of --model.")] = "champion",
    report: Annotated[
        Path | None, typer.Option(help="Also write the validation report as JSON here.")
    ] = None,
    no_target: Annotated[
        bool, typer.Option("--no-target", help="The data has no target column (requests).")
    ] = False,
    workspace: WorkspaceOpt = None,
    db_url: DbOpt = None,
) -> None:
    """Check a table against a data contract; exit 1 when any error-level violation is found."""
    from tabpipe.config import SourceSpec
    from tabpipe.data.contract import load_contract
    from tabpipe.data.ingest import read_source
    from tabpipe.data.validation import validate_frame
    from tabpipe.errors import ConfigError

    with errors():
        if (contract is None) == (model is None):
            raise ConfigError("give exactly one of --contract FILE or --model NAME")
        if model is not None:
            from tabpipe.registry import Registry

            with open_workspace(workspace, db_url) as ws:
                bundle = Registry(ws).resolve(model, alias).path
            contract = bundle / "contract.json"
        assert contract is not None
        result = validate_frame(
            read_source(SourceSpec(path=data)), load_contract(contract), with_target=not no_target
        )
        if report is not None:
            report.write_text(result.model_dump_json(indent=2), encoding="utf-8")
        print(result.summary())
        if not result.ok:
            raise typer.Exit(1)
