"""What every command shares: error display, workspace options, consoles."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from tabpipe.errors import TabpipeError

out = Console()
err = Console(stderr=True)

WorkspaceOpt = Annotated[
    str | None,
    typer.Option(
        "--workspace",
        "-w",
        envvar="TABPIPE_WORKSPACE",
        help="Workspace folder, or an object-store URL such as s3://bucket/prefix "
        "(default ./tabpipe-workspace).",
    ),
]
DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db-url",
        envvar="TABPIPE_DB_URL",
        help="Metadata store URL (default SQLite inside the workspace).",
    ),
]


def given(**options: Any) -> dict[str, Any]:
    """The options the user gave on the command line (those not left at ``None``)."""
    return {k: v for k, v in options.items() if v is not None}


@contextmanager
def errors() -> Iterator[None]:
    """Turn tabpipe errors into a readable message and exit code 1."""
    try:
        yield
    except TabpipeError as exc:
        err.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False)
        raise typer.Exit(1) from None


def open_workspace(path: str | Path | None, db_url: str | None) -> Any:
    from tabpipe.workspace import Workspace

    return Workspace(path, db_url)
