"""The one table that maps tabpipe errors to HTTP statuses, and the JSON error body."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from tabpipe.errors import (
    BundleError,
    NotFoundError,
    PayloadTooLargeError,
    RequestError,
    TabpipeError,
)


class UnsupportedMediaTypeError(RequestError):
    """The request's content type is not one the endpoint reads."""


class NotReadyError(TabpipeError):
    """The model is not loaded yet."""


#: Most specific first; the first matching class decides the status.
STATUS: tuple[tuple[type[Exception], int, str], ...] = (
    (PayloadTooLargeError, 413, "PAYLOAD_TOO_LARGE"),
    (UnsupportedMediaTypeError, 415, "UNSUPPORTED_MEDIA_TYPE"),
    (RequestError, 400, "BAD_REQUEST"),
    (NotFoundError, 404, "RESOURCE_DOES_NOT_EXIST"),
    (NotReadyError, 503, "NOT_READY"),
    (BundleError, 500, "INVALID_BUNDLE"),
    (TabpipeError, 500, "INTERNAL_ERROR"),
)


def status_of(exc: Exception) -> tuple[int, str]:
    for cls, status, code in STATUS:
        if isinstance(exc, cls):
            return status, code
    return 500, "INTERNAL_ERROR"


def error_body(message: str, code: str, field: str | None = None) -> dict[str, Any]:
    """Readable by OIP clients (``error``) and MLflow clients (``error_code``, ``message``)."""
    body: dict[str, Any] = {"error": message, "error_code": code, "message": message}
    if field is not None:
        body["field"] = field
    return body


async def handle_tabpipe_error(_: Request, exc: Exception) -> JSONResponse:
    status, code = status_of(exc)
    return JSONResponse(error_body(str(exc), code, getattr(exc, "field", None)), status_code=status)
