"""The run report: what the data looked like, what was cleaned, what was tried, what won."""

from __future__ import annotations

import html

from tabpipe.config import PipelineSpec
from tabpipe.data.cleaning import CleaningReport
from tabpipe.eda.profile import Profile
from tabpipe.eda.report import render_html
from tabpipe.modeling.select import Leaderboard
from tabpipe.modeling.train import TrainReport


def render_run_report(
    spec: PipelineSpec,
    prof: Profile,
    cleaning: CleaningReport,
    training: TrainReport,
    board: Leaderboard,
) -> str:
    metrics = sorted({m for row in board.rows for m in row.test})
    head = "".join(f"<th>test {html.escape(m)}</th>" for m in metrics)
    rows = "".join(
        f"<tr><td>{i + 1}</td><td>{html.escape(r.name)}</td><td>{r.cv_score:.5g}</td>"
        + "".join(f"<td>{r.test.get(m, float('nan')):.5g}</td>" for m in metrics)
        + f"<td>{r.fit_seconds:.2f}</td></tr>"
        for i, r in enumerate(board.rows)
    )
    skipped = "".join(
        f"<li>{html.escape(c.name)}: {html.escape(c.status)} — {html.escape(c.note or '')}</li>"
        for c in training.candidates
        if c.status != "ok"
    )
    leaderboard = (
        f"<h2>Leaderboard</h2><p>ranked by {training.folds}-fold validation "
        f"<b>{html.escape(board.metric)}</b>; the test split was not used for selection.</p>"
        f"<table><tr><th>rank</th><th>model</th><th>validation</th>{head}<th>fit s</th></tr>"
        f"{rows}</table>" + (f"<ul>{skipped}</ul>" if skipped else "")
    )
    body = leaderboard.split("</h2>", 1)[1]
    return render_html(prof, cleaning, f"{spec.model_name}: run report", [("Leaderboard", body)])
