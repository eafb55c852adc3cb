"""Violations of a data contract and the validation report (no pandas: the server uses them)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from pydantic import BaseModel

from tabpipe.errors import DataError, RequestError

Severity = Literal["error", "warning"]
#: How many example values a violation shows.
EXAMPLES = 5
#: A missing share this much above training's is a warning.
MISSING_JUMP = 0.2


class Violation(BaseModel):
    column: str
    rule: str
    severity: Severity
    count: int
    share: float
    examples: list[str] = []
    message: str


class ValidationReport(BaseModel):
    rows: int
    errors: int
    warnings: int
    violations: list[Violation]

    @property
    def ok(self) -> bool:
        return self.errors == 0

    def by_column(self) -> dict[str, list[Violation]]:
        out: dict[str, list[Violation]] = {}
        for v in self.violations:
            out.setdefault(v.column, []).append(v)
        return out

    def summary(self) -> str:
        lines = [f"{self.rows} rows: {self.errors} error(s), {self.warnings} warning(s)"]
        lines += [f"  [{v.severity}] {v.column}: {v.message}" for v in self.violations]
        return "\n".join(lines)


class ContractViolationError(DataError):
    """Data breaks its contract; ``report`` lists every violation."""

    def __init__(self, report: ValidationReport) -> None:
        super().__init__("the data breaks its contract:\n" + report.summary())
        self.report = report


class RequestContractError(RequestError):
    """A prediction request breaks a declared constraint of the data contract."""

    def __init__(self, report: ValidationReport) -> None:
        errors = [v for v in report.violations if v.severity == "error"]
        super().__init__(
            "the request breaks the data contract: "
            + "; ".join(f"column {v.column!r}: {v.message}" for v in errors)
            + " (the model's contract.json declares these constraints)",
            field=errors[0].column if errors else None,
        )
        self.report = report


def severity(field: str, declared: Iterable[str]) -> Severity:
    """``error`` for a declared field of the contract, ``warning`` for an inferred one."""
    return "error" if field in set(declared) else "warning"


def violation(
    column: str,
    rule: str,
    level: Severity,
    count: int,
    rows: int,
    examples: Iterable[Any],
    message: str,
) -> Violation:
    """A violation with its share of the rows and up to :data:`EXAMPLES` distinct examples."""
    distinct = dict.fromkeys(str(x) for x in list(examples)[: EXAMPLES * 10])
    return Violation(
        column=column,
        rule=rule,
        severity=level,
        count=count,
        share=round(count / max(rows, 1), 6),
        examples=[repr(e) for e in distinct][:EXAMPLES],
        message=message,
    )
