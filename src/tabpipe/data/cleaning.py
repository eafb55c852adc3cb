"""Schema inference and basic cleaning, with every decision counted in a report.

Nothing is dropped silently: rows set aside (missing target) are counted and
kept in a separate table, columns excluded from the features carry a reason.
"""

from __future__ import annotations

import re
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel

from tabpipe.config import Task, TaskOrAuto
from tabpipe.errors import SchemaError

ColumnKind = Literal[
    "numeric", "categorical", "identifier", "text", "constant", "empty", "datetime"
]

#: Strings that mean "missing" in raw files.
MISSING_MARKERS = frozenset({"", "?", "na", "n/a", "nan", "null", "none", "-", "--"})
_NUMERIC_SHARE = 0.98
_ID_NAME = re.compile(r"(^|_)(id|key|uuid)$|id$", re.IGNORECASE)
_MAX_CATEGORIES = 200


class ColumnInfo(BaseModel):
    """What cleaning learned about one column and what it decided."""

    name: str
    kind: ColumnKind
    raw_dtype: str
    role: Literal["feature", "target", "excluded"]
    reason: str | None = None
    missing: int = 0
    unique: int = 0
    categories: list[str] | None = None
    minimum: float | None = None
    maximum: float | None = None
    median: float | None = None


class CleaningAction(BaseModel):
    """One recorded decision: what was done to which column, to how many rows."""

    column: str | None
    action: str
    rows: int
    detail: str


class CleaningReport(BaseModel):
    rows_in: int
    rows_out: int
    target: str
    task: Task
    classes: list[str | int | float | bool] | None
    columns: list[ColumnInfo]
    actions: list[CleaningAction]
    duplicate_rows: int
    rows_set_aside: int

    def features(self) -> list[ColumnInfo]:
        return [c for c in self.columns if c.role == "feature"]


def clean(
    frame: pd.DataFrame, target: str, task: TaskOrAuto
) -> tuple[pd.DataFrame, pd.DataFrame, CleaningReport]:
    """Return (cleaned rows, rows set aside, report)."""
    if target not in frame.columns:
        raise SchemaError(
            f"target column {target!r} not found; the data has columns: "
            f"{', '.join(map(str, frame.columns))}"
        )
    actions: list[CleaningAction] = []
    frame = frame.copy()
    for name in frame.columns:
        frame[name] = _normalise_missing(frame[name], name, actions)
    y = frame[target]
    missing_target = y.isna()
    aside = frame[missing_target]
    if int(missing_target.sum()):
        actions.append(
            CleaningAction(
                column=target,
                action="set_aside_missing_target",
                rows=int(missing_target.sum()),
                detail="rows without a target cannot be learned from; kept in rows_set_aside",
            )
        )
    frame = frame[~missing_target].reset_index(drop=True)
    if frame.empty:
        raise SchemaError(f"target column {target!r} has no values; every row is missing it")
    resolved = detect_task(frame[target]) if task == "auto" else task
    frame[target], classes = _prepare_target(frame[target], resolved, target)
    columns = [_describe(frame, name, target, actions) for name in frame.columns]
    features = [c.name for c in columns if c.role == "feature"]
    if not features:
        raise SchemaError(
            "no usable feature columns remain after cleaning; see the report's reasons"
        )
    duplicates = int(frame.duplicated().sum())
    if duplicates:
        actions.append(
            CleaningAction(
                column=None,
                action="report_duplicates",
                rows=duplicates,
                detail="exact duplicate rows found; kept (set a policy to drop them)",
            )
        )
    report = CleaningReport(
        rows_in=len(frame) + len(aside),
        rows_out=len(frame),
        target=target,
        task=resolved,
        classes=classes,
        columns=columns,
        actions=actions,
        duplicate_rows=duplicates,
        rows_set_aside=len(aside),
    )
    return frame, aside.reset_index(drop=True), report


def detect_task(y: pd.Series) -> Task:
    """binary for two values, multiclass for labels or few integer codes, else regression."""
    distinct = y.nunique(dropna=True)
    if distinct <= 1:
        raise SchemaError(
            f"target column {y.name!r} holds a single value ({y.dropna().iloc[0]!r}); "
            "a model needs at least two classes or varying numbers"
        )
    if distinct == 2:
        return "binary"
    if not pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y):
        return "multiclass"
    values = y.to_numpy(dtype=float)
    if np.all(np.mod(values, 1) == 0) and distinct <= 10 and len(y) >= 20 * distinct:
        return "multiclass"
    return "regression"


def _prepare_target(
    y: pd.Series, task: Task, name: str
) -> tuple[pd.Series, list[str | int | float | bool] | None]:
    if task == "regression":
        numeric = pd.to_numeric(y, errors="coerce")
        bad = int(numeric.isna().sum())
        if bad:
            example = y[numeric.isna()].iloc[0]
            raise SchemaError(
                f"target column {name!r} is not numeric for regression: {bad} values such as "
                f"{example!r}; set task to binary or multiclass, or fix the values"
            )
        return numeric.astype("float64"), None
    if y.nunique() < 2:
        raise SchemaError(f"target column {name!r} holds a single class; need at least two")
    if pd.api.types.is_float_dtype(y) and np.all(np.mod(y.to_numpy(), 1) == 0):
        y = y.astype("int64")
    if not pd.api.types.is_numeric_dtype(y):
        y = y.astype(str)
    classes = sorted(y.unique().tolist())
    return y, [c.item() if isinstance(c, np.generic) else c for c in classes]


def _normalise_missing(column: pd.Series, name: str, actions: list[CleaningAction]) -> pd.Series:
    if not (pd.api.types.is_object_dtype(column) or pd.api.types.is_string_dtype(column)):
        return column
    text = column.astype("string")
    stripped = text.str.strip()
    markers = stripped.str.lower().isin(MISSING_MARKERS) & text.notna()
    count = int(markers.sum())
    if count:
        found = sorted(set(text[markers].dropna().tolist()))[:5]
        actions.append(
            CleaningAction(
                column=name,
                action="missing_markers",
                rows=count,
                detail=f"values {found} read as missing",
            )
        )
    result = stripped.mask(markers)
    return result.astype(object).where(result.notna(), None)


def _describe(
    frame: pd.DataFrame, name: str, target: str, actions: list[CleaningAction]
) -> ColumnInfo:
    column = frame[name]
    raw_dtype = str(column.dtype)
    if name == target:
        return ColumnInfo(
            name=name,
            kind=_target_kind(column),
            raw_dtype=raw_dtype,
            role="target",
            missing=0,
            unique=int(column.nunique()),
        )
    if column.dtype == object or pd.api.types.is_string_dtype(column):
        column = _maybe_numeric(frame, name, actions)
    missing = int(column.isna().sum())
    unique = int(column.nunique(dropna=True))
    base = {"name": name, "raw_dtype": raw_dtype, "missing": missing, "unique": unique}
    if unique == 0:
        return ColumnInfo(**base, kind="empty", role="excluded", reason="every value is missing")
    if unique == 1:
        return ColumnInfo(
            **base,
            kind="constant",
            role="excluded",
            reason=f"a single value ({column.dropna().iloc[0]!r}) carries no signal",
        )
    if pd.api.types.is_datetime64_any_dtype(column):
        return ColumnInfo(
            **base,
            kind="datetime",
            role="excluded",
            reason="datetime column: not used as a feature yet",
        )
    if pd.api.types.is_bool_dtype(column):
        frame[name] = (
            column.astype(object)
            .where(column.notna(), None)
            .map(lambda v: None if v is None else str(v))
        )
        column = frame[name]
    if pd.api.types.is_numeric_dtype(column):
        if _looks_like_id(column, name):
            return ColumnInfo(
                **base,
                kind="identifier",
                role="excluded",
                reason="unique integer per row: an identifier, not a feature",
            )
        values = column.astype("float64")
        frame[name] = values
        return ColumnInfo(
            **base,
            kind="numeric",
            role="feature",
            minimum=float(values.min()),
            maximum=float(values.max()),
            median=float(values.median()),
        )
    if unique == len(column) - missing and len(column) > 50:
        return ColumnInfo(
            **base,
            kind="identifier",
            role="excluded",
            reason="a different value in every row: an identifier, not a feature",
        )
    if unique > max(_MAX_CATEGORIES, len(column) // 2):
        return ColumnInfo(
            **base,
            kind="text",
            role="excluded",
            reason=f"{unique} distinct strings: free text or high cardinality",
        )
    frame[name] = (
        column.astype(object)
        .where(column.notna(), None)
        .map(lambda v: None if v is None else str(v))
    )
    categories = sorted(frame[name].dropna().unique().tolist())
    return ColumnInfo(**base, kind="categorical", role="feature", categories=categories)


def _target_kind(column: pd.Series) -> ColumnKind:
    return "numeric" if pd.api.types.is_float_dtype(column) else "categorical"


def _maybe_numeric(frame: pd.DataFrame, name: str, actions: list[CleaningAction]) -> pd.Series:
    column = frame[name]
    present = column.notna()
    if not present.any():
        return column
    numeric = pd.to_numeric(
        column.where(present, None).str.replace(",", "", regex=False), errors="coerce"
    )
    parsed = numeric.notna() & present
    share = parsed.sum() / present.sum()
    if share < _NUMERIC_SHARE:
        return column
    failed = int((present & ~parsed).sum())
    actions.append(
        CleaningAction(
            column=name,
            action="coerce_numeric",
            rows=int(parsed.sum()),
            detail=f"numbers stored as text converted; {failed} unparseable values set to missing",
        )
    )
    frame[name] = numeric.astype("float64")
    return frame[name]


def _looks_like_id(column: pd.Series, name: str) -> bool:
    if not pd.api.types.is_integer_dtype(column) or column.isna().any():
        return False
    if column.nunique() != len(column) or len(column) < 50:
        return False
    return bool(_ID_NAME.search(str(name))) or column.is_monotonic_increasing
