"""Validate a later snapshot or a prediction request against a :class:`DataContract`.

Each value is first cleaned by the column's fitted rules (as training and
serving would clean it), then checked. A broken *declared* constraint, a
missing required column or a wrong type is an ``error``; a value outside what
training merely happened to see (a new category, a larger number) is a
``warning``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from tabpipe.data.contract import ColumnContract, DataContract
from tabpipe.data.rules import ColumnRules, apply_rules
from tabpipe.data.violations import (
    MISSING_JUMP,
    ContractViolationError,
    Severity,
    ValidationReport,
    Violation,
    severity,
    violation,
)

__all__ = [
    "ContractViolationError",
    "Severity",
    "ValidationReport",
    "Violation",
    "raise_for_errors",
    "validate_frame",
    "validate_records",
]
_TYPE_ERROR_SHARE = 0.05


def validate_frame(
    frame: pd.DataFrame, contract: DataContract, *, with_target: bool = True
) -> ValidationReport:
    """Check every column of ``frame`` against the contract."""
    rows = len(frame)
    found: list[Violation] = []
    names = {str(c) for c in frame.columns}
    for col in contract.columns:
        if col.role == "target" and not with_target:
            continue
        if col.name not in names:
            if col.required and col.role != "excluded":
                found.append(
                    _v(col, "required", "error", rows, rows, [], "required column is missing")
                )
            continue
        found += _check_column(frame[col.name], col, rows)
    extra = sorted(names - set(contract.names))
    for name in extra:
        found.append(
            Violation(
                column=name,
                rule="unexpected_column",
                severity="warning",
                count=rows,
                share=1.0,
                message="column is not in the contract; it is ignored",
            )
        )
    errors = sum(v.severity == "error" for v in found)
    return ValidationReport(
        rows=rows, errors=errors, warnings=len(found) - errors, violations=found
    )


def validate_records(data: Mapping[str, Sequence[Any]], contract: DataContract) -> ValidationReport:
    """Check prediction-request columns (name -> values) against the contract."""
    return validate_frame(
        pd.DataFrame({k: list(v) for k, v in data.items()}), contract, with_target=False
    )


def raise_for_errors(report: ValidationReport) -> None:
    if not report.ok:
        raise ContractViolationError(report)


def _check_column(raw: pd.Series, col: ColumnContract, rows: int) -> list[Violation]:
    out: list[Violation] = []
    rules = col.rules or _default_rules(col)
    values = (
        apply_rules(raw.astype(object).to_numpy(), rules) if rules else raw.to_numpy(dtype=object)
    )
    missing = pd.isna(pd.Series(values, dtype=object)).to_numpy()
    declared = set(col.declared)
    if rules is not None and rules.kind == "numeric":
        floats, bad = _floats(values)
        if bad.any():
            share = bad.sum() / max(rows, 1)
            severity: Severity = (
                "error" if share > _TYPE_ERROR_SHARE or "logical_type" in declared else "warning"
            )
            out.append(
                _v(
                    col,
                    "type",
                    severity,
                    int(bad.sum()),
                    rows,
                    raw[bad].tolist(),
                    f"{int(bad.sum())} value(s) are not numbers",
                )
            )
        missing = np.isnan(floats) & ~bad
        out += _range(col, floats, raw, rows, declared)
        if col.logical_type == "integer":
            frac = ~np.isnan(floats) & (np.mod(np.nan_to_num(floats), 1) != 0)
            if frac.any():
                out.append(
                    _v(
                        col,
                        "integer",
                        _sev("logical_type", declared),
                        int(frac.sum()),
                        rows,
                        raw[frac].tolist(),
                        "non-integer value(s) in an integer column",
                    )
                )
    elif col.categories is not None and col.logical_type in ("categorical", "boolean"):
        allowed = set(col.categories)
        unseen = np.array([v is not None and v not in allowed for v in values], dtype=bool)
        if unseen.any():
            out.append(
                _v(
                    col,
                    "categories",
                    _sev("categories", declared),
                    int(unseen.sum()),
                    rows,
                    raw[unseen].tolist(),
                    "value(s) outside the allowed categories",
                )
            )
    elif col.logical_type == "datetime":
        parsed = pd.to_datetime(raw.astype(object), errors="coerce", format="mixed")
        bad = (parsed.isna() & raw.notna()).to_numpy()
        if bad.any():
            out.append(
                _v(
                    col,
                    "type",
                    _sev("logical_type", declared),
                    int(bad.sum()),
                    rows,
                    raw[bad].tolist(),
                    "value(s) are not dates",
                )
            )
    if missing.any():
        share = missing.sum() / max(rows, 1)
        if not col.nullable:
            out.append(
                _v(
                    col,
                    "nullable",
                    _sev("nullable", declared),
                    int(missing.sum()),
                    rows,
                    [],
                    "missing value(s) in a column that had none",
                )
            )
        elif share > col.missing_share + MISSING_JUMP:
            out.append(
                _v(
                    col,
                    "missing_share",
                    "warning",
                    int(missing.sum()),
                    rows,
                    [],
                    f"{share:.0%} missing, against {col.missing_share:.0%} in training",
                )
            )
    return out


def _range(
    col: ColumnContract, floats: np.ndarray, raw: pd.Series, rows: int, declared: set[str]
) -> list[Violation]:
    out = []
    for bound, op, rule in (
        (col.minimum, np.less, "minimum"),
        (col.maximum, np.greater, "maximum"),
    ):
        if bound is None:
            continue
        hit = op(np.nan_to_num(floats, nan=bound), bound)
        if hit.any():
            word = "below the minimum" if rule == "minimum" else "above the maximum"
            out.append(
                _v(
                    col,
                    rule,
                    _sev(rule, declared),
                    int(hit.sum()),
                    rows,
                    raw[hit].tolist(),
                    f"{int(hit.sum())} value(s) {word} {bound:g}",
                )
            )
    return out


def _floats(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if values.dtype == np.float64:
        return values, np.zeros(len(values), dtype=bool)
    bad = np.array(
        [not isinstance(v, float | int) or isinstance(v, bool) for v in values], dtype=bool
    )
    floats = np.array(
        [np.nan if b else float(v) for v, b in zip(values, bad, strict=True)], dtype=np.float64
    )
    return floats, bad


def _default_rules(col: ColumnContract) -> ColumnRules | None:
    if col.logical_type in ("numeric", "integer"):
        return ColumnRules(kind="numeric")
    if col.logical_type in ("categorical", "boolean"):
        return ColumnRules(kind="categorical")
    return None


def _sev(field: str, declared: set[str]) -> Severity:
    return severity(field, declared)


def _v(
    col: ColumnContract,
    rule: str,
    level: Severity,
    count: int,
    rows: int,
    examples: list[Any],
    message: str,
) -> Violation:
    return violation(col.name, rule, level, count, rows, examples, message)
