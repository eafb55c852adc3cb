"""The monitoring report: one self-contained HTML page (plotly inlined) and monitor.json."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio

from tabpipe.monitoring import performance as perf
from tabpipe.monitoring.monitor import MonitorResult

STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;"
    "text-align:right}th{background:#f3f3f3}td:first-child{text-align:left}"
    ".alarm{background:#fdd}.small{color:#777}"
)


def _fig_html(fig: go.Figure, first: bool) -> str:
    fig.update_layout(height=360, margin={"l": 50, "r": 20, "t": 40, "b": 40})
    fig.update_xaxes(dtick=1)
    return str(pio.to_html(fig, include_plotlyjs=first, full_html=False))


def _drift_figure(result: MonitorResult) -> go.Figure:
    fig = go.Figure()
    features = sorted({t.feature for w in result.windows for t in w.tests if t.kind != "missing"})
    for feature in features:
        xs, ys = [], []
        for w in result.windows:
            test = next((t for t in w.tests if t.feature == feature and t.kind != "missing"), None)
            if test is not None:
                xs.append(w.index)
                ys.append(test.effect)
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", name=feature))
    fig.update_layout(
        title="Drift effect size per feature (Wasserstein/std or Jensen-Shannon)",
        xaxis_title="window",
        yaxis_title="effect",
    )
    return fig


def _interval_trace(
    points: list[tuple[int, perf.Estimate]], name: str, dash: str | None = None
) -> go.Scatter:
    """A line of estimates with their intervals as asymmetric error bars."""
    return go.Scatter(
        x=[i for i, _ in points],
        y=[e.value for _, e in points],
        error_y={
            "type": "data",
            "symmetric": False,
            "array": [(e.high if e.high is not None else e.value) - e.value for _, e in points],
            "arrayminus": [e.value - (e.low if e.low is not None else e.value) for _, e in points],
        },
        mode="lines+markers",
        line={"dash": dash} if dash else None,
        name=name,
    )


def _performance_figure(result: MonitorResult) -> go.Figure:
    """Measured performance and the CBPE estimate of the same metric, per window."""
    fig = go.Figure()
    measured = [(w.index, w.performance) for w in result.windows if w.performance is not None]
    if measured:
        fig.add_trace(_interval_trace(measured, f"measured {result.metric} (95% bootstrap CI)"))
    estimated = [(w.index, w.estimated) for w in result.windows if w.estimated is not None]
    if estimated:
        name = estimated[0][1].metric
        fig.add_trace(
            _interval_trace(estimated, f"estimated {name} (CBPE, 95% interval)", dash="dot")
        )
        if name != result.metric:
            other = [
                (w.index, w.estimated_measured)
                for w in result.windows
                if w.estimated_measured is not None
            ]
            if other:
                fig.add_trace(_interval_trace(other, f"measured {name} (95% bootstrap CI)"))
    if result.reference_score is not None:
        fig.add_hline(y=result.reference_score, line_dash="dash", annotation_text="at training")
    fig.update_layout(
        title="Performance per window: estimated (CBPE, no labels) vs measured (labels)",
        xaxis_title="window",
    )
    return fig


def _prediction_figure(result: MonitorResult) -> go.Figure:
    fig = go.Figure()
    boxes = [w for w in result.windows if w.prediction_quantiles]
    if boxes:
        q = [w.prediction_quantiles or [] for w in boxes]
        fig.add_trace(
            go.Box(
                x=[w.index for w in boxes],
                lowerfence=[v[0] for v in q],
                q1=[v[1] for v in q],
                median=[v[2] for v in q],
                q3=[v[3] for v in q],
                upperfence=[v[4] for v in q],
                name="prediction (5-25-50-75-95%)",
            )
        )
    shared = [w for w in result.windows if w.prediction_shares]
    classes = sorted({c for w in shared for c in w.prediction_shares or {}})
    for cls in classes:
        fig.add_trace(
            go.Bar(
                x=[w.index for w in shared],
                y=[(w.prediction_shares or {}).get(cls, 0.0) for w in shared],
                name=f"predicted {cls}",
            )
        )
    fig.update_layout(
        title="Prediction distribution per window", xaxis_title="window", barmode="stack"
    )
    return fig


def _ops_figure(result: MonitorResult) -> go.Figure:
    fig = go.Figure()
    ws = result.windows
    x = [w.index for w in ws]
    fig.add_trace(go.Scatter(x=x, y=[w.operations.latency_p50_ms for w in ws], name="p50 ms"))
    fig.add_trace(go.Scatter(x=x, y=[w.operations.latency_p95_ms for w in ws], name="p95 ms"))
    fig.add_trace(
        go.Bar(x=x, y=[w.operations.error_rate for w in ws], name="error rate", yaxis="y2")
    )
    for kind in ("unseen_share", "range_share", "missing_share", "any_share"):
        fig.add_trace(
            go.Scatter(x=x, y=[w.quality.get(kind, 0.0) for w in ws], name=kind, yaxis="y2")
        )
    fig.update_layout(
        title="Operations and data quality per window",
        xaxis_title="window",
        yaxis={"title": "latency ms"},
        yaxis2={"title": "share", "overlaying": "y", "side": "right", "range": [0, 1]},
    )
    return fig


def _with_interval(est: perf.Estimate | None) -> str:
    if est is None:
        return "–"
    if est.low is None or est.high is None:
        return f"{est.value:.4g}"
    return f"{est.value:.4g} [{est.low:.3g}, {est.high:.3g}]"


def _windows_table(result: MonitorResult) -> str:
    head = (
        "<tr><th>window</th><th>start</th><th>rows</th><th>labelled</th><th>drifted</th>"
        f"<th>{html.escape(result.metric)}</th><th>drop</th><th>estimated (CBPE)</th>"
        "<th>p50 ms</th><th>errors</th></tr>"
    )
    body = []
    for w in result.windows:
        alarm = bool(w.drifted) or w.performance_alarm or w.estimated_alarm
        score = f"{w.performance.value:.4g}" if w.performance else "–"
        drop = f"{w.performance_drop:+.0%}" if w.performance_drop is not None else "–"
        est = _with_interval(w.estimated)
        drifted = "too small" if w.too_small else (", ".join(w.drifted) or "none")
        p50 = w.operations.latency_p50_ms
        body.append(
            f"<tr class={'alarm' if alarm else ''}><td>{w.index}</td><td>{w.start:%Y-%m-%d %H:%M}"
            f"</td><td>{w.rows}</td><td>{w.labelled}</td><td>{html.escape(drifted)}</td>"
            f"<td>{score}</td><td>{drop}</td><td>{est}</td>"
            f"<td>{'' if p50 is None else f'{p50:.2f}'}</td><td>{w.operations.errors}</td></tr>"
        )
    return f"<table>{head}{''.join(body)}</table>"


def _tests_table(result: MonitorResult) -> str:
    if result.decision_window is None:
        return "<p>No window has enough rows to decide yet.</p>"
    w = next(x for x in result.windows if x.index == result.decision_window)
    head = (
        "<tr><th>feature</th><th>test</th><th>statistic</th><th>p</th><th>p (BH)</th>"
        "<th>effect</th><th>threshold</th><th>PSI</th><th>unseen</th><th>n ref</th>"
        "<th>n cur</th><th>alarm</th></tr>"
    )
    rows = "".join(
        f"<tr class={'alarm' if t.alarm else ''}><td>{html.escape(t.feature)}"
        f"{' (missing share)' if t.kind == 'missing' else ''}</td><td>{t.test}</td>"
        f"<td>{t.statistic:.4g}</td><td>{t.p_value:.3g}</td><td>{t.p_adjusted:.3g}</td>"
        f"<td>{t.effect:.4g} {t.effect_name}</td><td>{t.threshold:g}</td>"
        f"<td>{'' if t.psi is None else f'{t.psi:.3g}'}</td>"
        f"<td>{'' if t.unseen_share is None else f'{t.unseen_share:.1%}'}</td>"
        f"<td>{t.n_reference}</td><td>{t.n_current}</td><td>{'yes' if t.alarm else ''}</td></tr>"
        for t in w.tests
    )
    return (
        f"<p>Decision window {w.index}: an alarm needs a Benjamini-Hochberg adjusted p below "
        f"{result.settings.alpha} <b>and</b> an effect above the threshold; windows need at "
        f"least {result.min_rows} rows.</p><table>{head}{rows}</table>"
    )


def render(result: MonitorResult, alerts: list[dict[str, Any]] | None = None) -> str:
    figures = [
        _drift_figure(result),
        _performance_figure(result),
        _prediction_figure(result),
        _ops_figure(result),
    ]
    charts = "".join(_fig_html(f, i == 0) for i, f in enumerate(figures))
    findings = (
        "".join(
            f"<li><b>{html.escape(f.kind)}</b> ({html.escape(f.window)}): {html.escape(f.message)}</li>"
            for f in result.findings
        )
        or "<li>none</li>"
    )
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in result.notes)
    skipped = "".join(
        f"<li>skipped corrupt log part {html.escape(s['path'])}: {html.escape(s['reason'])}</li>"
        for s in result.skipped_parts
    )
    history = "".join(
        f"<tr><td>{a['at']}</td><td>{html.escape(a['kind'])}</td><td>{html.escape(a['action'])}"
        f"</td><td>{html.escape(a['message'])}</td></tr>"
        for a in alerts or []
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(result.model)}: "
        f"monitoring</title><style>{STYLE}</style></head><body>"
        f"<h1>{html.escape(result.model)} v{result.version}: monitoring</h1>"
        f"<p class=small>generated {result.generated_at:%Y-%m-%d %H:%M:%S} UTC · "
        f"{result.rows} logged rows · {result.labelled_rows} labelled · reference "
        f"{result.reference_rows} training rows · {result.metric} at training "
        f"{result.reference_score if result.reference_score is not None else '–'}</p>"
        f"<h2>Findings</h2><ul>{findings}</ul><ul>{notes}{skipped}</ul>"
        f"<h2>Windows</h2>{_windows_table(result)}"
        f"<h2>Drift tests</h2>{_tests_table(result)}"
        f"<h2>Charts</h2>{charts}"
        f"<h2>Alert history</h2><table><tr><th>at</th><th>kind</th><th>action</th>"
        f"<th>message</th></tr>{history}</table></body></html>"
    )


def write(result: MonitorResult, folder: Path, alerts: list[dict[str, Any]] | None = None) -> Path:
    """Write ``report.html`` and ``monitor.json`` atomically into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in (
        ("report.html", render(result, alerts)),
        ("monitor.json", result.model_dump_json(indent=2)),
    ):
        tmp = folder / f".{name}.tmp"
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(folder / name)
    return folder / "report.html"


__all__ = ["render", "write"]
