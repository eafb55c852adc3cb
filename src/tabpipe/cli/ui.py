"""``tabpipe ui``: the web app over the workspace."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tabpipe.cli._common import DbOpt, WorkspaceOpt, err, errors, open_workspace

app = typer.Typer()


@app.command()
def ui(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    host: Annotated[
        str, typer.Option(help="Interface to bind (loopback by default).")
    ] = "127.0.0.1",
    api_keys_file: Annotated[
        Path | None, typer.Option(help="File of API keys, one per line (also TABPIPE_API_KEYS).")
    ] = None,
    workspace: WorkspaceOpt = None,
    db_url: DbOpt = None,
) -> None:
    """Serve the web app: models, runs, data and monitoring of the workspace."""
    import uvicorn

    from tabpipe.ui.app import UiSettings, create_ui_app

    with errors():
        with open_workspace(workspace, db_url) as ws:
            root = ws.location
        err.print(f"tabpipe ui on http://{host}:{port}")
        uvicorn.run(
            create_ui_app(UiSettings(workspace=root, db_url=db_url, api_keys_file=api_keys_file)),
            host=host,
            port=port,
            log_level="warning",
        )
