"""The one table that maps tabpipe errors to HTTP statuses, and the JSON error body."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from tabpipe.data.violations import RequestContractError
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


class UnauthorizedError(RequestError):
    """The request carries no API key or a wrong one."""


#: Most specific first; the first matching class decides the status.
STATUS: tuple[tuple[type[Exception], int, str], ...] = (
    (UnauthorizedError, 401, "UNAUTHENTICATED"),
    (PayloadTooLargeError, 413, "PAYLOAD_TOO_LARGE"),
    (UnsupportedMediaTypeError, 415, "UNSUPPORTED_MEDIA_TYPE"),
    (RequestContractError, 422, "CONTRACT_VIOLATION"),
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


#: Statuses the web framework itself answers with (unknown path, wrong method).
HTTP_CODES = {404: "RESOURCE_DOES_NOT_EXIST", 405: "METHOD_NOT_ALLOWED"}


async def handle_tabpipe_error(_: Request, exc: Exception) -> JSONResponse:
    status, code = status_of(exc)
    return JSONResponse(error_body(str(exc), code, getattr(exc, "field", None)), status_code=status)


async def handle_http_error(_: Request, exc: Exception) -> JSONResponse:
    status = int(getattr(exc, "status_code", 500))
    detail = str(getattr(exc, "detail", exc))
    return JSONResponse(
        error_body(
            detail, HTTP_CODES.get(status, "BAD_REQUEST" if status < 500 else "INTERNAL_ERROR")
        ),
        status_code=status,
        headers=getattr(exc, "headers", None),
    )


async def handle_unexpected(request: Request, exc: Exception) -> JSONResponse:
    """A bug, not a bad request: logged with the request id, answered without details."""
    import logging

    logging.getLogger("tabpipe.serving").error(
        "unexpected error",
        exc_info=exc,
        extra={"event": "error", "request_id": request.scope.get("state", {}).get("request_id")},
    )
    return JSONResponse(
        error_body(f"internal error ({type(exc).__name__}); see the server log", "INTERNAL_ERROR"),
        status_code=500,
    )
