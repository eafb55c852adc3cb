"""Summary statistics of a table (DuckDB ``SUMMARIZE``) and a small HTML page."""

from __future__ import annotations

import html
import math

import duckdb
import pandas as pd
from pydantic import BaseModel

from tabpipe.data.cleaning import CleaningReport


class ColumnProfile(BaseModel):
    name: str
    dtype: str
    count: int
    missing_share: float
    distinct: int
    min: str | None
    max: str | None
    mean: float | None
    std: float | None
    q25: str | None
    q50: str | None
    q75: str | None


class Profile(BaseModel):
    rows: int
    columns: list[ColumnProfile]


def profile(frame: pd.DataFrame) -> Profile:
    """Per-column statistics computed by DuckDB in one vectorised pass."""
    with duckdb.connect(":memory:") as con:
        con.register("frame", frame)
        stats = con.execute("SUMMARIZE frame").df()
    columns = [
        ColumnProfile(
            name=str(row["column_name"]),
            dtype=str(row["column_type"]),
            count=int(row["count"]),
            missing_share=float(row["null_percentage"]) / 100.0,
            distinct=int(row["approx_unique"]),
            min=_text(row["min"]),
            max=_text(row["max"]),
            mean=_number(row["avg"]),
            std=_number(row["std"]),
            q25=_text(row["q25"]),
            q50=_text(row["q50"]),
            q75=_text(row["q75"]),
        )
        for _, row in stats.iterrows()
    ]
    return Profile(rows=len(frame), columns=columns)


def render_html(prof: Profile, report: CleaningReport, title: str) -> str:
    """A small self-contained page: overview, cleaning actions, per-column table."""
    roles = {c.name: (c.kind, c.role, c.reason or "") for c in report.columns}
    head = (
        "<tr><th>column</th><th>kind</th><th>role</th><th>type</th><th>missing</th>"
        "<th>distinct</th><th>min</th><th>median</th><th>max</th><th>mean</th><th>note</th></tr>"
    )
    rows = []
    for col in prof.columns:
        kind, role, reason = roles.get(col.name, ("", "", ""))
        cells = [
            col.name,
            kind,
            role,
            col.dtype,
            f"{col.missing_share:.1%}",
            str(col.distinct),
            col.min or "",
            col.q50 or "",
            col.max or "",
            "" if col.mean is None else f"{col.mean:.4g}",
            reason,
        ]
        rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    acts = (
        "".join(
            f"<li><b>{html.escape(a.column or 'all columns')}</b>: {html.escape(a.action)} "
            f"({a.rows} rows) — {html.escape(a.detail)}</li>"
            for a in report.actions
        )
        or "<li>no changes</li>"
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:system-ui,sans-serif;margin:2rem;color:#222}}
table{{border-collapse:collapse;font-size:.9rem}}td,th{{border:1px solid #ddd;padding:.3rem .5rem}}
th{{background:#f3f3f3}}</style></head><body>
<h1>{html.escape(title)}</h1>
<p>{report.rows_in} rows read, {report.rows_out} used, {report.rows_set_aside} set aside;
task <b>{report.task}</b>, target <b>{html.escape(report.target)}</b>;
{report.duplicate_rows} duplicate rows.</p>
<h2>Cleaning</h2><ul>{acts}</ul>
<h2>Columns</h2><table>{head}{"".join(rows)}</table>
</body></html>"""


def _text(value: object) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value)


def _number(value: object) -> float | None:
    if value is None:
        return None
    try:
        number = float(str(value))
    except ValueError:
        return None
    return None if math.isnan(number) else number
