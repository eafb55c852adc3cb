"""``tabpipe ingest`` and ``tabpipe data list|show|diff|sql``: thin calls into the library."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.table import Table

from tabpipe.cli._common import DbOpt, WorkspaceOpt, err, errors, open_workspace, out
from tabpipe.errors import ConfigError

data_app = typer.Typer(no_args_is_help=True, help="Snapshots: list, show, diff, query with SQL.")


def register(app: typer.Typer) -> None:
    """Add ``ingest`` and the ``data`` group to the main app."""
    app.command()(ingest)
    app.add_typer(data_app, name="data")


def _source_from_cli(text: str, overrides: dict[str, Any]) -> Any:
    """A path/glob/URL/snapshot reference, or a YAML file holding a source (or a whole spec)."""
    from pydantic import TypeAdapter, ValidationError

    from tabpipe.config import describe_validation_error
    from tabpipe.data.sources.spec import Source, normalize_source, resolve_relative

    if text.endswith((".yaml", ".yml")) and Path(text).is_file():
        raw = yaml.safe_load(Path(text).read_text(encoding="utf-8"))
        if isinstance(raw, dict) and "source" in raw:
            raw = raw["source"]
        raw = resolve_relative(normalize_source(raw), Path(text).resolve().parent)
    else:
        raw = normalize_source(text)
        if raw.get("kind") == "file" and "://" not in text:
            raw["path"] = str(Path(text).expanduser().resolve())
    if isinstance(raw, dict):
        csv = {k: v for k, v in overrides.pop("csv", {}).items() if v is not None}
        if csv:
            raw["csv"] = {**raw.get("csv", {}), **csv}
        raw.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return TypeAdapter(Source).validate_python(raw)
    except ValidationError as exc:
        from pydantic import BaseModel

        raise ConfigError(describe_validation_error(exc, BaseModel, text)) from exc


def ingest(
    source: Annotated[
        str,
        typer.Argument(
            help="A file, glob or fsspec URL; a snapshot reference; or a YAML file with a "
            "source (file, sql, http, mqtt) or a whole pipeline spec."
        ),
    ],
    name: Annotated[
        str | None, typer.Option(help="Snapshot name (default: from the source).")
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", help="Streams: keep collecting windows until stopped.")
    ] = False,
    fmt: Annotated[
        str | None, typer.Option("--format", help="File format (default: from the name).")
    ] = None,
    delimiter: Annotated[str | None, typer.Option(help="CSV field separator.")] = None,
    encoding: Annotated[
        str | None, typer.Option(help="CSV encoding: utf-8, utf-16, latin-1.")
    ] = None,
    bad_rows: Annotated[
        str | None, typer.Option(help="fail (default) or quarantine rows that cannot be read.")
    ] = None,
    engine: Annotated[
        str | None,
        typer.Option(
            help="Read the files of a glob or folder one task per file: local (one after "
            "another) or ray (across the Ray cluster)."
        ),
    ] = None,
    address: Annotated[
        str | None, typer.Option(help="Ray cluster address (host:port or ray://host:10001).")
    ] = None,
    workspace: WorkspaceOpt = None,
    db_url: DbOpt = None,
) -> None:
    """Read a source into an immutable, content-identified snapshot."""
    from tabpipe.config import build_engine
    from tabpipe.data.ingest import ingest as run_ingest
    from tabpipe.data.sources.spec import MqttSource
    from tabpipe.engine import open_engine

    with errors():
        overrides: dict[str, Any] = {"name": name, "bad_rows": bad_rows}
        if fmt or delimiter or encoding:
            overrides.update(format=fmt, csv={"delimiter": delimiter, "encoding": encoding})
        spec = _source_from_cli(source, overrides)
        with open_workspace(workspace, db_url) as ws:
            if isinstance(spec, MqttSource):
                _collect(spec, ws, follow)
                return
            if follow:
                raise ConfigError("--follow applies to streams (mqtt sources) only")
            if engine is None and address is None:
                with err.status(f"ingesting {spec.kind} source {spec.stem} ..."):
                    record, report = run_ingest(spec, ws.snapshots)
            else:
                where = build_engine({"kind": engine, "address": address}, origin="command line")
                with (
                    open_engine(where) as tasks,
                    err.status(f"ingesting {spec.kind} source {spec.stem} on {where.kind} ..."),
                ):
                    record, report = run_ingest(spec, ws.snapshots, engine=tasks)
            _print_report(record, report)


def _collect(spec: Any, ws: Any, follow: bool) -> None:
    from tabpipe.data.sources.mqtt import collect

    stop = threading.Event()

    def request_stop(signum: int, _frame: Any) -> None:
        err.print(f"{signal.Signals(signum).name}: flushing the current window, then stopping")
        stop.set()

    previous = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        err.print(
            f"collecting {', '.join(spec.topics)} from {spec.host}:{spec.port} in "
            f"{spec.window_seconds:g} s windows" + (" until stopped (Ctrl-C)" if follow else "")
        )
        results = collect(spec, ws.snapshots, follow=follow, stop=stop, on_snapshot=_print_report)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not results:
        err.print("no messages arrived; no snapshot written")


def _print_report(record: Any, report: Any) -> None:
    state = "existing (identical data)" if report.reused else "new"
    out.print(
        f"snapshot {record.id} {record.name}: {record.rows} rows x {record.columns} columns "
        f"({state})",
        highlight=False,
    )
    if record.parent_id:
        out.print(f"  parent: {record.parent_id}", highlight=False)
    for warning in report.warnings:
        err.print(f"  note: {warning}", highlight=False)
    if report.bad_rows:
        err.print(f"  bad rows: {report.bad_rows} (samples below)", highlight=False)
        for sample in report.bad_row_samples[:5]:
            err.print(
                f"    {sample.position}: {sample.cause} | {sample.raw[:120]!r}", highlight=False
            )
    if report.quarantine:
        err.print(f"  quarantined into {report.quarantine}", highlight=False)


@data_app.command("list")
def data_list(
    name: Annotated[str | None, typer.Option(help="Only snapshots of this name.")] = None,
    workspace: WorkspaceOpt = None,
    db_url: DbOpt = None,
) -> None:
    """A header line, then one snapshot per line, oldest first."""
    with errors(), open_workspace(workspace, db_url) as ws:
        print(f"{'id':<32}  {'name':<24} {'rows':>10} {'cols':>5}  {'created (UTC)':<19}  source")
        for r in ws.snapshots.list(name):
            created = r.created_at.strftime("%Y-%m-%d %H:%M:%S") if r.created_at else "-"
            print(
                f"{r.id:<32}  {r.name:<24} {r.rows:>10} {r.columns:>5}  {created:<19}  "
                f"{r.source.get('kind', '?')}"
            )


@data_app.command("show")
def data_show(
    ref: Annotated[str, typer.Argument(help="Snapshot id, id prefix, name@latest or name@N.")],
    rows: Annotated[int, typer.Option(help="Rows of the head to print.")] = 5,
    workspace: WorkspaceOpt = None,
    db_url: DbOpt = None,
) -> None:
    """Schema, counts, source, parent and the first rows of a snapshot."""
    import json

    with errors(), open_workspace(workspace, db_url) as ws:
        store = ws.snapshots
        record = store.resolve(ref)
        out.print(f"snapshot {record.id} ({record.name})", highlight=False)
        out.print(f"rows {record.rows}, columns {record.columns}, created {record.created_at}")
        out.print(
            f"source {json.dumps(record.source, default=str)}", highlight=False, soft_wrap=True
        )
        out.print(f"parent {record.parent_id or '-'}", highlight=False)
        table = Table("column", "type")
        for column, kind in record.schema.items():
            table.add_row(column, kind)
        out.print(table)
        print(store.head(record, rows).to_string(max_cols=12, max_colwidth=24))


@data_app.command("diff")
def data_diff(
    old: Annotated[str, typer.Argument(help="The older snapshot.")],
    new: Annotated[str, typer.Argument(help="The newer snapshot.")],
    workspace: WorkspaceOpt = None,
    db_url: DbOpt = None,
) -> None:
    """Schema changes and row-count change between two snapshots."""
    with errors(), open_workspace(workspace, db_url) as ws:
        store = ws.snapshots
        diff = store.diff(store.resolve(old), store.resolve(new))
        print(f"rows: {diff.rows_old} -> {diff.rows_new} ({diff.row_change:+d})")
        for column in diff.added:
            print(f"+ column {column}")
        for column in diff.removed:
            print(f"- column {column}")
        for column, (before, after) in diff.type_changes.items():
            print(f"~ column {column}: {before} -> {after}")
        if not (diff.added or diff.removed or diff.type_changes):
            print("schema: unchanged")


@data_app.command("sql")
def data_sql(
    query: Annotated[
        str,
        typer.Argument(
            help='SQL; each snapshot name is a table, e.g. "select count(*) from titanic".'
        ),
    ],
    workspace: WorkspaceOpt = None,
    db_url: DbOpt = None,
) -> None:
    """Query snapshots with DuckDB (a name means its latest snapshot); prints CSV."""
    import sys

    with errors(), open_workspace(workspace, db_url) as ws:
        ws.snapshots.sql(query).to_csv(sys.stdout, index=False)
