"""``tabpipe leaderboard NAME``: every candidate of the model's run, with its costs."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from tabpipe.cli._common import DbOpt, WorkspaceOpt, errors, open_workspace, out
from tabpipe.modeling.select import Leaderboard

app = typer.Typer()


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def render(board: Leaderboard) -> Table:
    """The leaderboard as a rich table (``*`` selected, ``P`` on the Pareto front)."""
    table = Table(title=f"leaderboard: ranked by validation {board.metric}")
    for column, justify in (
        ("rank", "right"),
        ("model", "left"),
        ("validation", "right"),
        (f"test {board.metric}", "right"),
        ("fit s", "right"),
        ("1-row ms", "right"),
        ("batch ms/1k", "right"),
        ("size KB", "right"),
        ("interpretability", "left"),
        ("", "left"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for i, row in enumerate(board.rows, start=1):
        marks = ("*" if row.name == board.selected else "") + (
            "P" if row.name in board.pareto else ""
        )
        table.add_row(
            str(i),
            row.name,
            f"{row.cv_score:.4f}",
            _num(row.test.get(board.metric), ".4f"),
            f"{row.fit_seconds:.1f}",
            _num(row.latency_ms, ".3f"),
            _num(row.batch_ms_per_1k, ".1f"),
            _num(row.size_kb, ".0f"),
            row.interpretability,
            marks + (f" {row.note}" if row.note else ""),
        )
    return table


@app.command()
def leaderboard(
    name: Annotated[str, typer.Argument(help="Model name.")],
    workspace: WorkspaceOpt = None,
    db_url: DbOpt = None,
) -> None:
    """Print the leaderboard of the champion's run: scores, latency, size, interpretability."""
    from tabpipe import api

    with errors(), open_workspace(workspace, db_url) as ws:
        board = api.leaderboard(ws, name)
        out.print(render(board))
        out.print("* selected (packaged)   P on the Pareto front of validation score vs latency")
        if board.threshold is not None:
            t = board.threshold
            out.print(
                f"F1-optimal decision threshold on P(positive): {t.threshold:.3f} "
                f"(test F1 {t.f1_test_at_threshold:.4f} vs {t.f1_test_at_half:.4f} at 0.5)"
            )
        if board.decision is not None:
            from tabpipe.modeling.decision import describe

            out.print(f"packaged model applies {describe(board.decision)}")
        for note in board.notes:
            out.print(f"note: {note}")
