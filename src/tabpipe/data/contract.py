"""The data contract: what each column of the training data is, inferred and declared.

Cleaning infers a :class:`ColumnContract` per column (logical type, nullability,
range, allowed categories, formats); the user's declarations in the spec
(``columns:``) override the inferred fields, and the contract records which
fields were declared, because a broken declaration is an error where a broken
inference is a warning (see :mod:`tabpipe.data.validation`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ValidationError

from tabpipe.config import ColumnDeclaration, LogicalType
from tabpipe.data.rules import ColumnRules
from tabpipe.errors import DataError

CONTRACT_VERSION = 1


class ColumnContract(BaseModel):
    name: str
    logical_type: LogicalType
    role: Literal["feature", "target", "excluded"]
    required: bool = True
    nullable: bool = True
    missing_share: float = 0.0
    minimum: float | None = None
    maximum: float | None = None
    categories: list[str] | None = None
    formats: list[str] = []
    max_length: int | None = None
    declared: list[str] = []
    reason: str | None = None
    #: the fitted cleaning rules, so a snapshot or request is checked as it would be cleaned
    rules: ColumnRules | None = None


class DataContract(BaseModel):
    version: int = CONTRACT_VERSION
    target: str | None
    task: str | None
    rows: int
    columns: list[ColumnContract]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> ColumnContract | None:
        for col in self.columns:
            if col.name == name:
                return col
        return None

    def declared_only(self) -> DataContract:
        """The contract reduced to what the user declared (for hard checks of a snapshot)."""
        return self.model_copy(update={"columns": [c for c in self.columns if c.declared]})


def apply_declaration(col: ColumnContract, decl: ColumnDeclaration) -> ColumnContract:
    """The inferred column contract with the user's declared fields put over it."""
    update: dict[str, object] = {}
    for field in ("minimum", "maximum", "categories", "nullable"):
        value = getattr(decl, field)
        if value is not None:
            update[field] = value
    if decl.type is not None:
        update["logical_type"] = decl.type
    if "required" in decl.model_fields_set:
        update["required"] = decl.required
    if decl.role == "exclude":
        update["role"] = "excluded"
        update["reason"] = decl.reason or "excluded by the spec"
    elif decl.role == "feature" and col.role != "target":
        update["role"] = "feature"
        update["reason"] = None
    declared = sorted({*col.declared, *(k for k in update if k != "reason")})
    return col.model_copy(update={**update, "declared": declared})


def load_contract(path: str | Path) -> DataContract:
    """Read a ``contract.json`` (from a run, a bundle or ``tabpipe eda``)."""
    path = Path(path)
    try:
        return DataContract.model_validate_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DataError(f"{path}: no such contract file") from exc
    except (ValidationError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not a tabpipe data contract: {exc}") from exc
