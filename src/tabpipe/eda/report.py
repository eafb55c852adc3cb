"""The self-contained HTML data report (plotly JS inlined: opens offline, no CDN)."""

from __future__ import annotations

import html
from datetime import UTC, datetime

from plotly.offline import get_plotlyjs

from tabpipe.data.cleaning import CleaningReport
from tabpipe.eda import charts
from tabpipe.eda.profile import ColumnProfile, Profile

MAX_COLUMN_CARDS = 60
MAX_TABLE_ROWS = 500
_CSS = """
:root{--ink:#111827;--muted:#6b7280;--line:#e5e7eb;--bg:#f8fafc;--card:#fff;--accent:#4f46e5}
*{box-sizing:border-box}body{margin:0;font:14px/1.5 Inter,system-ui,-apple-system,'Segoe UI',sans-serif;color:var(--ink);background:var(--bg)}
header{background:linear-gradient(120deg,#312e81,#4f46e5 60%,#6366f1);color:#fff;padding:28px 40px 22px}
header h1{margin:0 0 4px;font-size:26px;font-weight:650}header p{margin:0;opacity:.85}
nav{position:sticky;top:0;z-index:5;background:#fff;border-bottom:1px solid var(--line);padding:0 40px;display:flex;gap:4px;flex-wrap:wrap}
nav a{color:var(--muted);text-decoration:none;padding:10px 12px;font-weight:500;border-bottom:2px solid transparent}
nav a:hover{color:var(--accent);border-color:var(--accent)}
main{padding:8px 40px 60px;max-width:1500px}section{margin-top:28px}
h2{font-size:19px;margin:0 0 12px;font-weight:650}h3{font-size:15px;margin:0 0 6px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:12px}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:14px 16px;box-shadow:0 1px 2px rgba(0,0,0,.03)}
.card .v{font-size:22px;font-weight:650}.card .k{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.panel{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:14px 16px;overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:13px}th{text-align:left;color:var(--muted);font-weight:600;border-bottom:2px solid var(--line);padding:6px 8px;white-space:nowrap}
td{border-bottom:1px solid var(--line);padding:6px 8px;vertical-align:top}tr:hover td{background:#f9fafb}
.num{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;border-radius:999px;padding:1px 9px;font-size:11px;font-weight:600}
.error{background:#fee2e2;color:#b91c1c}.warning{background:#fef3c7;color:#92400e}.info{background:#e0e7ff;color:#3730a3}
.feature{background:#dcfce7;color:#166534}.excluded{background:#f3f4f6;color:#4b5563}.target{background:#ede9fe;color:#5b21b6}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));gap:14px}
.grid2{display:grid;grid-template-columns:repeat(auto-fit,minmax(480px,1fr));gap:14px}
.col .stats{display:grid;grid-template-columns:1fr 1fr;gap:0 12px;font-size:12px;color:var(--muted)}
.col .stats b{color:var(--ink);font-weight:600}.note{color:var(--muted);font-size:12px;margin:6px 0 0}
code{background:#f3f4f6;border-radius:4px;padding:0 4px;font-size:12px}
"""


def render_html(
    prof: Profile,
    report: CleaningReport,
    title: str,
    extra: list[tuple[str, str]] | None = None,
) -> str:
    """The whole page; ``extra`` adds (heading, html) sections after the overview."""
    sections = [
        ("overview", "Overview", _overview(prof, report)),
        *((f"extra{i}", head, body) for i, (head, body) in enumerate(extra or [])),
        ("warnings", "Warnings", _warnings(prof)),
        ("contract", "Contract", _contract(report)),
        ("ledger", "Cleaning ledger", _ledger(report)),
        ("columns", "Columns", _columns(prof)),
        ("missing", "Missing values", _missing(prof)),
        ("correlations", "Correlations", _correlations(prof)),
        ("target", "Features vs target", _target(prof, report)),
        ("shift", "Train vs test", _shift(prof)),
    ]
    nav = "".join(f'<a href="#{key}">{html.escape(head)}</a>' for key, head, _ in sections)
    body = "".join(
        f'<section id="{key}"><h2>{html.escape(head)}</h2>{content}</section>'
        for key, head, content in sections
    )
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    subtitle = (
        f"{prof.rows:,} rows × {len(prof.columns):,} columns"
        + (
            f" · target <b>{html.escape(report.target)}</b> ({report.task})"
            if report.has_target
            else ""
        )
        + f" · generated {stamp} by tabpipe"
    )
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<style>{_CSS}</style></head><body>"
        f"<header><h1>{html.escape(title)}</h1><p>{subtitle}</p></header><nav>{nav}</nav>"
        f"<main>{body}</main>"
        # plotly.js last: the page shows while it parses; charts draw on DOMContentLoaded
        f"<script>{get_plotlyjs()}</script></body></html>"
    )


def _overview(prof: Profile, report: CleaningReport) -> str:
    cells = max(prof.rows * max(len(prof.columns), 1), 1)
    features = len(report.features())
    cards = [
        ("rows read", f"{report.rows_in:,}"),
        ("rows used", f"{report.rows_out:,}"),
        ("rows removed", f"{report.rows_set_aside:,}"),
        ("columns", f"{len(report.columns):,}"),
        ("features", f"{features:,}"),
        ("excluded", f"{len(report.columns) - features - int(report.has_target):,}"),
        ("missing cells", _share(prof.missing_cells / cells)),
        ("duplicate rows", f"{report.duplicate_rows:,}"),
        ("ledger entries", f"{len(report.actions):,}"),
    ]
    if report.has_target:
        cards.append(("task", report.task))
        if report.target_summary.imbalance_ratio is not None:
            cards.append(("class imbalance", f"{report.target_summary.imbalance_ratio:.1f}×"))
    inner = "".join(
        f'<div class="card"><div class="k">{k}</div><div class="v">{html.escape(v)}</div></div>'
        for k, v in cards
    )
    return f'<div class="cards">{inner}</div>'


def _warnings(prof: Profile) -> str:
    order = {"error": 0, "warning": 1, "info": 2}
    items = sorted(prof.findings, key=lambda f: order[f.severity])
    if not items:
        return '<div class="panel">No warnings.</div>'
    rows = "".join(
        f'<tr><td><span class="badge {f.severity}">{f.severity}</span></td>'
        f"<td>{html.escape(f.column or 'table')}</td><td>{html.escape(f.kind)}</td><td>{html.escape(f.message)}</td></tr>"
        for f in items[:MAX_TABLE_ROWS]
    )
    return f'<div class="panel"><table><tr><th>severity</th><th>column</th><th>kind</th><th>message</th></tr>{rows}</table>{_cut(len(items))}</div>'


def _contract(report: CleaningReport) -> str:
    if report.contract is None:
        return '<div class="panel">No contract.</div>'
    rows = []
    for c in report.contract.columns[:MAX_TABLE_ROWS]:
        if c.minimum is not None or c.maximum is not None:
            allowed = f"{_g(c.minimum)} … {_g(c.maximum)}"
        elif c.categories is not None:
            shown = ", ".join(c.categories[:8])
            allowed = f"{shown}{' …' if len(c.categories) > 8 else ''} ({len(c.categories)})"
        else:
            allowed = ""
        declared = (
            f' <span class="badge info">declared: {html.escape(", ".join(c.declared))}</span>'
            if c.declared
            else ""
        )
        rows.append(
            f"<tr><td><b>{html.escape(c.name)}</b>{declared}</td><td>{c.logical_type}</td>"
            f'<td><span class="badge {c.role}">{c.role}</span></td>'
            f"<td>{'yes' if c.nullable else 'no'}</td><td class=num>{c.missing_share:.1%}</td>"
            f"<td>{html.escape(allowed)}</td><td>{html.escape(', '.join(c.formats))}</td>"
            f"<td>{html.escape(c.reason or '')}</td></tr>"
        )
    head = "<tr><th>column</th><th>type</th><th>role</th><th>nullable</th><th>missing</th><th>range / categories</th><th>formats</th><th>reason</th></tr>"
    return f'<div class="panel"><table>{head}{"".join(rows)}</table>{_cut(len(report.contract.columns))}</div>'


def _ledger(report: CleaningReport) -> str:
    if not report.actions:
        return '<div class="panel">Nothing needed cleaning.</div>'
    rows = "".join(
        f"<tr><td>{html.escape(a.column or 'all columns')}</td><td>{html.escape(a.step)}</td>"
        f"<td>{html.escape(a.action)}</td><td class=num>{a.rows:,}</td><td class=num>{a.rows_removed:,}</td>"
        f"<td>{html.escape(a.detail)}</td></tr>"
        for a in report.actions[:MAX_TABLE_ROWS]
    )
    head = "<tr><th>column</th><th>step</th><th>action</th><th>rows</th><th>removed</th><th>detail</th></tr>"
    note = (
        f'<p class="note">{report.rows_set_aside:,} removed row(s) are kept with their reason in the '
        "removed-rows file.</p>"
    )
    return f'<div class="panel"><table>{head}{rows}</table>{_cut(len(report.actions))}{note}</div>'


def _columns(prof: Profile) -> str:
    cards = [_column_card(c) for c in prof.columns[:MAX_COLUMN_CARDS]]
    note = ""
    if len(prof.columns) > MAX_COLUMN_CARDS:
        note = f'<p class="note">The first {MAX_COLUMN_CARDS} of {len(prof.columns):,} columns are shown; profile.json holds all.</p>'
    if prof.distinct_sample:
        note += (
            f'<p class="note">Distinct counts of numeric columns are of their first '
            f"{prof.distinct_sample:,} values; every other statistic uses all rows.</p>"
        )
    return f'<div class="grid">{"".join(cards)}</div>{note}'


def _column_card(col: ColumnProfile) -> str:
    stats = [
        ("present", f"{col.count:,}"),
        ("missing", f"{col.missing_share:.1%}"),
        ("distinct", f"{col.distinct:,}"),
    ]
    if col.mean is not None:
        stats += [
            ("mean", _g(col.mean)),
            ("std", _g(col.std)),
            ("min", col.min or ""),
            ("max", col.max or ""),
            ("median", _g(col.q50)),
            ("skew", _g(col.skew)),
        ]
    elif col.min is not None:
        stats += [("min", col.min), ("max", col.max or "")]
    chart = charts.column_chart(col) or ""
    badge = f'<span class="badge {col.role}">{col.role}</span>' if col.role else ""
    grid = "".join(f"<span>{k} <b>{html.escape(str(v))}</b></span>" for k, v in stats)
    return (
        f'<div class="card col"><h3>{html.escape(col.name)} {badge}</h3>'
        f'<div class="note">{html.escape(col.logical_type or col.dtype)}</div>'
        f'<div class="stats">{grid}</div>{chart}</div>'
    )


def _missing(prof: Profile) -> str:
    missing = [c for c in prof.columns if c.missing_share > 0]
    if not missing:
        return '<div class="panel">No missing values.</div>'
    missing.sort(key=lambda c: -c.missing_share)
    bars = charts.missing_bars(
        [c.name for c in missing[:60]], [c.missing_share for c in missing[:60]]
    )
    patterns = ""
    if prof.missing_patterns:
        cols = sorted({c for p in prof.missing_patterns for c in p.columns})
        patterns = (
            "<h3>Most common patterns (red = missing together)</h3>"
            + charts.missing_pattern_chart(prof.missing_patterns, cols)
        )
    return f'<div class="grid2"><div class="panel"><h3>Share missing per column</h3>{bars}</div><div class="panel">{patterns}</div></div>{_sampled(prof, "Patterns")}'


def _correlations(prof: Profile) -> str:
    parts = []
    if prof.pearson:
        parts.append(
            f'<div class="panel">{charts.heatmap(prof.pearson, "numeric features: Pearson correlation", -1)}</div>'
        )
    if prof.cramers_v:
        parts.append(
            f'<div class="panel">{charts.heatmap(prof.cramers_v, "categorical features: Cramér V association", 0)}</div>'
        )
    if not parts:
        return '<div class="panel">Too few features to correlate.</div>'
    return f'<div class="grid2">{"".join(parts)}</div>{_sampled(prof, "Correlations")}'


def _target(prof: Profile, report: CleaningReport) -> str:
    if not report.has_target:
        return '<div class="panel">No target given (<code>--target</code>).</div>'
    if not prof.target_views:
        return '<div class="panel">No features to show.</div>'
    figures = "".join(
        f'<div class="panel">{charts.target_chart(v)}</div>' for v in prof.target_views
    )
    return (
        f'<p class="note">The strongest single features first (score: how well the feature alone '
        f'predicts <b>{html.escape(report.target)}</b>, 0 to 1).</p><div class="grid2">{figures}</div>'
        + _sampled(prof, "These views are")
    )


def _shift(prof: Profile) -> str:
    if not prof.shifts:
        return '<div class="panel">No train/test split to compare.</div>'
    top = "".join(f'<div class="panel">{charts.shift_chart(s)}</div>' for s in prof.shifts[:6])
    train, test = prof.shift_rows
    note = f'<p class="note">Computed on {train:,} training and {test:,} test rows.</p>'
    return f'<div class="panel">{charts.psi_bars(prof.shifts)}</div><div class="grid2" style="margin-top:14px">{top}</div>{note}'


def _sampled(prof: Profile, what: str) -> str:
    """The note under a view computed on the seeded sample (none when it is every row)."""
    if prof.sample_rows >= prof.rows:
        return ""
    return (
        f'<p class="note">{what} computed on a seeded sample of {prof.sample_rows:,} of '
        f"{prof.rows:,} rows.</p>"
    )


def _cut(total: int) -> str:
    if total <= MAX_TABLE_ROWS:
        return ""
    return (
        f'<p class="note">First {MAX_TABLE_ROWS} of {total:,} shown; the JSON files hold all.</p>'
    )


def _share(value: float) -> str:
    return f"{value:.2%}" if 0 < value < 0.001 else f"{value:.1%}"


def _g(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"
