"""The ``tabpipe`` command line: each command is a thin call into the library.

Each area keeps its commands in its own module here; this file assembles them.
"""

from __future__ import annotations

import sys

import typer

from tabpipe.cli import commands, data, db, export, leaderboard, monitor, quality, storage, ui
from tabpipe.cli._common import err

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="tabpipe: raw tabular data to a served, monitored model.",
)
app.registered_commands.extend(commands.app.registered_commands)
app.registered_commands.extend(quality.app.registered_commands)
app.add_typer(commands.models_app, name="models")
app.registered_commands.extend(ui.app.registered_commands)
app.registered_commands.extend(export.app.registered_commands)
data.register(app)
app.registered_commands.extend(leaderboard.app.registered_commands)
app.registered_commands.extend(monitor.app.registered_commands)
app.registered_commands.extend(storage.app.registered_commands)
app.add_typer(db.app, name="db")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)


__all__ = ["app", "main"]
