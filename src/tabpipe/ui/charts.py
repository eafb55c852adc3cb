"""Plotly figures for the web app, returned as JSON for ``Plotly.newPlot``."""

from __future__ import annotations

import plotly.graph_objects as go

from tabpipe.modeling.select import Leaderboard


def pareto(board: Leaderboard) -> str:
    """Validation score against single-row ONNX latency, with the leaderboard's Pareto front."""
    timed = [r for r in board.rows if r.latency_ms is not None]
    front = [r for name in board.pareto for r in timed if r.name == name]
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[r.latency_ms for r in timed],
            y=[r.cv_score for r in timed],
            text=[r.name for r in timed],
            mode="markers+text",
            textposition="top center",
            name="candidates",
            marker={"size": 11, "color": "#8a9bb0"},
        )
    )
    fig.add_trace(
        go.Scatter(
            x=[r.latency_ms for r in front],
            y=[r.cv_score for r in front],
            mode="lines+markers",
            name="Pareto front",
            line={"color": "#d9534f", "dash": "dot"},
            marker={"size": 12, "color": "#d9534f"},
        )
    )
    fig.update_layout(
        xaxis_title="single-row predict latency (ms)",
        yaxis_title=f"validation {board.metric}",
        height=380,
        margin={"l": 60, "r": 20, "t": 30, "b": 50},
        legend={"orientation": "h", "y": -0.25},
        template="plotly_white",
    )
    return str(fig.to_json())


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
