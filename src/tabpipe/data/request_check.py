"""Every prediction request checked against the model's data contract, cheaply.

The server has already cleaned and cast the request (:meth:`Signature.check
<tabpipe.packaging.signature.Signature.check>` applies each column's fitted rules), so
this module checks the model feeds, not the raw values, with numpy only (no pandas on
the serving path). It is compiled once per loaded model from ``contract.json``:
only columns with something to check take time per request.

The severities are those of :func:`tabpipe.data.validation.validate_records`: a
broken *declared* constraint (``columns:`` in the spec) is an ``error`` and the
request is refused with :class:`~tabpipe.data.violations.RequestContractError`
(HTTP 422); anything else is a ``warning``, answered and logged as a data-quality
flag. Values outside the training range and unseen categories are counted by the
signature already and are not repeated here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from tabpipe.data.contract import ColumnContract, DataContract
from tabpipe.data.violations import (
    MISSING_JUMP,
    RequestContractError,
    Severity,
    ValidationReport,
    Violation,
)
from tabpipe.data.violations import severity as _severity
from tabpipe.data.violations import violation as _violation
from tabpipe.packaging.signature import MISSING_CATEGORY

#: Below this many rows a request's missing share says nothing about a shift.
MISSING_SHARE_ROWS = 20
#: Requests up to this many rows are first screened value by value (cheaper than numpy).
SCALAR_ROWS = 16


@dataclass(frozen=True)
class _Column:
    contract: ColumnContract
    numeric: bool
    minimum: float | None  # declared bounds only (inferred ones are the signature's)
    maximum: float | None
    categories: frozenset[str] | None  # declared categories only
    integer: Severity | None
    nullable: Severity | None

    @property
    def strict(self) -> bool:
        checks = (self.minimum, self.maximum, self.categories, self.integer, self.nullable)
        return any(c is not None for c in checks)


@dataclass
class RequestFindings:
    """What the contract check found in one request."""

    report: ValidationReport
    #: per row, flags ``contract:<rule>:<column>`` (empty when nothing was found)
    row_flags: list[list[str]] = field(default_factory=list)

    def warnings(self) -> list[str]:
        return [
            f"column {v.column!r}: {v.message}"
            for v in self.report.violations
            if v.severity == "warning"
        ]


class RequestValidator:
    """A data contract compiled for the request path."""

    def __init__(self, contract: DataContract, inputs: Iterable[str]) -> None:
        names = set(inputs)
        self.known = frozenset(contract.names)
        compiled = [_compile(col) for col in contract.columns if col.name in names]
        #: columns checked on every request, and the rest (missing share of large requests)
        self.strict = [c for c in compiled if c is not None and c.strict]
        self.columns = [c for c in compiled if c is not None]

    def check(
        self, feeds: Mapping[str, np.ndarray], rows: int, sent: Iterable[str] = ()
    ) -> RequestFindings | None:
        """Violations in cleaned ``feeds``; ``sent`` are the request's column names.

        Returns None when nothing was found (the common case, at the least cost); raises
        :class:`RequestContractError` when a declared constraint is broken.
        """
        extra = [n for n in sent if n not in self.known]
        if (
            rows <= SCALAR_ROWS
            and not extra
            and not any(_suspect(col, feeds[col.contract.name]) for col in self.strict)
        ):
            return None
        found: list[tuple[Violation, np.ndarray | None]] = []
        for col in self.columns if rows >= MISSING_SHARE_ROWS else self.strict:
            values = feeds[col.contract.name].reshape(-1)
            found += _check(col, values, rows)
        for name in sorted(extra):
            message = "column is not in the contract; it is ignored"
            found.append(
                (_violation(name, "unexpected_column", "warning", rows, rows, [], message), None)
            )
        if not found:
            return None
        violations = [v for v, _ in found]
        errors = sum(v.severity == "error" for v in violations)
        report = ValidationReport(
            rows=rows, errors=errors, warnings=len(violations) - errors, violations=violations
        )
        if errors:
            raise RequestContractError(report)
        flags: list[list[str]] = [[] for _ in range(rows)]
        for v, mask in found:
            for i in np.flatnonzero(mask) if mask is not None else range(rows):
                flags[i].append(f"contract:{v.rule}:{v.column}")
        return RequestFindings(report=report, row_flags=flags)


def _compile(col: ColumnContract) -> _Column | None:
    if col.role != "feature":
        return None
    declared = set(col.declared)
    numeric = col.logical_type in ("numeric", "integer")
    compiled = _Column(
        contract=col,
        numeric=numeric,
        minimum=col.minimum if numeric and "minimum" in declared else None,
        maximum=col.maximum if numeric and "maximum" in declared else None,
        categories=(
            frozenset(col.categories)
            if not numeric and col.categories is not None and "categories" in declared
            else None
        ),
        integer=_severity("logical_type", declared) if col.logical_type == "integer" else None,
        nullable=None if col.nullable else _severity("nullable", declared),
    )
    return compiled


def _suspect(col: _Column, feed: np.ndarray) -> bool:
    """Whether any value may break a check (a cheap screen; :func:`_check` decides)."""
    if col.numeric:
        low, high, integer = col.minimum, col.maximum, col.integer is not None
        for x in feed.ravel().tolist():
            if math.isnan(x):
                if col.nullable is not None:
                    return True
            elif (
                (low is not None and x < low)
                or (high is not None and x > high)
                or (integer and x % 1)
            ):
                return True
        return False
    allowed = col.categories
    for v in feed.ravel().tolist():
        if v == MISSING_CATEGORY:
            if col.nullable is not None:
                return True
        elif allowed is not None and v not in allowed:
            return True
    return False


def _check(col: _Column, values: np.ndarray, rows: int) -> list[tuple[Violation, np.ndarray]]:
    name = col.contract.name
    out: list[tuple[Violation, np.ndarray]] = []
    missing = np.isnan(values) if col.numeric else values == MISSING_CATEGORY
    if col.numeric:
        for bound, below in ((col.minimum, True), (col.maximum, False)):
            if bound is None:
                continue
            with np.errstate(invalid="ignore"):
                hit = values < bound if below else values > bound
            if hit.any():
                word = "below the declared minimum" if below else "above the declared maximum"
                n = int(hit.sum())
                rule = "minimum" if below else "maximum"
                message = f"{n} value(s) {word} {bound:g}"
                out.append((_violation(name, rule, "error", n, rows, values[hit], message), hit))
        if col.integer is not None:
            with np.errstate(invalid="ignore"):
                frac = ~missing & (np.mod(values, 1) != 0)
            if frac.any():
                n = int(frac.sum())
                message = "non-integer value(s) in an integer column"
                out.append(
                    (_violation(name, "integer", col.integer, n, rows, values[frac], message), frac)
                )
    elif col.categories is not None:
        hit = ~missing & ~np.isin(values.astype(str), list(col.categories))
        if hit.any():
            n = int(hit.sum())
            message = f"value(s) outside the declared categories ({', '.join(sorted(col.categories)[:10])})"
            out.append(
                (_violation(name, "categories", "error", n, rows, values[hit], message), hit)
            )
    if col.nullable is not None and missing.any():
        n = int(missing.sum())
        message = "missing value(s) in a column that had none"
        out.append((_violation(name, "nullable", col.nullable, n, rows, [], message), missing))
    elif rows >= MISSING_SHARE_ROWS and missing.any():
        share = float(missing.mean())
        if share > col.contract.missing_share + MISSING_JUMP:
            message = f"{share:.0%} missing, against {col.contract.missing_share:.0%} in training"
            violation = _violation(
                name, "missing_share", "warning", int(missing.sum()), rows, [], message
            )
            out.append((violation, missing))
    return out
