"""Ground truth arriving late: validate labels, store them, report what did not match.

A label names its prediction by ``request_id`` (and ``row`` inside a
multi-row request) or by a user ``key`` (the log's key column). Labels are
validated against the model's task as a whole batch, so a bad batch writes
nothing. Labels whose prediction is not (yet) in the log are stored all the
same and reported as unmatched: they attach as soon as the prediction shows up.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from pydantic import BaseModel, Field, model_validator

from tabpipe.errors import FeedbackError
from tabpipe.packaging.bundle import Manifest
from tabpipe.serving.predlog import key_text, write_part

if TYPE_CHECKING:  # the serving path imports this module and stays free of pandas
    import pandas as pd

MAX_REPORTED = 100


class FeedbackItem(BaseModel):
    """One label, for one logged prediction."""

    request_id: str | None = None
    row: int = Field(0, ge=0)
    key: str | None = None
    label: Any

    @model_validator(mode="after")
    def _one_reference(self) -> FeedbackItem:
        if (self.request_id is None) == (self.key is None):
            raise ValueError("give exactly one of 'request_id' (with optional 'row') or 'key'")
        return self


class FeedbackBatch(BaseModel):
    labels: list[FeedbackItem] = Field(min_length=1)


class FeedbackResult(BaseModel):
    received: int
    matched: int
    unmatched: int
    unmatched_items: list[dict[str, Any]] = Field(
        default_factory=list, description=f"The first {MAX_REPORTED} unmatched labels."
    )


def check_label(value: Any, manifest: Manifest, where: str) -> str:
    """The label as text, or :class:`FeedbackError` naming the item and the expected type."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        raise FeedbackError(f"{where}: the label is missing", field="label")
    if manifest.task == "regression":
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise FeedbackError(
                f"{where}: label {value!r} is a {type(value).__name__}; model "
                f"{manifest.name!r} predicts a number ({manifest.target}), send a number",
                field="label",
            )
        try:
            number = float(value)
        except ValueError:
            raise FeedbackError(
                f"{where}: label {value!r} is not a number; model {manifest.name!r} "
                f"predicts a number ({manifest.target})",
                field="label",
            ) from None
        if not math.isfinite(number):
            raise FeedbackError(f"{where}: label {value!r} is not finite", field="label")
        return repr(number)
    classes = {str(c): str(c) for c in manifest.classes or []}
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    if isinstance(value, list | dict) or text not in classes:
        raise FeedbackError(
            f"{where}: label {value!r} is not a class of model {manifest.name!r}; "
            f"valid classes: {', '.join(classes)}",
            field="label",
        )
    return text


def record_feedback(
    workspace: Path,
    manifest: Manifest,
    items: list[FeedbackItem],
    on_part: Callable[[Path], None] | None = None,
) -> FeedbackResult:
    """Validate every label first, then store them all as one part and report matches."""
    from tabpipe.monitoring.logstore import feedback_folder, known_ids

    labels = [check_label(item.label, manifest, f"labels[{i}]") for i, item in enumerate(items)]
    request_ids = [i.request_id for i in items if i.request_id is not None]
    keys = [i.key for i in items if i.key is not None]
    pairs, _, found_keys = known_ids(workspace, manifest.name, request_ids, keys)
    unmatched = [
        item
        for item in items
        if (item.request_id is not None and (item.request_id, item.row) not in pairs)
        or (item.key is not None and item.key not in found_keys)
    ]
    now = datetime.now(UTC)
    table = pa.table(
        {
            "request_id": pa.array([i.request_id for i in items], pa.string()),
            "row": pa.array([i.row for i in items], pa.int32()),
            "key": pa.array([i.key for i in items], pa.string()),
            "label": pa.array(labels, pa.string()),
            "received_at": pa.array([now] * len(items), pa.timestamp("us", tz="UTC")),
        }
    )
    folder = feedback_folder(workspace, manifest.name)
    folder.mkdir(parents=True, exist_ok=True)
    part = write_part(folder, table)
    if on_part is not None:  # an object-store workspace shares the part
        on_part(part)
    return FeedbackResult(
        received=len(items),
        matched=len(items) - len(unmatched),
        unmatched=len(unmatched),
        unmatched_items=[i.model_dump(exclude_none=True) for i in unmatched[:MAX_REPORTED]],
    )


def items_from_frame(frame: pd.DataFrame, target: str | None = None) -> list[FeedbackItem]:
    """Rows of a feedback file: ``request_id`` [+ ``row``] or ``key``, and ``label`` (or target)."""
    label_col = "label" if "label" in frame else target
    if label_col is None or label_col not in frame:
        raise FeedbackError(
            f"the feedback file needs a 'label' column (or the target column {target!r}); "
            f"it has: {', '.join(map(str, frame.columns))}"
        )
    if "request_id" not in frame and "key" not in frame:
        raise FeedbackError(
            "the feedback file needs a 'request_id' column (optionally 'row') or a 'key' column"
        )
    items = []
    for i, rec in enumerate(frame.to_dict("records")):
        rid = key_text(rec.get("request_id"))
        key = key_text(rec.get("key"))
        row = rec.get("row", 0)
        try:
            items.append(
                FeedbackItem(
                    request_id=rid,
                    key=key if rid is None else None,
                    row=0
                    if row is None or (isinstance(row, float) and math.isnan(row))
                    else int(row),
                    label=rec[label_col],
                )
            )
        except ValueError as exc:
            raise FeedbackError(f"feedback file line {i + 2}: {exc}") from exc
    return items


__all__ = [
    "FeedbackBatch",
    "FeedbackItem",
    "FeedbackResult",
    "check_label",
    "items_from_frame",
    "record_feedback",
]
