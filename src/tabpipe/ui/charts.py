"""Plotly figures for the web app, returned as JSON for ``Plotly.newPlot``."""

from __future__ import annotations

import plotly.graph_objects as go

from tabpipe.modeling.select import Leaderboard


def _latency(row: object) -> tuple[float | None, str]:
    for attr, label in (
        ("predict_ms_single", "single-row predict latency (ms)"),
        ("latency_ms", "single-row predict latency (ms)"),
    ):
        value = getattr(row, attr, None)
        if isinstance(value, int | float):
            return float(value), label
    return None, "fit time (s)"


def pareto(board: Leaderboard) -> str:
    """Validation score against latency (fit time when latency is not measured), front marked."""
    points = []
    label = "fit time (s)"
    for row in board.rows:
        latency, label = _latency(row)
        points.append((row.name, row.cv_score, latency if latency is not None else row.fit_seconds))
    front = _front(points, board.greater_is_better)
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[p[2] for p in points],
            y=[p[1] for p in points],
            text=[p[0] for p in points],
            mode="markers+text",
            textposition="top center",
            name="candidates",
            marker={"size": 11, "color": "#8a9bb0"},
        )
    )
    fig.add_trace(
        go.Scatter(
            x=[p[2] for p in front],
            y=[p[1] for p in front],
            mode="lines+markers",
            name="Pareto front",
            line={"color": "#d9534f", "dash": "dot"},
            marker={"size": 12, "color": "#d9534f"},
        )
    )
    fig.update_layout(
        xaxis_title=label,
        yaxis_title=f"validation {board.metric}",
        height=380,
        margin={"l": 60, "r": 20, "t": 30, "b": 50},
        legend={"orientation": "h", "y": -0.25},
        template="plotly_white",
    )
    return str(fig.to_json())


def _front(points: list[tuple[str, float, float]], greater: bool) -> list[tuple[str, float, float]]:
    ordered = sorted(points, key=lambda p: (p[2], -p[1] if greater else p[1]))
    front: list[tuple[str, float, float]] = []
    for point in ordered:
        if not front or (point[1] > front[-1][1] if greater else point[1] < front[-1][1]):
            front.append(point)
    return front


def stage_durations(stages: list[tuple[str, float]]) -> str:
    fig = go.Figure(
        go.Bar(
            x=[d for _, d in stages],
            y=[s for s, _ in stages],
            orientation="h",
            marker={"color": "#4a7ab5"},
        )
    )
    fig.update_layout(
        height=60 + 28 * len(stages),
        xaxis_title="seconds",
        margin={"l": 90, "r": 20, "t": 10, "b": 40},
        template="plotly_white",
        yaxis={"autorange": "reversed"},
    )
    return str(fig.to_json())
