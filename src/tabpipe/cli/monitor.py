"""Monitoring and the feedback loop: monitor, feedback, retrain, watch, promote, rollback, history."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from tabpipe.cli._common import DbOpt, WorkspaceOpt, err, errors, given, open_workspace, out
from tabpipe.errors import TabpipeError

app = typer.Typer()


def _actor(actor: str | None) -> str:
    if actor:
        return actor
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _fmt(value: float | None, spec: str = ".4g") -> str:
    return "–" if value is None else format(value, spec)


def _print_result(result: Any) -> None:
    table = Table(
        title=f"{result.model} v{result.version}: {result.rows} logged rows, "
        f"{result.labelled_rows} labelled"
    )
    for col in (
        "window",
        "start",
        "rows",
        "labelled",
        "drifted",
        result.metric,
        "drop",
        "estimated",
        "p50 ms",
        "errors",
    ):
        table.add_column(col, justify="left" if col in {"start", "drifted"} else "right")
    for w in result.windows:
        columns = len({t.feature for t in w.tests})
        drifted = "too small" if w.too_small else f"{len(w.drifted)}/{columns}"
        table.add_row(
            str(w.index),
            f"{w.start:%m-%d %H:%M}",
            str(w.rows),
            str(w.labelled),
            drifted,
            _fmt(w.performance.value if w.performance else None),
            _fmt(w.performance_drop, "+.0%"),
            _fmt(w.estimated.value if w.estimated else None),
            _fmt(w.operations.latency_p50_ms, ".2f"),
            str(w.operations.errors),
        )
    out.print(table)
    for finding in result.findings:
        out.print(f"[bold red]{finding.kind}[/]: {finding.message} ({finding.window})")
    if not result.findings:
        out.print("no alarm")
    for note in result.notes:
        out.print(f"note: {note}")
    for part in result.skipped_parts:
        err.print(f"skipped corrupt log part {part['path']}: {part['reason']}", highlight=False)


@app.command()
def monitor(
    name: Annotated[str, typer.Argument(help="Model name.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Folder for report.html + monitor.json.")
    ] = None,
    alias: Annotated[str, typer.Option(help="Alias or version to monitor.")] = "champion",
    window_rows: Annotated[int | None, typer.Option(help="Windows of N rows.")] = None,
    every: Annotated[str | None, typer.Option(help="Windows of a time span (1h, 1d).")] = None,
    min_rows: Annotated[int | None, typer.Option(help="Rows a window needs to decide.")] = None,
    time_column: Annotated[
        str | None,
        typer.Option(help="Cut windows on this column's time (a feature or the logged key)."),
    ] = None,
    workspace: WorkspaceOpt = None,
    db_url: DbOpt = None,
) -> None:
    """Drift, performance, data quality and latency per window; alerts per the spec's policies."""
    from tabpipe.monitoring import report
    from tabpipe.monitoring.alerts import list_alerts
    from tabpipe.monitoring.monitor import champion_spec
    from tabpipe.monitoring.monitor import monitor as run_monitor
    from tabpipe.registry import Registry
    from tabpipe.retraining.policy import alert_on

    with errors(), open_workspace(workspace, db_url) as ws:
        version = Registry(ws).resolve(name, alias)
        spec = champion_spec(ws, version)
        overrides: dict[str, Any] = {}
        if window_rows is not None or every is not None:
            overrides["window"] = {"rows": window_rows, "every": every}
        if min_rows is not None:
            overrides["min_rows"] = min_rows
        if time_column is not None:
            overrides["time_column"] = time_column
        if overrides:
            from tabpipe.config import build_spec

            merged = {**spec.monitoring.model_dump(), **overrides}
            spec = build_spec({**spec.model_dump(), "monitoring": merged}, origin="command line")
        result = run_monitor(ws, name, alias=alias, spec=spec.monitoring)
        alert_on(ws, name, result, spec)
        folder = output or ws.root / "monitoring" / name
        path = report.write(result, folder, list_alerts(ws, name))
        _print_result(result)
        out.print(f"report: {path}", highlight=False, soft_wrap=True)
        out.print(f"json: {folder / 'monitor.json'}", highlight=False, soft_wrap=True)


@app.command()
def feedback(
    file: Annotated[Path, typer.Argument(help="CSV/Parquet: request_id [+ row] or key, label.")],
    model: Annotated[str, typer.Option("--model", "-m", help="Model name.")],
    workspace: WorkspaceOpt = None,
    db_url: DbOpt = None,
) -> None:
    """Attach late labels to logged predictions; unmatched labels are reported, not dropped."""
    import pandas as pd

    from tabpipe.monitoring.feedback import items_from_frame, record_feedback
    from tabpipe.packaging.bundle import read_manifest
    from tabpipe.registry import Registry

    with errors(), open_workspace(workspace, db_url) as ws:
        manifest = read_manifest(Registry(ws).resolve(model).path)
        if not file.exists():
            raise TabpipeError(f"{file}: no such file")
        if file.suffix.lower() in {".parquet", ".pq"}:
            frame = pd.read_parquet(file)
        else:
            frame = pd.read_csv(file, dtype={"request_id": str, "key": str})
        ws.sync_log(model)  # match against every machine's predictions
        result = record_feedback(ws.root, manifest, items_from_frame(frame, manifest.target))
        ws.sync_log(model)  # and share the labels
        out.print(
            f"{result.received} labels: {result.matched} matched, {result.unmatched} unmatched "
            "(kept; they attach when their prediction is logged)"
        )
        for item in result.unmatched_items[:10]:
            out.print(f"  unmatched: {item}")


@app.command()
def retrain(
    name: Annotated[str, typer.Argument(help="Model name.")],
    window: Annotated[str | None, typer.Option(help="growing or sliding.")] = None,
    max_rows: Annotated[int | None, typer.Option(help="Rows kept by a sliding window.")] = None,
    holdout_rows: Annotated[
        int | None, typer.Option(help="Newest labelled rows to judge on.")
    ] = None,
    margin: Annotated[float | None, typer.Option(help="Relative win the challenger needs.")] = None,
    time_budget: Annotated[float | None, typer.Option(help="Seconds for training.")] = None,
    actor: Annotated[str | None, typer.Option(help="Who decided (default: your user).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress display.")] = False,
    workspace: WorkspaceOpt = None,
    db_url: DbOpt = None,
) -> None:
    """Train a challenger on reference + new labels; promote it only if it wins by the margin."""
    from tabpipe.config import build_spec
    from tabpipe.monitoring.monitor import champion_spec
    from tabpipe.registry import Registry
    from tabpipe.retraining.retrain import retrain as run_retrain

    with errors(), open_workspace(workspace, db_url) as ws:
        spec = champion_spec(ws, Registry(ws).resolve(name))
        overrides = given(
            window=window,
            max_rows=max_rows,
            holdout_rows=holdout_rows,
            margin=margin,
            time_budget=time_budget,
        )
        if overrides:
            merged = {**spec.retraining.model_dump(), **overrides}
            spec = build_spec({**spec.model_dump(), "retraining": merged}, origin="command line")
        decision = run_retrain(
            ws, name, actor=_actor(actor), spec=spec, show_progress=not quiet, console=err
        )
        out.print(decision.reason)
        if decision.challenger_score and decision.champion_score:
            c, h = decision.challenger_score, decision.champion_score
            out.print(
                f"challenger {c.value:.4g} [{_fmt(c.low)}, {_fmt(c.high)}]  champion "
                f"{h.value:.4g} [{_fmt(h.low)}, {_fmt(h.high)}]  ({decision.metric}, "
                f"{decision.holdout_rows} rows; trained on {decision.training_rows} rows, "
                f"{decision.new_rows} new)"
            )


@app.command()
def watch(
    name: Annotated[str, typer.Argument(help="Model name.")],
    every: Annotated[str, typer.Option(help="How often to check (30s, 15m, 1h, 1d).")] = "1h",
    iterations: Annotated[int | None, typer.Option(help="Stop after N checks.")] = None,
    workspace: WorkspaceOpt = None,
    db_url: DbOpt = None,
) -> None:
    """Run the spec's policies on a schedule: monitor, alert, retrain when a policy says so."""
    from tabpipe.monitoring.spec import parse_duration
    from tabpipe.retraining.policy import PolicyOutcome
    from tabpipe.retraining.policy import watch as run_watch

    def show(outcome: PolicyOutcome) -> None:
        kinds = ", ".join(t.finding.kind for t in outcome.triggered) or "nothing"
        out.print(f"v{outcome.result.version}: {outcome.result.rows} rows; triggered: {kinds}")
        if outcome.decision is not None:
            out.print(f"  retrain: {outcome.decision.reason}")
        if outcome.error:
            out.print(f"  retrain skipped: {outcome.error}")

    with errors(), open_workspace(workspace, db_url) as ws:
        try:
            seconds = parse_duration(every).total_seconds()
        except ValueError as exc:
            raise TabpipeError(str(exc)) from None
        run_watch(ws, name, every=seconds, iterations=iterations, on_outcome=show)


@app.command()
def promote(
    name: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[int, typer.Argument(help="Version to make champion.")],
    reason: Annotated[str, typer.Option(help="Why (kept in the history).")] = "manual promotion",
    actor: Annotated[str | None, typer.Option(help="Who decided (default: your user).")] = None,
    workspace: WorkspaceOpt = None,
    db_url: DbOpt = None,
) -> None:
    """Make VERSION the champion; a running server follows the alias."""
    from tabpipe.registry import Registry

    with errors(), open_workspace(workspace, db_url) as ws:
        Registry(ws).promote(name, version, actor=_actor(actor), reason=reason)
        out.print(f"{name}: champion is now version {version}")


@app.command()
def rollback(
    name: Annotated[str, typer.Argument(help="Model name.")],
    reason: Annotated[str, typer.Option(help="Why (kept in the history).")] = "manual rollback",
    actor: Annotated[str | None, typer.Option(help="Who decided (default: your user).")] = None,
    workspace: WorkspaceOpt = None,
    db_url: DbOpt = None,
) -> None:
    """Point the champion back at the version it held before its last move."""
    from tabpipe.registry import Registry

    with errors(), open_workspace(workspace, db_url) as ws:
        version = Registry(ws).rollback(name, actor=_actor(actor), reason=reason)
        out.print(f"{name}: champion rolled back to version {version.version}")


@app.command()
def history(
    name: Annotated[str, typer.Argument(help="Model name.")],
    workspace: WorkspaceOpt = None,
    db_url: DbOpt = None,
) -> None:
    """Which version served when, who or what moved it and why; retraining decisions."""
    from tabpipe.registry import Registry
    from tabpipe.retraining.retrain import retrain_history

    with errors(), open_workspace(workspace, db_url) as ws:
        print(f"{'at':<19}  {'alias':<10}  {'version':>7}  {'previous':>8}  {'actor':<16}  reason")
        for e in Registry(ws).history(name):
            previous = "-" if e["previous"] is None else str(e["previous"])
            print(
                f"{e['at']:%Y-%m-%d %H:%M:%S}  {e['alias']:<10}  {e['version']:>7}  "
                f"{previous:>8}  {e['actor']:<16}  {e['reason']}"
            )
        events = retrain_history(ws, name)
        if events:
            print()
            print(
                f"{'at':<19}  {'trigger':<16}  {'champion':>8}  {'challenger':>10}  promoted  reason"
            )
            for r in events:
                print(
                    f"{r['at']:%Y-%m-%d %H:%M:%S}  {r['trigger']:<16}  {r['champion']!s:>8}  "
                    f"{r['challenger']!s:>10}  {'yes' if r['promoted'] else 'no':<8}  {r['reason']}"
                )
