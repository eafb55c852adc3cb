"""The modeling part of the run report: leaderboard, Pareto front, diagnostics, importances.

Charts are plotly figures with the plotly.js library inlined once, so the page works offline.
"""

from __future__ import annotations

import html
import uuid

import plotly.graph_objects as go

from tabpipe.modeling.diagnostics import Curve, Diagnostics
from tabpipe.modeling.select import Leaderboard
from tabpipe.modeling.train import TrainReport


def _fig(fig: go.Figure, title: str) -> str:
    """A chart drawn on DOMContentLoaded by the plotly.js the run report inlines once."""
    fig.update_layout(title=title, height=360, margin={"l": 50, "r": 20, "t": 50, "b": 40})
    div = f"m{uuid.uuid4().hex[:12]}"
    payload = fig.to_json().replace("</", "<\\/")
    return (
        f'<div id="{div}" style="height:360px"></div><script>'
        f'document.addEventListener("DOMContentLoaded", () => {{ const f = {payload}; '
        f'Plotly.newPlot("{div}", f.data, f.layout, {{displaylogo: false, responsive: true}}); }});'
        "</script>"
    )


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _table(board: Leaderboard, training: TrainReport) -> str:
    metrics = sorted({m for row in board.rows for m in row.test})
    head = "".join(f"<th>test {html.escape(m)}</th>" for m in metrics)
    rows = []
    for i, r in enumerate(board.rows, start=1):
        mark = " (selected)" if r.name == board.selected else ""
        mark += " (Pareto)" if r.name in board.pareto else ""
        rows.append(
            f"<tr><td>{i}</td><td>{html.escape(r.name)}{mark}</td><td>{r.cv_score:.5g}</td>"
            + "".join(f"<td>{r.test.get(m, float('nan')):.5g}</td>" for m in metrics)
            + f"<td>{r.fit_seconds:.2f}</td><td>{_num(r.latency_ms, '.3f')}</td>"
            f"<td>{_num(r.batch_ms_per_1k, '.1f')}</td><td>{_num(r.size_kb, '.0f')}</td>"
            f"<td>{html.escape(r.interpretability)}</td><td>{html.escape(r.note or '')}</td></tr>"
        )
    failed = "".join(
        f"<li>{html.escape(c.name)}: {html.escape(c.status)} — {html.escape(c.note or '')}</li>"
        for c in training.candidates
        if c.status != "ok"
    )
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in [*training.notes, *board.notes])
    return (
        f"<h2>Leaderboard</h2><p>ranked by {html.escape(training.validation)} validation "
        f"<b>{html.escape(board.metric)}</b>; the test split was not used for selection. "
        f"{len(training.trials)} trials ({training.pruned} pruned) in "
        f"{training.elapsed_seconds:.1f} s of a {training.budget_seconds:g} s budget; the "
        f"search stopped: {html.escape(training.stopped_by)}.</p>"
        f"<table><tr><th>rank</th><th>model</th><th>validation</th>{head}<th>fit s</th>"
        f"<th>1-row ms</th><th>batch ms/1k</th><th>size KB</th><th>interpretability</th>"
        f"<th>note</th></tr>{''.join(rows)}</table>"
        + (f"<ul>{failed}</ul>" if failed else "")
        + (f"<ul>{notes}</ul>" if notes else "")
    )


def _pareto(board: Leaderboard) -> str:
    timed = [r for r in board.rows if r.latency_ms is not None]
    if not timed:
        return ""
    fig = go.Figure()
    fig.add_scatter(
        x=[r.latency_ms for r in timed],
        y=[r.cv_score for r in timed],
        text=[r.name for r in timed],
        mode="markers+text",
        textposition="top center",
        name="candidates",
    )
    front = sorted((r for r in timed if r.name in board.pareto), key=lambda r: r.latency_ms or 0)
    fig.add_scatter(
        x=[r.latency_ms for r in front],
        y=[r.cv_score for r in front],
        mode="lines",
        name="Pareto front",
    )
    fig.update_xaxes(title="single-row latency (ms, ONNX)", type="log")
    fig.update_yaxes(title=f"validation {board.metric}")
    return _fig(fig, "What each millisecond buys: validation score vs latency")


def _curve(curve: Curve | None, title: str, x: str, y: str, diagonal: bool = False) -> str:
    if curve is None:
        return ""
    fig = go.Figure()
    fig.add_scatter(x=curve.x, y=curve.y, mode="lines+markers" if diagonal else "lines")
    if diagonal:
        fig.add_scatter(x=[0, 1], y=[0, 1], mode="lines", line={"dash": "dot"}, name="ideal")
    fig.update_xaxes(title=x)
    fig.update_yaxes(title=y)
    return _fig(fig, title)


def _bars(values: dict[str, float], title: str) -> str:
    if not values:
        return ""
    top = list(values.items())[:20][::-1]
    fig = go.Figure(go.Bar(x=[v for _, v in top], y=[k for k, _ in top], orientation="h"))
    return _fig(fig, title)


def _diagnostics(diag: Diagnostics, board: Leaderboard) -> str:
    parts = []
    if diag.confusion is not None:
        fig = go.Figure(
            go.Heatmap(z=diag.confusion, x=diag.labels, y=diag.labels, colorscale="Blues")
        )
        fig.update_xaxes(title="predicted")
        fig.update_yaxes(title="actual", autorange="reversed")
        parts.append(_fig(fig, "Confusion matrix (test)"))
    parts.append(_curve(diag.roc, "ROC curve (test)", "false positive rate", "true positive rate"))
    parts.append(_curve(diag.pr, "Precision-recall curve (test)", "recall", "precision"))
    parts.append(
        _curve(diag.calibration, "Calibration (test)", "predicted", "observed", diagonal=True)
    )
    if diag.residuals is not None:
        fig = go.Figure(go.Scatter(x=diag.residuals.x, y=diag.residuals.y, mode="markers"))
        fig.update_xaxes(title="prediction")
        fig.update_yaxes(title="actual - prediction")
        parts.append(_fig(fig, "Residuals (test)"))
    parts.append(
        _bars(diag.permutation_importance, "Permutation importance (test, drop in metric)")
    )
    parts.append(
        _bars(diag.shap_importance, f"Mean |SHAP| ({html.escape(board.shap_model or '')})")
    )
    return "".join(parts)


def modeling_section(training: TrainReport, board: Leaderboard) -> str:
    """HTML for the run report's leaderboard section: tables, then charts (no plotly.js)."""
    threshold = ""
    if board.threshold is not None:
        t = board.threshold
        threshold = (
            f"<p>Decision threshold on P(positive) that maximises F1 out of fold: "
            f"<b>{t.threshold:.3f}</b> (test F1 {t.f1_test_at_threshold:.4f}, "
            f"vs {t.f1_test_at_half:.4f} at 0.5).</p>"
        )
    if board.decision is not None:
        from html import escape

        from tabpipe.modeling.decision import describe

        threshold += f"<p>The packaged model applies {escape(describe(board.decision))}.</p>"
    charts = _pareto(board)
    if board.diagnostics is not None:
        charts += _diagnostics(board.diagnostics, board)
    return _table(board, training) + threshold + charts
