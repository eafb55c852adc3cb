"""``clean``: raw table in; cleaned table, removed rows and the report (ledger + contract) out.

Every change is a ledger entry with a row count, every excluded column has a
reason, and every removed row is kept (with its reason) in the removed-rows
table: nothing is dropped silently.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tabpipe.config import CleaningSpec, ColumnDeclaration, Task, TaskOrAuto
from tabpipe.data.cleaning import checks
from tabpipe.data.cleaning.columns import Described, decide_columns, describe_column
from tabpipe.data.cleaning.infer import Fitted, fit_column
from tabpipe.data.cleaning.report import (
    CleaningReport,
    ColumnInfo,
    Finding,
    LedgerEntry,
    TargetSummary,
)
from tabpipe.data.cleaning.target import detect_task, prepare_target
from tabpipe.data.columnwise import map_columns
from tabpipe.data.contract import ColumnContract, DataContract, apply_declaration
from tabpipe.data.rules import category_string
from tabpipe.data.summary import NumericSummary
from tabpipe.errors import SchemaError

ROW_COLUMN = "__row"
REASON_COLUMN = "__reason"
#: rows hashed per task (blocks of a large table are hashed on threads)
_HASH_BLOCK = 1 << 18


@dataclass(frozen=True)
class Cleaned:
    """What :func:`clean_table` returns."""

    rows: pd.DataFrame
    #: the removed rows, each with its original position (``__row``) and ``__reason``
    removed: pd.DataFrame
    report: CleaningReport
    #: statistics of numeric columns of ``rows``, computed while cleaning: only of columns
    #: whose rows and values are exactly those of ``rows`` (the profile reuses them)
    summaries: dict[str, NumericSummary] = field(default_factory=dict)


def clean(
    frame: pd.DataFrame,
    target: str | None,
    task: TaskOrAuto = "auto",
    spec: CleaningSpec | None = None,
    columns: Mapping[str, ColumnDeclaration] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, CleaningReport]:
    """Return (cleaned rows, removed rows with ``__row`` and ``__reason``, report)."""
    result = clean_table(frame, target, task, spec, columns)
    return result.rows, result.removed, result.report


def clean_table(
    frame: pd.DataFrame,
    target: str | None,
    task: TaskOrAuto = "auto",
    spec: CleaningSpec | None = None,
    columns: Mapping[str, ColumnDeclaration] | None = None,
) -> Cleaned:
    """:func:`clean`, with the numeric summaries computed on the way."""
    spec = spec or CleaningSpec()
    decls = dict(columns or {})
    raw = _check_input(frame, target, decls)
    fitted: dict[str, Fitted] = {}
    entries: list[LedgerEntry] = []
    if target is not None:
        fitted[target] = _fit(raw[target], True, spec, decls.get(target))
        entries += fitted[target].entries
    removed = Removals(len(raw))
    resolved: Task = "regression"
    classes: list[str | int | float | bool] | None = None
    summary = TargetSummary()
    findings: list[Finding] = []
    if target is not None:
        resolved, classes, target_dtype, summary, findings = _prepare_target(
            raw, fitted[target], target, task, spec, removed, entries
        )
    keep = removed.kept.copy()
    every = bool(keep.all())

    def fit_one(name: str) -> tuple[Fitted, Described]:
        # rules are fitted on the rows that are learned from; the column is described by the
        # same task while its values are at hand
        fit = _fit(raw[name] if every else raw.loc[keep, name], False, spec, decls.get(name))
        if not every:
            fit.values = fit.values.reindex(raw.index)
        return fit, describe_column(name, fit, raw[name], keep, False, spec)

    names = [str(n) for n in raw.columns if n != target]
    described: dict[str, Described] = {}
    fits = map_columns(fit_one, names, len(raw), cost=lambda name: _text_cost(raw[name]))
    for name, (fit, about) in zip(names, fits, strict=True):
        fitted[name] = fit
        described[name] = about
        entries += fit.entries
    infos, more, summaries = decide_columns(
        raw, fitted, keep, target, resolved, spec, decls, entries, described
    )
    findings += more
    cleaned = pd.DataFrame(  # copy=False: no consolidation copy of the columns into blocks
        {name: _storable(fitted[name].values) for name in raw.columns}, copy=False
    )
    features = [c.name for c in infos if c.role == "feature"]
    duplicates, conflicting = _duplicates(cleaned, keep, features, target, spec, removed, entries)
    _drop_outliers(cleaned, infos, spec, removed, entries)
    if not np.array_equal(removed.kept, keep):  # rows left after the summaries were computed
        summaries = {}
    keep = removed.kept
    if target is not None and not features:
        raise SchemaError(
            "no usable feature columns remain after cleaning; the report lists each column's "
            "reason (declare columns: {NAME: {role: feature}} in the spec to keep one)"
        )
    report = CleaningReport(
        rows_in=len(raw),
        rows_out=int(keep.sum()),
        target=target or "",
        task=resolved,
        classes=classes,
        columns=infos,
        actions=entries,
        duplicate_rows=duplicates,
        rows_set_aside=int((~keep).sum()),
        conflicting_duplicates=conflicting,
        has_target=target is not None,
        target_summary=summary,
        findings=findings,
    )
    report.contract = build_contract(report, fitted, decls)
    # every row kept: a shallow copy (copy-on-write), not a copy of every column
    out = cleaned.copy(deep=False) if keep.all() else cleaned[keep].reset_index(drop=True)
    if target is not None:  # back to the prepared dtype (reindexing made integers float)
        out[target] = out[target].astype(target_dtype)
    return Cleaned(out, _removed_rows(raw, removed), report, summaries)


class Removals:
    """Which rows are removed, and why (the first reason that removed each)."""

    def __init__(self, rows: int) -> None:
        self.kept = np.ones(rows, dtype=bool)
        self.reasons = np.full(rows, "", dtype=object)

    def remove(
        self,
        mask: np.ndarray,
        reason: str,
        entries: list[LedgerEntry],
        column: str | None,
        step: str,
    ) -> int:
        """Remove the rows of ``mask`` not removed yet, with a ledger entry; their count."""
        new = mask & self.kept
        count = int(np.count_nonzero(new))
        if count:
            self.kept[new] = False
            self.reasons[new] = reason
            entries.append(
                LedgerEntry(
                    column=column,
                    step=step,
                    action="remove_rows",
                    rows=count,
                    rows_removed=count,
                    detail=f"{count} row(s) removed: {reason}; listed in the removed-rows file",
                )
            )
        return count


def _text_cost(column: pd.Series) -> float:
    """Text columns cost the most to clean (factorised, each distinct value parsed)."""
    numeric = pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)
    return 0.0 if numeric or pd.api.types.is_datetime64_any_dtype(column) else 1.0


def _prepare_target(
    raw: pd.DataFrame,
    fit: Fitted,
    target: str,
    task: TaskOrAuto,
    spec: CleaningSpec,
    removed: Removals,
    entries: list[LedgerEntry],
) -> tuple[Task, list[str | int | float | bool] | None, Any, TargetSummary, list[Finding]]:
    """Rows without a target removed, the task resolved, the target's values prepared
    (in ``fit``); the task, the classes, the prepared dtype and the target checks."""
    y = fit.values
    missing_target = y.isna().to_numpy()
    if missing_target.all():
        raise SchemaError(
            f"target column {target!r} has no values; every row is missing it "
            "(check the column, or the missing-value markers)"
        )
    removed.remove(missing_target, "missing target", entries, target, "target")
    kept_y = y[~missing_target] if missing_target.any() else y
    resolved = detect_task(kept_y) if task == "auto" else task
    prepared, classes = prepare_target(kept_y, resolved, target)
    fit.values = prepared.reindex(raw.index)
    summary, findings = checks.target_checks(prepared, resolved, spec, int(missing_target.sum()))
    return resolved, classes, prepared.dtype, summary, findings


def _check_input(
    frame: pd.DataFrame, target: str | None, decls: Mapping[str, ColumnDeclaration]
) -> pd.DataFrame:
    names = [str(c) for c in frame.columns]
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise SchemaError(f"column name(s) {twice} appear more than once; rename them")
    if frame.shape[1] == 0:
        raise SchemaError("the table has no columns")
    if len(frame) == 0:
        raise SchemaError("the table has no rows")
    if target is not None and target not in names:
        raise SchemaError(
            f"target column {target!r} not found; the data has columns: {', '.join(names[:50])}"
            + (" ..." if len(names) > 50 else "")
        )
    unknown = sorted(set(decls) - set(names))
    required = [n for n in unknown if decls[n].required]
    if required:
        raise SchemaError(
            f"declared column(s) {required} are not in the data; fix the names under "
            "columns: in the spec, or mark them required: false"
        )
    raw = frame.reset_index(drop=True)
    raw.columns = pd.Index(names)
    return raw


def _fit(
    column: pd.Series, is_target: bool, spec: CleaningSpec, decl: ColumnDeclaration | None
) -> Fitted:
    if not is_target:
        return fit_column(column, spec, decl)
    fitted = fit_column(column, spec, decl)
    if fitted.logical_type in ("boolean", "datetime"):  # keep the user's labels as they are
        fitted = fit_column(column, spec, ColumnDeclaration(type="categorical"))
    return fitted


def _duplicates(
    cleaned: pd.DataFrame,
    keep: np.ndarray,
    features: list[str],
    target: str | None,
    spec: CleaningSpec,
    removed: Removals,
    entries: list[LedgerEntry],
) -> tuple[int, int]:
    """Exact duplicate rows, and rows whose features repeat with another target.

    Equal rows have equal features, so both are looked for only among the rows whose
    feature hash repeats (one hash table over all rows, then small ones).
    """
    rows, feature_rows, target_hash = _row_hashes(cleaned, features, target)
    kept_rows = np.flatnonzero(keep)
    repeated = kept_rows[checks.repeated(feature_rows[kept_rows])]
    exact = np.zeros(len(cleaned), dtype=bool)
    exact[repeated] = pd.Series(rows[repeated]).duplicated().to_numpy()
    count = int(exact.sum())
    if count and spec.duplicates == "drop":
        removed.remove(exact, "exact duplicate of an earlier row", entries, None, "duplicates")
    elif count:
        entries.append(
            LedgerEntry(
                column=None,
                step="duplicates",
                action="report",
                rows=count,
                detail="exact duplicate rows found; kept (cleaning.duplicates: drop removes them)",
            )
        )
    conflicting = 0
    if target is not None:
        clash = np.zeros(len(cleaned), dtype=bool)
        if features and target_hash is not None and repeated.size:
            clash[repeated] = checks.conflicting_rows(feature_rows[repeated], target_hash[repeated])
        conflicting = int(clash.sum())
        if conflicting and spec.conflicting_duplicates == "drop":
            removed.remove(
                clash,
                "same features as another row, different target",
                entries,
                target,
                "duplicates",
            )
        elif conflicting:
            entries.append(
                LedgerEntry(
                    column=target,
                    step="duplicates",
                    action="report_conflicts",
                    rows=conflicting,
                    detail="rows share all feature values with a row of a different target; kept "
                    "(cleaning.conflicting_duplicates: drop removes them)",
                )
            )
    return count, conflicting


def _column_hash(column: pd.Series) -> np.ndarray:
    """64-bit value hashes of one column; numbers and category codes without a hash table."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        keys = column.cat.codes.to_numpy().astype(np.int64).view(np.uint64)
    elif pd.api.types.is_float_dtype(column):
        floats = column.to_numpy(dtype=np.float64) + 0.0  # -0.0 == 0.0
        floats[np.isnan(floats)] = np.nan  # one NaN bit pattern
        keys = floats.view(np.uint64)
    elif pd.api.types.is_integer_dtype(column) or pd.api.types.is_datetime64_any_dtype(column):
        keys = column.to_numpy().view(np.int64).astype(np.int64).view(np.uint64)
    else:
        return np.asarray(pd.util.hash_pandas_object(column, index=False).to_numpy())
    return keys


def _mix(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser, vectorised (uint64 arithmetic wraps around)."""
    with np.errstate(over="ignore"):
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return x


def _row_hashes(
    frame: pd.DataFrame, features: list[str], target: str | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """64-bit row hashes over the features and over all columns (equal rows, equal hashes),
    and the target's value hashes. Column hashes are folded in place, the features first
    (so the hash of the whole row continues from theirs), one block of rows per task."""
    n = len(frame)
    wanted = set(features)
    first = [n for n in frame.columns if n in wanted]
    ordered = first + [n for n in frame.columns if n not in wanted]
    rows = np.zeros(n, dtype=np.uint64)
    feature_rows = np.zeros(n, dtype=np.uint64)
    target_hash = np.zeros(n, dtype=np.uint64) if target is not None else None
    prime = np.uint64(0x100000001B3)

    def block(start: int) -> None:
        stop = min(start + _HASH_BLOCK, n)
        out = rows[start:stop]
        with np.errstate(over="ignore"):
            for i, name in enumerate(ordered):
                if i == len(first):
                    feature_rows[start:stop] = out
                hashed = _column_hash(frame[name].iloc[start:stop])
                out *= prime
                out ^= hashed
                if name == target and target_hash is not None:
                    target_hash[start:stop] = hashed
        if len(ordered) == len(first):
            feature_rows[start:stop] = out
        _mix(out)
        _mix(feature_rows[start:stop])

    map_columns(block, range(0, n, _HASH_BLOCK), n)
    return rows, feature_rows, target_hash


def _drop_outliers(
    cleaned: pd.DataFrame,
    infos: list[ColumnInfo],
    spec: CleaningSpec,
    removed: Removals,
    entries: list[LedgerEntry],
) -> None:
    if spec.outliers != "drop":
        return
    for info in infos:
        rules = info.rules
        if info.role != "feature" or rules is None or rules.kind != "numeric" or not info.outliers:
            continue
        values = cleaned[info.name].to_numpy(dtype=np.float64)
        low = info.minimum if info.minimum is not None else -np.inf
        high = info.maximum if info.maximum is not None else np.inf
        mask = (values < low) | (values > high)
        removed.remove(mask, f"outlier in {info.name!r}", entries, info.name, "outliers")


def build_contract(
    report: CleaningReport, fitted: Mapping[str, Fitted], decls: Mapping[str, ColumnDeclaration]
) -> DataContract:
    """The inferred contract of the cleaned data, with the user's declarations put over it."""
    columns = []
    rows = max(report.rows_out, 1)
    for info in report.columns:
        col = ColumnContract(
            name=info.name,
            logical_type=fitted[info.name].logical_type
            if info.kind != "identifier"
            else "identifier",
            role=info.role,
            required=info.role != "excluded",
            nullable=info.missing > 0,
            missing_share=round(info.missing / rows, 6),
            minimum=info.minimum,
            maximum=info.maximum,
            categories=info.categories,
            formats=info.formats,
            max_length=info.max_length,
            reason=info.reason,
            rules=info.rules,
        )
        if info.kind == "text":
            col = col.model_copy(update={"logical_type": "text"})
        if info.name in decls:
            col = apply_declaration(col, decls[info.name])
        columns.append(col)
    return DataContract(
        target=report.target or None,
        task=report.task if report.has_target else None,
        rows=report.rows_out,
        columns=columns,
    )


def _storable(values: pd.Series) -> pd.Series:
    """A column Parquet can store: numbers, datetimes, or text/None (what the rules output)."""
    return values


def _removed_rows(raw: pd.DataFrame, removed: Removals) -> pd.DataFrame:
    mask = ~removed.kept
    rows = raw[mask].copy()
    for name in rows.columns:
        if rows[name].dtype == object:
            rows[name] = rows[name].map(category_string).astype(object)
    rows.insert(0, REASON_COLUMN, removed.reasons[mask])
    rows.insert(0, ROW_COLUMN, np.flatnonzero(mask))
    return rows.reset_index(drop=True)
