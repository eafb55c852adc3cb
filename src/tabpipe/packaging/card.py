"""The model card: intended use, lineage, cleaning summary, metrics, importance, limitations.

Written as Markdown and as one self-contained HTML page (plotly charts with the
JavaScript inlined, so it opens offline).
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from tabpipe.errors import TabpipeError
from tabpipe.packaging.bundle import Manifest


def feature_importance(bundle: Path, manifest: Manifest) -> dict[str, float]:
    """Importance per input column (encoded columns summed), normalised to sum to 1.

    Split importance for tree models, |coefficient| for linear ones; for a weighted
    ensemble, the members' importances weighted like their predictions. Empty when
    no member exposes either.
    """
    from tabpipe.packaging import persist
    from tabpipe.serving.explain import base_model

    pipeline = base_model(persist.load(bundle / "pipeline.skops"))
    names = manifest.signature.names
    members = getattr(pipeline, "estimators_", None)
    weights = getattr(pipeline, "weights_", None)
    if members is None or weights is None:
        return _sorted(_importance(pipeline, names))
    combined = dict.fromkeys(names, 0.0)
    used = 0.0
    for weight, member in zip(weights, members, strict=True):
        part = _importance(member, names)
        if part:
            used += float(weight)
            for name, value in part.items():
                combined[name] += float(weight) * value
    if used == 0.0:
        return {}
    return _sorted({name: value / used for name, value in combined.items()})


def _importance(pipeline: Any, names: list[str]) -> dict[str, float]:
    import numpy as np

    from tabpipe.serving.explain import _groups_safe

    steps = getattr(pipeline, "steps", None)
    if not steps:
        return {}
    model = steps[-1][1]
    raw = getattr(model, "feature_importances_", None)
    if raw is None and hasattr(model, "coef_"):
        raw = np.abs(np.atleast_2d(model.coef_)).sum(axis=0)
    if raw is None:
        return {}
    try:
        owners = _groups_safe(steps[0][1], names)
    except TabpipeError:
        return {}
    values = np.asarray(raw, dtype=np.float64)
    if len(values) != len(owners):
        return {}
    total = float(values.sum()) or 1.0
    summed = dict.fromkeys(names, 0.0)
    for owner, value in zip(owners, values.tolist(), strict=True):
        summed[owner] += value / total
    return summed


def _sorted(values: dict[str, float]) -> dict[str, float]:
    return dict(sorted(values.items(), key=lambda kv: -kv[1]))


def card_sections(
    manifest: Manifest, importance: dict[str, float], context: dict[str, Any]
) -> list[tuple[str, list[str]]]:
    """(title, markdown lines) per section; shared by the Markdown and HTML renderings."""
    m = manifest
    task = {"binary": "binary classification", "multiclass": "multiclass classification"}.get(
        m.task, "regression"
    )
    classes = f" Classes: {', '.join(map(str, m.classes or []))}." if m.classes else ""
    lineage = [
        f"- snapshot: `{m.lineage.snapshot_id}`",
        f"- run: `{m.lineage.run_id}`",
        f"- pipeline spec hash: `{m.lineage.spec_hash}`",
        f"- seed: {m.seed}",
        f"- created: {m.created_at:%Y-%m-%d %H:%M} UTC",
        f"- libraries: {', '.join(f'{k} {v}' for k, v in m.library_versions.items())}",
    ]
    if "version" in context:
        lineage.insert(0, f"- registered version: {context['version']}")
    cleaning = context.get("cleaning")
    ledger = ["No cleaning report was found for this run."]
    if cleaning is not None:
        ledger = [
            f"- rows in: {cleaning.rows_in}, rows used: {cleaning.rows_out}, duplicates: "
            f"{cleaning.duplicate_rows}, set aside: {cleaning.rows_set_aside}",
            *(
                f"- {a.column or '(table)'}: {a.action}, {a.rows} rows — {a.detail}"
                for a in cleaning.actions
            ),
        ]
    metrics = [
        f"- selection metric: {m.metric}; validation score {m.validation_score:.4f}",
        *(f"- test {k}: {v:.4f}" for k, v in m.test_metrics.items()),
        f"- ONNX parity on {m.parity.rows} test rows: max difference {m.parity.max_difference:.2e} "
        f"(tolerance {m.parity.tolerance:g})",
    ]
    imp = [f"- {k}: {v:.3f}" for k, v in importance.items()] or [
        "The model exposes no feature importance."
    ]
    ranges = [
        f"- {c.name}: trained on {c.minimum:g} to {c.maximum:g}"
        for c in m.signature.columns
        if c.kind == "numeric" and c.minimum is not None and c.maximum is not None
    ]
    limits = [
        "- The model has only seen the data of the snapshot above; predictions for populations "
        "or periods unlike it are not validated.",
        "- Values outside the training ranges are answered but counted and warned:",
        *ranges,
        f"- Unseen categories: policy `{m.signature.unseen_categories}` (encoded as unknown and "
        "counted, or refused).",
        "- Per-feature contributions: "
        + ("available (tree SHAP)." if m.contributions else "not available for this model."),
    ]
    return [
        (
            "Intended use",
            [
                f"`{m.name}` predicts `{m.target}` ({task}) from {len(m.signature.columns)} input "
                f"columns with a {m.family} pipeline.{classes} It is meant for decision support on "
                "data like its training data; it was not audited for fairness or for high-stakes use.",
            ],
        ),
        ("Data lineage", lineage),
        ("Cleaning ledger", ledger),
        ("Metrics", metrics),
        ("Feature importance", imp),
        ("Limitations", limits),
    ]


def to_markdown(title: str, sections: list[tuple[str, list[str]]]) -> str:
    parts = [f"# {title}", ""]
    for heading, lines in sections:
        parts += [f"## {heading}", "", *lines, ""]
    return "\n".join(parts)


def _charts(manifest: Manifest, importance: dict[str, float]) -> dict[str, str]:
    import plotly.graph_objects as go

    charts: dict[str, str] = {}
    first = True
    if manifest.test_metrics:
        fig = go.Figure(
            go.Bar(x=list(manifest.test_metrics), y=list(manifest.test_metrics.values()))
        )
        fig.update_layout(title="Test metrics", height=320, margin={"t": 40, "b": 40})
        charts["Metrics"] = fig.to_html(full_html=False, include_plotlyjs=first)
        first = False
    if importance:
        names = list(importance)[::-1]
        fig = go.Figure(go.Bar(x=[importance[n] for n in names], y=names, orientation="h"))
        fig.update_layout(
            title="Feature importance", height=120 + 22 * len(names), margin={"t": 40, "l": 120}
        )
        charts["Feature importance"] = fig.to_html(full_html=False, include_plotlyjs=first)
    return charts


def to_html(title: str, sections: list[tuple[str, list[str]]], charts: dict[str, str]) -> str:
    body = [f"<h1>{html.escape(title)}</h1>"]
    for heading, lines in sections:
        body.append(f"<h2>{html.escape(heading)}</h2>")
        items = [ln[2:] for ln in lines if ln.startswith("- ")]
        if items and len(items) == len(lines):
            body.append("<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in items) + "</ul>")
        else:
            body += [f"<p>{html.escape(ln)}</p>" for ln in lines]
        if heading in charts:
            body.append(charts[heading])
    style = "body{font-family:sans-serif;max-width:960px;margin:2em auto;line-height:1.4}"
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{style}</style></head><body>{''.join(body)}</body></html>"
    )


def write_card(bundle: Path, manifest: Manifest, out: Path, context: dict[str, Any]) -> None:
    importance = feature_importance(bundle, manifest)
    title = f"Model card: {manifest.name}"
    sections = card_sections(manifest, importance, context)
    (out / "model_card.md").write_text(to_markdown(title, sections), encoding="utf-8")
    html_text = to_html(title, sections, _charts(manifest, importance))
    (out / "model_card.html").write_text(html_text, encoding="utf-8")
