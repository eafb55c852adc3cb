"""The ASGI middleware at the edge: request id, API key, metrics and the access log.

One plain ASGI class (no ``BaseHTTPMiddleware``) so it adds microseconds, not
milliseconds, to a request.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from tabpipe.serving.auth import KeyRing, presented_key
from tabpipe.serving.errors import error_body
from tabpipe.serving.metrics import Metrics

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Paths answered without an API key (probes and scraping).
OPEN_PATHS = frozenset({"/v2/health/live", "/v2/health/ready", "/ping", "/health", "/metrics"})
REQUEST_ID = b"x-request-id"

access = logging.getLogger("tabpipe.serving.access")


class Edge:
    def __init__(
        self,
        app: ASGIApp,
        *,
        keys: KeyRing,
        metrics: Metrics,
        endpoints: frozenset[str],
        access_log: bool,
    ) -> None:
        self.app = app
        self.keys = keys
        self.metrics = metrics
        self.endpoints = endpoints
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = dict(scope["headers"])
        given = headers.get(REQUEST_ID, b"").decode("latin-1")[:128]
        request_id = given or os.urandom(16).hex()  # 32 hex digits, like a uuid4's
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        id_header = (REQUEST_ID, request_id.encode("latin-1"))

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        path: str = scope["path"]
        try:
            if (
                self.keys.enabled
                and path not in OPEN_PATHS
                and not self.keys.accepts(presented_key(headers))
            ):
                await _unauthorized(send_with_id)
            else:
                await self.app(scope, receive, send_with_id)
        finally:
            self._record(scope, path, request_id, status, time.perf_counter() - started)

    def _record(
        self, scope: Scope, path: str, request_id: str, status: int, elapsed: float
    ) -> None:
        endpoint = _endpoint(path, self.endpoints)
        self.metrics.observe_request(endpoint, scope["method"], status, elapsed)
        if self.access_log and access.isEnabledFor(logging.INFO):
            extra = {
                "event": "request",
                "request_id": request_id,
                "method": scope["method"],
                "path": path,
                "status": status,
                "ms": round(elapsed * 1000, 3),
            }
            # ``access.info`` would also walk the stack to find its caller, once per request
            access.handle(
                access.makeRecord(
                    access.name, logging.INFO, "", 0, "request", (), None, extra=extra
                )
            )


def _endpoint(path: str, endpoints: frozenset[str]) -> str:
    """A bounded label: the path when it is one of the app's, else ``other``."""
    if path in endpoints:
        return path
    for prefix in ("/v2/models/", "/v1/models/"):
        if path.startswith(prefix):
            last = path.rsplit("/", 1)[-1]
            return prefix + "{name}" + (f"/{last}" if last in _ACTIONS else "")
    return "other"


_ACTIONS = frozenset({"infer", "ready", "predict", "batch"})


async def _unauthorized(send: Send) -> None:
    body = json.dumps(
        error_body(
            "missing or invalid API key; send it as 'Authorization: Bearer <key>' or 'X-API-Key'",
            "UNAUTHENTICATED",
            "authorization",
        )
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"www-authenticate", b"Bearer"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
