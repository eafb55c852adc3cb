"""What cleaning decided, as validated objects: per-column info, the ledger, warnings."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from tabpipe.config import LogicalType, Task
from tabpipe.data.contract import DataContract
from tabpipe.data.rules import ColumnRules

ColumnKind = Literal[
    "numeric", "categorical", "identifier", "text", "constant", "empty", "datetime"
]
Severity = Literal["info", "warning", "error"]


class ColumnInfo(BaseModel):
    """What cleaning learned about one column and what it decided."""

    name: str
    kind: ColumnKind
    logical_type: LogicalType = "categorical"
    raw_dtype: str
    role: Literal["feature", "target", "excluded"]
    reason: str | None = None
    missing: int = 0
    unique: int = 0
    categories: list[str] | None = None
    minimum: float | None = None
    maximum: float | None = None
    median: float | None = None
    formats: list[str] = []
    outliers: int = 0
    leakage_score: float | None = None
    max_length: int | None = None
    rules: ColumnRules | None = None
    #: a learned imputer in the model pipeline (``knn``) instead of a fill rule
    imputer: Literal["knn"] | None = None


class LedgerEntry(BaseModel):
    """One recorded decision: which step did what to which column, to how many rows."""

    column: str | None
    action: str
    rows: int
    detail: str
    step: str = ""
    rows_removed: int = 0
    examples: list[str] = []


#: The earlier name of a ledger entry.
CleaningAction = LedgerEntry


class Finding(BaseModel):
    """A warning about the data, shown in the EDA report."""

    column: str | None
    kind: str
    severity: Severity
    message: str


class TargetSummary(BaseModel):
    """Target checks: class counts, imbalance, rare classes, rows set aside."""

    counts: dict[str, int] | None = None
    imbalance_ratio: float | None = None
    rare_classes: list[str] = []
    missing: int = 0


class CleaningReport(BaseModel):
    rows_in: int
    rows_out: int
    target: str
    task: Task
    classes: list[str | int | float | bool] | None
    columns: list[ColumnInfo]
    actions: list[LedgerEntry]
    duplicate_rows: int
    rows_set_aside: int
    conflicting_duplicates: int = 0
    has_target: bool = True
    target_summary: TargetSummary = TargetSummary()
    findings: list[Finding] = []
    contract: DataContract | None = None

    def features(self) -> list[ColumnInfo]:
        return [c for c in self.columns if c.role == "feature"]

    def column(self, name: str) -> ColumnInfo:
        for info in self.columns:
            if info.name == name:
                return info
        raise KeyError(name)

    @property
    def ledger(self) -> list[LedgerEntry]:
        return self.actions
