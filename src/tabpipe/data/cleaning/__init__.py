"""Cleaning, openly: inferred rules per column, a ledger of every decision, the data contract.

``clean(frame, target, task, spec, columns)`` returns the cleaned rows, the
removed rows (each with its reason) and a :class:`CleaningReport`.
"""

from tabpipe.data.cleaning.core import REASON_COLUMN, ROW_COLUMN, clean
from tabpipe.data.cleaning.report import (
    CleaningAction,
    CleaningReport,
    ColumnInfo,
    ColumnKind,
    Finding,
    LedgerEntry,
    TargetSummary,
)
from tabpipe.data.cleaning.target import detect_task
from tabpipe.data.rules import DEFAULT_MISSING_MARKERS as MISSING_MARKERS

__all__ = [
    "MISSING_MARKERS",
    "REASON_COLUMN",
    "ROW_COLUMN",
    "CleaningAction",
    "CleaningReport",
    "ColumnInfo",
    "ColumnKind",
    "Finding",
    "LedgerEntry",
    "TargetSummary",
    "clean",
    "detect_task",
]
