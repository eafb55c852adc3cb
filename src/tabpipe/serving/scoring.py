"""The scoring routes as plain ASGI handlers: the server's hot path.

``POST /invocations``, ``/v2/models/{name}/infer`` (and its ``versions/{version}``
form) and ``/v1/models/{name}/predict`` are answered here, in front of FastAPI:
the request is read straight from the ASGI ``receive`` channel and the answer
goes out as one ``http.response.start`` and one ``http.response.body``, with no
router, request object, dependency resolution nor exception middleware on the
way. Behaviour is that of the other routes: errors are JSON naming the field
(the status table of :mod:`tabpipe.serving.errors`), and an unexpected exception
is logged with the request id and answered as a bare 500.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from tabpipe.errors import NotFoundError, PayloadTooLargeError, RequestError, TabpipeError
from tabpipe.serving import protocols
from tabpipe.serving.errors import UnsupportedMediaTypeError, error_body, status_of
from tabpipe.serving.service import Service

log = logging.getLogger("tabpipe.serving")

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Headers = list[tuple[bytes, bytes]]
#: One encoder for every answer (``json.dumps`` with options builds one per call).
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)
JSON_TYPE = (b"content-type", b"application/json")


@dataclass(slots=True)
class Reply:
    status: int
    body: bytes
    headers: Headers


class ClientGoneError(Exception):
    """The client closed the connection before its request body arrived."""


def json_reply(content: Any, status: int = 200, headers: Headers | None = None) -> Reply:
    return Reply(status, _ENCODER.encode(content).encode(), [JSON_TYPE, *(headers or ())])


def error_reply(exc: Exception) -> Reply:
    status, code = status_of(exc)
    return json_reply(error_body(str(exc), code, getattr(exc, "field", None)), status)


@dataclass(slots=True)
class RawRequest:
    """What a scoring route needs of the ASGI request."""

    scope: MutableMapping[str, Any]
    receive: Receive
    headers: dict[bytes, bytes]
    request_id: str
    #: path parameters: the model name (and version) of the URL
    name: str | None = None

    def content_type(self) -> str:
        raw = self.headers.get(b"content-type", b"").decode("latin-1")
        return raw.split(";", 1)[0].strip().lower()

    async def body(self, limit: int) -> bytes:
        """The whole body, refused as soon as it passes ``limit`` bytes (declared or streamed)."""
        declared = self.headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise PayloadTooLargeError(
                f"the body has {declared.decode()} bytes; the limit is {limit}"
            )
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise ClientGoneError
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLargeError(
                        f"the body has more than {limit} bytes; the limit is {limit}"
                    )
                chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def json(self, limit: int) -> Any:
        ctype = self.content_type()
        if ctype not in {"application/json", ""}:
            raise UnsupportedMediaTypeError(
                f"content type {ctype!r} is not supported here; send application/json",
                field="content-type",
            )
        if b"inference-header-content-length" in self.headers:
            raise UnsupportedMediaTypeError(
                "the binary tensor extension is not supported; send tensors as JSON "
                "(binary_data=False)",
                field="inference-header-content-length",
            )
        body = await self.body(limit)
        try:
            return json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RequestError(f"the body is not valid JSON: {exc}", field="body") from exc

    def query_flag(self, name: str) -> bool:
        query: bytes = self.scope.get("query_string", b"")
        if not query:
            return False
        found = dict(parse_qsl(query.decode("latin-1"))).get(name)
        if found is None:
            return False
        if found.lower() in {"1", "true", "yes"}:
            return True
        if found.lower() in {"0", "false", "no"}:
            return False
        raise RequestError(
            f"query parameter {name!r} must be true or false, got {found!r}", field=name
        )


Handler = Callable[[RawRequest], Awaitable[Reply]]


@dataclass(frozen=True, slots=True)
class Route:
    handler: Handler
    #: the metrics label of the endpoint
    endpoint: str


class Scoring:
    """The scoring routes of one app."""

    def __init__(self, svc: Service) -> None:
        self.svc = svc
        self.settings = svc.settings
        self.invocations_route = Route(self.invocations, "/invocations")
        self.infer_route = Route(self.infer, "/v2/models/{name}/infer")
        self.predict_route = Route(self.predict_records, "/v1/models/{name}/predict")
        #: the paths answered here, for the metrics' endpoint labels
        self.endpoints = (
            "/invocations",
            "/v2/models/{name}/infer",
            "/v2/models/{name}/versions/{version}/infer",
            "/v1/models/{name}/predict",
        )

    def match(self, path: str) -> tuple[Route, str | None] | None:
        """The route of ``path`` and the model name in it, or None (not a scoring path)."""
        if path == "/invocations":
            return self.invocations_route, None
        if not path.startswith(("/v2/models/", "/v1/models/")):
            return None
        parts = path.split("/")  # ['', 'v2', 'models', name, ...]
        if not parts[3]:
            return None
        if parts[1] == "v2":
            if (len(parts) == 5 and parts[4] == "infer") or (
                len(parts) == 7 and parts[4] == "versions" and parts[5] and parts[6] == "infer"
            ):
                return self.infer_route, parts[3]
        elif len(parts) == 5 and parts[4] == "predict":
            return self.predict_route, parts[3]
        return None

    async def answer(self, route: Route, request: RawRequest) -> Reply | None:
        """The route's reply, errors included; None when the client has gone."""
        try:
            return await route.handler(request)
        except TabpipeError as exc:
            return error_reply(exc)
        except ClientGoneError:
            return None
        except Exception as exc:  # a bug, not a bad request: logged, answered without details
            log.error(
                "unexpected error",
                exc_info=exc,
                extra={"event": "error", "request_id": request.request_id},
            )
            return json_reply(
                error_body(
                    f"internal error ({type(exc).__name__}); see the server log", "INTERNAL_ERROR"
                ),
                500,
            )

    def _model(self, request: RawRequest) -> Any:
        name = request.name
        if name is not None and name != self.settings.model:
            raise NotFoundError(
                f"model {name!r} is not served here; this server serves {self.settings.model!r}"
            )
        return self.svc.holder.get()

    async def infer(self, request: RawRequest) -> Reply:
        loaded = self._model(request)
        body = await request.json(self.settings.max_body_bytes)
        columns = protocols.parse_oip(body)
        params = body.get("parameters") or {}
        explain = bool(params.get("contributions", False)) if isinstance(params, dict) else False
        request_id = str(body.get("id") or request.request_id)
        checked, prediction, contributions = await self.svc.predict(
            loaded, columns, max_rows=self.settings.max_rows, explain=explain, request_id=request_id
        )
        return json_reply(
            protocols.format_oip(
                prediction,
                loaded.manifest,
                loaded.version,
                request_id,
                contributions=contributions,
                warnings=checked.warnings(),
            ),
            headers=self.svc.raw_headers(checked, loaded),
        )

    async def invocations(self, request: RawRequest) -> Reply:
        loaded = self._model(request)
        ctype = request.content_type()
        if ctype == "text/csv":
            columns = protocols.parse_csv(await request.body(self.settings.max_body_bytes))
        elif ctype in {"application/json", ""}:
            columns = protocols.parse_mlflow(await request.json(self.settings.max_body_bytes))
        else:
            raise UnsupportedMediaTypeError(
                f"content type {ctype!r} is not supported; send application/json or text/csv",
                field="content-type",
            )
        checked, prediction, _ = await self.svc.predict(
            loaded, columns, max_rows=self.settings.max_rows, request_id=request.request_id
        )
        return json_reply(
            {"predictions": protocols.format_records(prediction, loaded.manifest)},
            headers=self.svc.raw_headers(checked, loaded),
        )

    async def predict_records(self, request: RawRequest) -> Reply:
        loaded = self._model(request)
        columns, explain = protocols.parse_records(await request.json(self.settings.max_body_bytes))
        explain = explain or request.query_flag("contributions")
        checked, prediction, contributions = await self.svc.predict(
            loaded,
            columns,
            max_rows=self.settings.max_rows,
            explain=explain,
            request_id=request.request_id,
        )
        return json_reply(
            {
                "model": loaded.manifest.name,
                "version": loaded.version,
                "request_id": request.request_id,
                "predictions": protocols.format_records(prediction, loaded.manifest, contributions),
                "warnings": checked.warnings(),
            },
            headers=self.svc.raw_headers(checked, loaded),
        )


def method_not_allowed() -> Reply:
    return json_reply(
        error_body("Method Not Allowed", "METHOD_NOT_ALLOWED"), 405, [(b"allow", b"POST")]
    )
