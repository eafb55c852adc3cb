"""The data profile: per-column statistics (vectorised numpy), missing
patterns, correlations, each feature against the target, and train versus test.

Exact counts come from the whole table; the pairwise views (correlations, missing
patterns, feature against target) use a seeded sample of at most ``SAMPLE`` rows.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from pydantic import BaseModel

from tabpipe.data.cleaning import CleaningReport, Finding
from tabpipe.data.columnwise import alongside, map_columns
from tabpipe.data.summary import (
    BINS,
    DISTINCT_SAMPLE,
    NumericSummary,
    finite_values,
    histogram_counts,
    summarise,
)
from tabpipe.eda import pairs

SAMPLE = 50_000
_BINS = BINS
_TOP = 10


class Histogram(BaseModel):
    edges: list[float]
    counts: list[int]


class TopValues(BaseModel):
    values: list[str]
    counts: list[int]
    other: int


class ColumnProfile(BaseModel):
    name: str
    dtype: str
    logical_type: str = ""
    role: str = ""
    count: int
    missing_share: float
    distinct: int
    min: str | None = None
    max: str | None = None
    mean: float | None = None
    std: float | None = None
    q25: float | None = None
    q50: float | None = None
    q75: float | None = None
    skew: float | None = None
    histogram: Histogram | None = None
    top: TopValues | None = None


class Profile(BaseModel):
    rows: int
    columns: list[ColumnProfile]
    memory_bytes: int = 0
    missing_cells: int = 0
    sample_rows: int = 0
    #: rows of each side the train-versus-test view is computed on
    shift_rows: tuple[int, int] = (0, 0)
    #: numeric distinct counts are of the first ``DISTINCT_SAMPLE`` values when rows exceed it
    distinct_sample: int | None = None
    pearson: pairs.Matrix | None = None
    cramers_v: pairs.Matrix | None = None
    missing_patterns: list[pairs.MissingPattern] = []
    target_views: list[pairs.TargetView] = []
    shifts: list[pairs.Shift] = []
    findings: list[Finding] = []


def profile(
    frame: pd.DataFrame,
    report: CleaningReport | None = None,
    *,
    train: pd.DataFrame | None = None,
    test: pd.DataFrame | None = None,
    summaries: Mapping[str, NumericSummary] | None = None,
) -> Profile:
    """Profile a cleaned table; with a cleaning report, add target and train/test views.

    ``summaries`` are statistics of numeric columns of ``frame`` computed earlier (by
    cleaning, on exactly these rows and values); the other columns are summarised here.
    """
    known = summaries or {}
    info = {c.name: c for c in report.columns} if report else {}
    numeric = [
        str(n)
        for n in frame.columns
        if pd.api.types.is_numeric_dtype(frame[n]) and not pd.api.types.is_bool_dtype(frame[n])
    ]
    numbers = set(numeric)

    def one(name: str) -> ColumnProfile:
        col = frame[name]
        missing = int(col.isna().sum())
        base = ColumnProfile(
            name=name,
            dtype=str(col.dtype),
            logical_type=info[name].logical_type if name in info else "",
            role=info[name].role if name in info else "",
            count=len(col) - missing,
            missing_share=missing / max(len(col), 1),
            distinct=0,
        )
        stats = _numeric_stats(col, known.get(name)) if name in numbers else _text_stats(col)
        return base.model_copy(update=stats)

    features = [c.name for c in report.features()] if report else [str(c) for c in frame.columns]

    def sample_views() -> Profile:  # the views drawn from the sample
        sample = frame.sample(SAMPLE, random_state=0) if len(frame) > SAMPLE else frame
        return Profile(
            rows=len(frame),
            columns=[],
            sample_rows=len(sample),
            pearson=pairs.pearson(sample, [n for n in features if n in numeric]),
            cramers_v=pairs.cramers_v(sample, [n for n in features if n not in numeric]),
            missing_patterns=pairs.missing_patterns(sample),
            target_views=pairs.target_views(sample, report)
            if report is not None and report.has_target and report.target in frame
            else [],
        )

    split = train is not None and test is not None and len(train) > 0 and len(test) > 0
    with alongside(sample_views, len(frame)) as views:  # on its own thread on a large table
        columns = map_columns(one, [str(n) for n in frame.columns], len(frame))
        if split and train is not None and test is not None:
            shifts = pairs.shifts(train, test, [f for f in features if f in train and f in test])
        drawn = views()
    prof = drawn.model_copy(
        update={
            "columns": columns,
            "memory_bytes": int(frame.memory_usage(deep=False).sum()),
            "missing_cells": sum(len(frame) - c.count for c in columns),
        }
    )
    if split and train is not None and test is not None:
        prof.shifts = shifts
        prof.shift_rows = (min(len(train), pairs.SHIFT_SAMPLE), min(len(test), pairs.SHIFT_SAMPLE))
    if numeric and len(frame) > DISTINCT_SAMPLE:
        prof.distinct_sample = DISTINCT_SAMPLE
    prof.findings = [*(report.findings if report else []), *_findings(prof, report)]
    return prof


def _numeric_stats(col: pd.Series, summary: NumericSummary | None) -> dict[str, object]:
    """The statistics of a numeric column (``summary``: computed earlier on these values)."""
    if summary is None:
        values = col.to_numpy(dtype=np.float64, na_value=np.nan)
        finite = finite_values(values)
        summary = summarise(finite, values.size, int(np.isnan(values).sum()))
        del finite
    if summary.minimum is None:
        return {"distinct": 0}
    return {
        "min": f"{summary.minimum:.6g}",
        "max": f"{summary.maximum:.6g}",
        "mean": summary.mean,
        "std": summary.std,
        "q25": summary.q25,
        "q50": summary.q50,
        "q75": summary.q75,
        "skew": summary.skew,
        "distinct": summary.distinct_head,
        "histogram": Histogram(edges=list(summary.edges), counts=list(summary.counts)),
    }


def histogram(values: np.ndarray, bins: int = _BINS) -> Histogram | None:
    """Equal-width bins; one bar per value for a few small integers."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return None
    edges, counts = histogram_counts(finite, float(finite.min()), float(finite.max()), bins)
    return Histogram(edges=edges, counts=counts)


def _text_stats(col: pd.Series) -> dict[str, object]:
    if pd.api.types.is_datetime64_any_dtype(col):
        present = col.dropna()
        return {
            "distinct": int(present.nunique()),
            "min": str(present.min()) if len(present) else None,
            "max": str(present.max()) if len(present) else None,
        }
    counts = col.value_counts(dropna=True)
    counts = counts[counts > 0]
    top = counts.head(_TOP)
    return {
        "distinct": len(counts),
        "top": TopValues(
            values=[str(v)[:60] for v in top.index],
            counts=[int(c) for c in top.to_numpy()],
            other=int(counts.sum() - top.sum()),
        )
        if len(counts)
        else None,
    }


def _findings(prof: Profile, report: CleaningReport | None) -> list[Finding]:
    out = []
    info = {c.name: c for c in report.columns} if report else {}
    for col in prof.columns:
        role = info[col.name].role if col.name in info else "feature"
        if role != "feature":
            continue
        if col.top is not None and col.distinct > 50:
            out.append(
                Finding(
                    column=col.name,
                    kind="high_cardinality",
                    severity="warning",
                    message=f"{col.distinct} distinct values: high cardinality",
                )
            )
        if col.skew is not None and abs(col.skew) > 2:
            out.append(
                Finding(
                    column=col.name,
                    kind="skew",
                    severity="info",
                    message=f"skewed distribution (skewness {col.skew:.1f})",
                )
            )
        if col.missing_share > 0.3:
            out.append(
                Finding(
                    column=col.name,
                    kind="missing",
                    severity="warning",
                    message=f"{col.missing_share:.0%} of values missing",
                )
            )
    for shift in prof.shifts:
        if shift.psi > 0.2:
            out.append(
                Finding(
                    column=shift.column,
                    kind="train_test_shift",
                    severity="warning",
                    message=f"train and test differ (PSI {shift.psi:.2f})",
                )
            )
    for item in info.values():
        if item.role == "excluded":
            out.append(
                Finding(
                    column=item.name,
                    kind="excluded",
                    severity="info",
                    message=f"excluded: {item.reason}",
                )
            )
    return out


def _num(value: object) -> float | None:
    if value is None:
        return None
    number = float(str(value))
    return number if np.isfinite(number) else None
