"""``POST /feedback``: late labels for logged predictions (an APIRouter for the app)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError

from tabpipe.errors import FeedbackError
from tabpipe.monitoring.feedback import FeedbackBatch, FeedbackResult, record_feedback
from tabpipe.packaging.bundle import Manifest
from tabpipe.serving.predlog import PredictionLog


def feedback_router(
    workspace: Path,
    manifest: Callable[[], Manifest],
    log: PredictionLog | None = None,
) -> APIRouter:
    """Labels as ``{"labels": [{"request_id", "row"?, "label"} | {"key", "label"}, ...]}``.

    The prediction log is flushed first so a label for a prediction made a
    moment ago still matches. Wrong label types reject the whole batch (400).
    """
    router = APIRouter()

    @router.post("/feedback")
    async def feedback(request: Request) -> FeedbackResult:
        try:
            body: Any = await request.json()
        except ValueError as exc:
            raise FeedbackError(f"the body is not valid JSON: {exc}") from exc
        if isinstance(body, list):
            body = {"labels": body}
        try:
            batch = FeedbackBatch.model_validate(body)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "body"
            raise FeedbackError(
                f"{where}: {first['msg'].removeprefix('Value error, ')}; expected "
                '{"labels": [{"request_id": ..., "row": 0, "label": ...} or {"key": ..., '
                '"label": ...}]}',
                field=where,
            ) from None
        if log is not None and log.settings.enabled:
            log.flush(timeout=5.0)
        share = log.share if log is not None else None
        return record_feedback(workspace, manifest(), batch.labels, on_part=share)

    return router


__all__ = ["feedback_router"]
