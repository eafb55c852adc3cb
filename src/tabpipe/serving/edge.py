"""The outermost ASGI layer: request id, API key, metrics, access log, and the hot path.

Every HTTP request passes here first. The scoring routes
(:mod:`tabpipe.serving.scoring`) are answered directly; everything else goes on
to the FastAPI app. One plain ASGI class (no ``BaseHTTPMiddleware``), so the
edge adds microseconds, not milliseconds, to a request.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from random import getrandbits
from typing import Any

from tabpipe.serving.auth import KeyRing, presented_key
from tabpipe.serving.errors import error_body
from tabpipe.serving.logs import AccessLog
from tabpipe.serving.metrics import Metrics
from tabpipe.serving.scoring import (
    RawRequest,
    Reply,
    Scoring,
    json_reply,
    method_not_allowed,
)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Paths answered without an API key (probes and scraping).
OPEN_PATHS = frozenset({"/v2/health/live", "/v2/health/ready", "/ping", "/health", "/metrics"})
REQUEST_ID = b"x-request-id"
#: Status recorded for a request whose client left before it could be answered.
CLIENT_GONE = 499


class Edge:
    def __init__(
        self,
        app: ASGIApp,
        *,
        keys: KeyRing,
        metrics: Metrics,
        scoring: Scoring,
        endpoints: frozenset[str],
        access_log: bool,
    ) -> None:
        self.app = app
        self.keys = keys
        self.metrics = metrics
        self.scoring = scoring
        self.endpoints = endpoints | frozenset(scoring.endpoints)
        self.access = AccessLog() if access_log else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        headers = dict(scope["headers"])
        given = headers.get(REQUEST_ID, b"").decode("latin-1")[:128]
        # 32 hex digits, like a uuid4's; from the process's own generator, seeded from the
        # system's at start (``os.urandom`` would be a system call per request)
        request_id = given or f"{getrandbits(128):032x}"
        state = scope.get("state")
        if state is None:
            state = scope["state"] = {}
        state["request_id"] = request_id
        path: str = scope["path"]
        method: str = scope["method"]
        id_header = (REQUEST_ID, request_id.encode("latin-1"))
        status = 500
        endpoint: str | None = None
        try:
            reply: Reply | None = None
            found = self.scoring.match(path)
            if (
                self.keys.enabled
                and path not in OPEN_PATHS
                and not self.keys.accepts(presented_key(headers))
            ):
                reply = _unauthorized()
            elif found is not None:
                route, name = found
                endpoint = route.endpoint
                if method != "POST":
                    reply = method_not_allowed()
                else:
                    request = RawRequest(scope, receive, headers, request_id, name)
                    reply = await self.scoring.answer(route, request)
                    if reply is None:
                        status = CLIENT_GONE
                        return
            if reply is not None:
                status = reply.status
                reply.headers.append(id_header)
                reply.headers.append((b"content-length", str(len(reply.body)).encode()))
                await send(
                    {"type": "http.response.start", "status": status, "headers": reply.headers}
                )
                await send({"type": "http.response.body", "body": reply.body})
                return

            async def send_with_id(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                    message["headers"] = [*message.get("headers", ()), id_header]
                await send(message)

            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            if endpoint is None:
                endpoint = _endpoint(path, self.endpoints)
            self.metrics.observe_request(endpoint, method, status, elapsed)
            if self.access is not None:
                self.access.write(request_id, method, path, status, elapsed)


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


def _unauthorized() -> Reply:
    reply = json_reply(
        error_body(
            "missing or invalid API key; send it as 'Authorization: Bearer <key>' or 'X-API-Key'",
            "UNAUTHENTICATED",
            "authorization",
        ),
        401,
    )
    reply.headers.append((b"www-authenticate", b"Bearer"))
    return reply


__all__ = ["CLIENT_GONE", "OPEN_PATHS", "Edge"]
