"""Storage upkeep: ``tabpipe gc`` removes what failed or killed writers left behind."""

from __future__ import annotations

from typing import Annotated

import typer

from tabpipe.cli._common import DbOpt, WorkspaceOpt, err, errors, open_workspace, out

app = typer.Typer()


@app.command()
def gc(
    older_than: Annotated[
        float,
        typer.Option(help="Remove temporary uploads and staging folders older than these hours."),
    ] = 24.0,
    workspace: WorkspaceOpt = None,
    db_url: DbOpt = None,
) -> None:
    """Remove orphan temporary files (local staging, object-store .tmp keys); never artifacts."""
    with errors(), open_workspace(workspace, db_url) as ws:
        removed = ws.gc(older_than * 3600)
        for item in removed:
            out.print(item, highlight=False, soft_wrap=True)
        err.print(f"removed {len(removed)} temporary item(s) older than {older_than:g} h")
