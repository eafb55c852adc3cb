"""Plotly figures of a profile, rendered as HTML fragments (the JS is inlined once per page)."""

from __future__ import annotations

import plotly.graph_objects as go

from tabpipe.eda.pairs import Matrix, MissingPattern, Shift, TargetView
from tabpipe.eda.profile import ColumnProfile

ACCENT = "#4f46e5"
SECOND = "#f59e0b"
PALETTE = ["#4f46e5", "#f59e0b", "#10b981", "#ef4444", "#06b6d4", "#8b5cf6", "#84cc16", "#ec4899"]
_FONT = {"family": "Inter, system-ui, -apple-system, Segoe UI, sans-serif", "size": 12, "color": "#1f2937"}


def fragment(fig: go.Figure, height: int = 260) -> str:
    fig.update_layout(
        template="plotly_white",
        height=height,
        margin={"l": 40, "r": 10, "t": 30, "b": 40},
        font=_FONT,
        showlegend=fig.layout.showlegend if fig.layout.showlegend is not None else False,
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
    )
    html: str = fig.to_html(full_html=False, include_plotlyjs=False, config={"displayModeBar": False, "responsive": True})
    return html


def column_chart(col: ColumnProfile) -> str | None:
    if col.histogram is not None:
        h = col.histogram
        mids = [(a + b) / 2 for a, b in zip(h.edges[:-1], h.edges[1:], strict=True)]
        widths = [b - a for a, b in zip(h.edges[:-1], h.edges[1:], strict=True)]
        fig = go.Figure(go.Bar(x=mids, y=h.counts, width=widths, marker_color=ACCENT, marker_line_width=0,
                               hovertemplate="%{x:.4g}: %{y}<extra></extra>"))
        fig.update_layout(bargap=0.02)
        return fragment(fig, 180)
    if col.top is not None:
        values = [*col.top.values, *(["(other)"] if col.top.other else [])][::-1]
        counts = [*col.top.counts, *([col.top.other] if col.top.other else [])][::-1]
        fig = go.Figure(go.Bar(x=counts, y=values, orientation="h", marker_color=SECOND,
                               hovertemplate="%{y}: %{x}<extra></extra>"))
        fig.update_yaxes(automargin=True)
        return fragment(fig, max(140, 22 * len(values) + 50))
    return None


def heatmap(matrix: Matrix, title: str, zmin: float) -> str:
    fig = go.Figure(
        go.Heatmap(z=matrix.values, x=matrix.columns, y=matrix.columns, zmin=zmin, zmax=1,
                   colorscale="RdBu" if zmin < 0 else "Purples", reversescale=zmin < 0,
                   hovertemplate="%{y} × %{x}: %{z:.2f}<extra></extra>")
    )
    fig.update_layout(title={"text": title, "font": {"size": 13}})
    fig.update_yaxes(autorange="reversed", automargin=True)
    fig.update_xaxes(automargin=True, tickangle=-45)
    size = 320 + 16 * len(matrix.columns)
    return fragment(fig, min(size, 900))


def missing_bars(names: list[str], shares: list[float]) -> str:
    fig = go.Figure(go.Bar(x=names, y=shares, marker_color="#ef4444",
                           hovertemplate="%{x}: %{y:.1%}<extra></extra>"))
    fig.update_yaxes(tickformat=".0%", range=[0, 1])
    fig.update_xaxes(tickangle=-45, automargin=True)
    return fragment(fig, 300)


def missing_pattern_chart(patterns: list[MissingPattern], columns: list[str]) -> str:
    z = [[1 if c in p.columns else 0 for c in columns] for p in patterns]
    labels = [f"{p.count} rows" for p in patterns]
    fig = go.Figure(go.Heatmap(z=z, x=columns, y=labels, colorscale=[[0, "#eef2ff"], [1, "#ef4444"]],
                               showscale=False, xgap=2, ygap=2,
                               hovertemplate="%{x}: %{z}<extra>1 = missing</extra>"))
    fig.update_yaxes(autorange="reversed", automargin=True)
    fig.update_xaxes(tickangle=-45, automargin=True)
    return fragment(fig, 120 + 28 * len(patterns))


def target_chart(view: TargetView) -> str:
    fig = go.Figure()
    if view.kind == "box":
        for i, (cls, q) in enumerate(view.series.items()):
            fig.add_trace(go.Box(name=cls, q1=[q[1]], median=[q[2]], q3=[q[3]], lowerfence=[q[0]],
                                 upperfence=[q[4]], x=[cls], marker_color=PALETTE[i % len(PALETTE)]))
        fig.update_xaxes(type="category")
    elif view.kind == "share":
        for i, (cls, shares) in enumerate(view.series.items()):
            fig.add_trace(go.Bar(name=cls, x=view.labels, y=shares, marker_color=PALETTE[i % len(PALETTE)]))
        fig.update_xaxes(type="category")
        fig.update_layout(barmode="stack", showlegend=True, legend={"orientation": "h", "y": -0.3})
        fig.update_yaxes(tickformat=".0%")
    elif view.kind == "mean_bar":
        fig.add_trace(go.Bar(x=view.labels, y=view.series["mean"], marker_color=ACCENT,
                             hovertemplate="%{x}: mean %{y:.4g}<extra></extra>"))
        fig.update_xaxes(type="category")
    else:
        fig.add_trace(go.Scatter(x=view.labels, y=view.series["mean"], mode="lines+markers",
                                 line={"color": ACCENT}, hovertemplate="%{x}: mean %{y:.4g}<extra></extra>"))
        fig.update_xaxes(tickangle=-35)
    score = f" · score {view.score:.2f}" if view.score is not None else ""
    fig.update_layout(title={"text": f"{view.feature}{score}", "font": {"size": 13}})
    fig.update_xaxes(automargin=True)
    return fragment(fig, 280)


def shift_chart(shift: Shift) -> str:
    fig = go.Figure([
        go.Bar(name="train", x=shift.labels, y=shift.train, marker_color=ACCENT),
        go.Bar(name="test", x=shift.labels, y=shift.test, marker_color=SECOND),
    ])
    fig.update_layout(title={"text": f"{shift.column} · PSI {shift.psi:.3f}", "font": {"size": 13}},
                      barmode="group", showlegend=True, legend={"orientation": "h", "y": 1.12, "x": 1, "xanchor": "right"})
    fig.update_yaxes(tickformat=".0%")
    fig.update_xaxes(automargin=True, type="category")
    return fragment(fig, 280)


def psi_bars(shifts: list[Shift]) -> str:
    top = shifts[:30]
    colors = ["#ef4444" if s.psi > 0.2 else SECOND if s.psi > 0.1 else "#10b981" for s in top]
    fig = go.Figure(go.Bar(x=[s.column for s in top], y=[s.psi for s in top], marker_color=colors,
                           hovertemplate="%{x}: PSI %{y:.3f}<extra></extra>"))
    fig.update_xaxes(tickangle=-45, automargin=True)
    fig.update_layout(title={"text": "population stability index, train → test (green < 0.1 < amber < 0.2 < red)", "font": {"size": 13}})
    return fragment(fig, 300)
