"""The core commands: run, predict, serve, report, models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from tabpipe.cli._common import DbOpt, WorkspaceOpt, err, errors, given, open_workspace, out
from tabpipe.errors import ConfigError, TabpipeError

app = typer.Typer()
models_app = typer.Typer(no_args_is_help=True, help="Registered models.")


@app.command()
def run(
    source: Annotated[
        str,
        typer.Argument(
            help="A data file, a snapshot (name@latest or id), or a pipeline spec (.yaml)."
        ),
    ],
    target: Annotated[
        str | None, typer.Option(help="Target column (required with a data file).")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Model name (default: the file's stem).")] = None,
    task: Annotated[
        str | None, typer.Option(help="binary, multiclass, regression or auto.")
    ] = None,
    metric: Annotated[str | None, typer.Option(help="Selection metric (default per task).")] = None,
    time_budget: Annotated[
        float | None, typer.Option(help="Seconds for the training search.")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed.")] = None,
    engine: Annotated[
        str | None, typer.Option(help="Where trials run: local (default) or ray.")
    ] = None,
    address: Annotated[
        str | None, typer.Option(help="Ray cluster address (host:port or ray://host:10001).")
    ] = None,
    parallel_trials: Annotated[
        int | None, typer.Option(help="Trials evaluated together (in parallel on Ray).")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress display.")] = False,
    workspace: WorkspaceOpt = None,
    db_url: DbOpt = None,
) -> None:
    """Run the whole pipeline: ingest, clean, profile, train, evaluate, package, register."""
    from tabpipe import api
    from tabpipe.config import build_spec, load_spec
    from tabpipe.data.sources.spec import normalize_source

    with errors():
        overrides = given(
            target=target,
            name=name,
            task=task,
            metric=metric,
            time_budget=time_budget,
            seed=seed,
        )
        engine_flags = given(kind=engine, address=address, parallel_trials=parallel_trials)
        if source.endswith((".yaml", ".yml")):
            spec = load_spec(source)
            if engine_flags:
                overrides["engine"] = {**spec.engine.model_dump(), **engine_flags}
            if overrides:
                spec = build_spec({**spec.model_dump(), **overrides}, origin=source)
        else:
            if target is None:
                raise TabpipeError("--target is required when SOURCE is a data file")
            raw = normalize_source(source)  # a file, a URL, or a snapshot such as churn@latest
            if raw["kind"] == "file" and "://" not in source:
                raw["path"] = str(Path(source).resolve())
            if engine_flags:
                overrides["engine"] = engine_flags
            spec = build_spec({"source": raw, **overrides}, origin="command line")
        with open_workspace(workspace, db_url) as ws:
            summary = api.run(spec, ws, show_progress=not quiet, console=err)
        _print_leaderboard(summary)
        out.print(
            f"model [bold]{summary.name}[/] version {summary.version.version} is champion "
            f"(run {summary.run_id}{', resumed' if summary.resumed else ''})"
        )
        out.print(f"report: {summary.report}", highlight=False, soft_wrap=True)


def _print_leaderboard(summary: Any) -> None:
    board = summary.leaderboard
    table = Table(title=f"leaderboard ({board.metric}, validation)")
    table.add_column("rank")
    table.add_column("model")
    table.add_column("validation", justify="right")
    table.add_column("test", justify="right")
    table.add_column("fit s", justify="right")
    for i, row in enumerate(board.rows, start=1):
        table.add_row(
            str(i),
            row.name,
            f"{row.cv_score:.4f}",
            f"{row.test.get(board.metric, float('nan')):.4f}",
            f"{row.fit_seconds:.1f}",
        )
    out.print(table)


@models_app.command("list")
def models_list(workspace: WorkspaceOpt = None, db_url: DbOpt = None) -> None:
    """A header line, then one model per line, name first."""
    from tabpipe.registry import Registry

    with errors(), open_workspace(workspace, db_url) as ws:
        rows = Registry(ws).models()
        print(f"{'name':<24} {'task':<11} {'target':<16} {'versions':>8} {'champion':>8}  metric")
        for row in rows:
            latest = row["latest"]
            metric = ""
            if latest is not None:
                metric = f"{latest.metrics.get('metric')}={latest.metrics.get('validation', 0):.4f}"
            champion = row["champion"] if row["champion"] is not None else "-"
            print(
                f"{row['name']:<24} {row['task']:<11} {row['target']:<16} "
                f"{row['versions']:>8} {champion!s:>8}  {metric}"
            )


@app.command()
def predict(
    name: Annotated[str, typer.Argument(help="Model name.")],
    data: Annotated[Path, typer.Argument(help="CSV or Parquet file of rows to score.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the scored file.")],
    alias: Annotated[str, typer.Option(help="Alias or version number.")] = "champion",
    runtime: Annotated[str, typer.Option(help="onnx or native.")] = "onnx",
    engine: Annotated[
        str, typer.Option(help="local, or ray: Parquet scored on a Ray cluster with Ray Data.")
    ] = "local",
    address: Annotated[
        str | None, typer.Option(help="Ray cluster address (host:port or ray://host:10001).")
    ] = None,
    workspace: WorkspaceOpt = None,
    db_url: DbOpt = None,
) -> None:
    """Batch scoring: input columns, then prediction, then proba_<class> per class."""
    from tabpipe import api
    from tabpipe.config import build_engine

    with errors(), open_workspace(workspace, db_url) as ws:
        if runtime not in {"onnx", "native"}:
            raise TabpipeError(f"unknown runtime {runtime!r}; valid: onnx, native")
        rt: Any = "native" if runtime == "native" else "onnx"
        spec = build_engine({"kind": engine, "address": address}, origin="command line")
        if spec.kind == "ray":
            rows = api.predict_file_on_ray(
                ws, name, [str(data)], output, spec, alias=alias, runtime=rt
            )
        else:
            rows = api.score_file(ws, name, data, output, alias=alias, runtime=rt)
        err.print(f"scored {rows} rows into {output}")


@app.command()
def serve(
    name: Annotated[str, typer.Argument(help="Model name.")],
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    host: Annotated[
        str, typer.Option(help="Interface to bind (loopback by default).")
    ] = "127.0.0.1",
    workers: Annotated[
        int,
        typer.Option(help="Server processes; each loads the model (one per core at most)."),
    ] = 1,
    alias: Annotated[str, typer.Option(help="Alias or version number to serve.")] = "champion",
    runtime: Annotated[str, typer.Option(help="onnx or native.")] = "onnx",
    api_keys_file: Annotated[
        Path | None,
        typer.Option(help="File of API keys, one per line (also: TABPIPE_API_KEYS)."),
    ] = None,
    poll_seconds: Annotated[
        float, typer.Option(help="How often to check the alias for a new version (0: never).")
    ] = 5.0,
    max_rows: Annotated[int, typer.Option(help="Rows per JSON request.")] = 10_000,
    log_key: Annotated[
        str | None, typer.Option(help="Request column logged as the user key for late labels.")
    ] = None,
    workspace: WorkspaceOpt = None,
    db_url: DbOpt = None,
) -> None:
    """Serve the model over REST (OIP v2, MLflow /invocations, JSON records, batch upload)."""
    from tabpipe.serving.predlog import LogSettings
    from tabpipe.serving.server import run
    from tabpipe.serving.settings import ServeSettings
    from tabpipe.workspace import Workspace

    with errors():
        if workers < 1:
            raise ConfigError(f"--workers must be at least 1, got {workers}")
        with Workspace(workspace, db_url) as ws:
            from tabpipe.registry import Registry

            Registry(ws).resolve(name, alias)
            root = ws.location
        settings = ServeSettings(
            workspace=root,
            model=name,
            alias=alias,
            db_url=db_url,
            runtime="native" if runtime == "native" else "onnx",
            api_keys_file=api_keys_file,
            poll_seconds=poll_seconds,
            max_rows=max_rows,
            prediction_log=LogSettings(key_column=log_key),
        )
        plural = "s" if workers > 1 else ""
        err.print(f"serving {name}@{alias} on http://{host}:{port} ({workers} worker{plural})")
        run(settings, host=host, port=port, workers=workers)


@app.command()
def report(
    name: Annotated[str, typer.Argument(help="Model name.")],
    workspace: WorkspaceOpt = None,
    db_url: DbOpt = None,
) -> None:
    """Print the path of the champion's run report (HTML)."""
    from tabpipe import api

    with errors(), open_workspace(workspace, db_url) as ws:
        print(api.report_path(ws, name))
