"""The REST service: ``create_app(settings)`` builds a FastAPI app for one model.

Endpoints (all answers are JSON unless said otherwise; errors are JSON with
``error``, ``error_code``, ``message`` and, when there is one, ``field``):

=================================================  ==========================================
``GET  /v2/health/live``, ``/v2/health/ready``     liveness; readiness (after load and warm-up)
``GET  /ping``, ``/health``                        readiness, MLflow style
``GET  /v2``, ``/v2/models/{name}``                server and model metadata (OIP v2)
``POST /v2/models/{name}/infer``                   OIP v2 inference, one input tensor per column
``POST /invocations``                              MLflow scoring: JSON (four layouts) or CSV
``POST /v1/models/{name}/predict``                 plain JSON records; ``?contributions=true``
``POST /v1/models/{name}/batch``                   CSV or Parquet upload, answered in kind
``GET  /metrics``                                  Prometheus metrics
=================================================  ==========================================

Every HTTP request enters through the :class:`~tabpipe.serving.edge.Edge`
(request id, API key, metrics, access log), which answers the scoring routes
itself (:mod:`tabpipe.serving.scoring`) and passes the rest to FastAPI.

This module imports neither pandas nor scikit-learn: the default runtime is
onnxruntime on numpy feeds. scikit-learn is loaded only for the native runtime
or on the first request for per-feature contributions.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from tabpipe.errors import PayloadTooLargeError, RequestError, TabpipeError
from tabpipe.serving import protocols
from tabpipe.serving.auth import KeyRing
from tabpipe.serving.edge import Edge, Receive, Scope, Send
from tabpipe.serving.errors import (
    UnsupportedMediaTypeError,
    handle_http_error,
    handle_tabpipe_error,
    handle_unexpected,
)
from tabpipe.serving.feedback import feedback_router
from tabpipe.serving.scoring import Scoring
from tabpipe.serving.service import Service, content_type, read_body
from tabpipe.serving.settings import SETTINGS_ENV, ServeSettings
from tabpipe.ui.predict_page import predict_router

__all__ = ["SETTINGS_ENV", "ServeSettings", "ServingApp", "app_from_env", "create_app"]

PARQUET_TYPES = frozenset(
    {"application/vnd.apache.parquet", "application/x-parquet", "application/parquet"}
)


#: One encoder for every answer (``json.dumps`` with options builds one per call).
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


def _json(content: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = _ENCODER.encode(content).encode()
    return Response(body, status_code=status, media_type="application/json", headers=headers)


class ServingApp(FastAPI):
    """FastAPI for the operations, metadata, batch and page routes; HTTP requests enter
    through the :class:`Edge` (request id, key, metrics, access log), which answers the
    scoring routes itself (:mod:`tabpipe.serving.scoring`)."""

    edge: Edge

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self.edge(scope, receive, send)
        else:  # lifespan (websockets are not served)
            await super().__call__(scope, receive, send)

    async def _inner(self, scope: Scope, receive: Receive, send: Send) -> None:
        await super().__call__(scope, receive, send)


def create_app(settings: ServeSettings) -> ServingApp:
    """The app serving ``settings.model``; ready once the model is loaded and warmed."""
    svc = Service(settings)
    app = ServingApp(
        title=f"tabpipe: {settings.model}", lifespan=svc.lifespan, docs_url=None, redoc_url=None
    )
    app.state.service = svc
    app.add_exception_handler(TabpipeError, handle_tabpipe_error)
    app.add_exception_handler(StarletteHTTPException, handle_http_error)
    app.add_exception_handler(Exception, handle_unexpected)
    _batch(app, svc)
    _operations(app, svc)
    _metadata(app, svc)
    app.include_router(predict_router(svc.holder.get))  # the prediction page at /
    if settings.workspace is not None:  # late labels for the prediction log (monitoring)
        app.include_router(
            feedback_router(settings.local_workspace, lambda: svc.holder.get().manifest, svc.log)
        )
    endpoints = frozenset(
        path for r in app.routes if "{" not in (path := str(getattr(r, "path", "{")))
    )
    app.edge = Edge(
        app._inner,
        keys=KeyRing.load(settings.api_keys_env, settings.api_keys_file),
        metrics=svc.metrics,
        scoring=Scoring(svc),
        endpoints=endpoints,
        access_log=settings.access_log,
    )
    return app


def _operations(app: FastAPI, svc: Service) -> None:
    @app.get("/v2/health/live")
    async def live() -> Response:
        return _json({"live": True})

    @app.get("/v2/health/ready")
    async def ready() -> Response:
        current = svc.holder.current
        if current is None:
            body: dict[str, Any] = {"ready": False}
            if svc.holder.error:
                body["error"] = svc.holder.error
            return _json(body, 503)
        return _json({"ready": True, "version": current.version})

    @app.get("/ping")
    @app.get("/health")
    async def ping() -> Response:
        return await ready()

    @app.get("/metrics")
    async def metrics_endpoint() -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(svc.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


def _metadata(app: FastAPI, svc: Service) -> None:
    settings = svc.settings

    @app.get("/v2")
    async def server_metadata() -> Response:
        from tabpipe import __version__

        return _json({"name": "tabpipe", "version": __version__, "extensions": []})

    @app.get("/v2/models/{name}")
    @app.get("/v2/models/{name}/versions/{version}")
    async def model_metadata(name: str, version: str | None = None) -> Response:
        loaded = svc.model(name)
        m = loaded.manifest
        return _json(
            {
                "name": m.name,
                "versions": [str(loaded.version)],
                "platform": "onnxruntime" if settings.runtime == "onnx" else "scikit-learn",
                "inputs": [
                    {"name": c.name, "datatype": c.datatype, "shape": [-1, 1]}
                    for c in m.signature.columns
                ],
                "outputs": [
                    {"name": o.name, "datatype": o.datatype, "shape": o.shape}
                    for o in m.output_schema
                ],
                "parameters": {
                    "task": m.task,
                    "target": m.target,
                    "classes": m.classes,
                    "contributions": m.contributions,
                    "signature": m.signature.model_dump(mode="json"),
                },
            }
        )

    @app.get("/v2/models/{name}/ready")
    @app.get("/v2/models/{name}/versions/{version}/ready")
    async def model_ready(name: str, version: str | None = None) -> Response:
        svc.model(name)
        return _json({"name": name, "ready": True})


def _batch(app: FastAPI, svc: Service) -> None:
    """Batch scoring (CSV or Parquet uploads, multipart forms): a plain Starlette route."""
    settings = svc.settings

    async def batch(request: Request) -> Response:
        loaded = svc.model(request.path_params["name"])
        kind, data = await _batch_body(request, settings.max_batch_bytes)
        table = await asyncio.to_thread(protocols.read_table, data, kind)
        columns = protocols.table_columns(table, loaded.manifest.signature.names)
        checked, prediction, _ = await svc.predict(
            loaded, columns, max_rows=settings.max_batch_rows, request_id=_request_id(request)
        )
        out = await asyncio.to_thread(
            protocols.write_scored, table, prediction, loaded.manifest, kind
        )
        media = "text/csv" if kind == "csv" else "application/vnd.apache.parquet"
        return Response(out, media_type=media, headers=svc.headers(checked, loaded))

    app.add_route("/v1/models/{name}/batch", batch, methods=["POST"])


def _request_id(request: Request) -> str:
    return str(request.scope["state"]["request_id"])


async def _batch_body(request: Request, limit: int) -> tuple[str, bytes]:
    ctype = content_type(request)
    if ctype == "multipart/form-data":
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise PayloadTooLargeError(f"the body has {declared} bytes; the limit is {limit}")
        form = await request.form(max_files=1, max_fields=4)
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise RequestError(
                "the form needs a 'file' field with the CSV or Parquet file", field="file"
            )
        data = await upload.read()
        if len(data) > limit:
            raise PayloadTooLargeError(f"the file has {len(data)} bytes; the limit is {limit}")
        filename = (upload.filename or "").lower()
        kind = "parquet" if filename.endswith((".parquet", ".pq")) or data[:4] == b"PAR1" else "csv"
        return kind, data
    if ctype == "text/csv":
        return "csv", await read_body(request, limit)
    if ctype in PARQUET_TYPES or ctype == "application/octet-stream":
        data = await read_body(request, limit)
        if data[:4] != b"PAR1":
            raise RequestError("the body is not a Parquet file (no PAR1 magic)", field="body")
        return "parquet", data
    raise UnsupportedMediaTypeError(
        f"content type {ctype!r} is not supported for batch scoring; send text/csv, "
        "application/vnd.apache.parquet or a multipart form with a 'file' field",
        field="content-type",
    )


def app_from_env() -> Any:
    """Factory for ``uvicorn --factory`` (several workers): settings come as JSON in the env."""
    import os

    from tabpipe.serving import logs

    raw = os.environ.get(SETTINGS_ENV)
    if not raw:
        raise RuntimeError(f"{SETTINGS_ENV} is not set")
    logs.configure()
    return create_app(ServeSettings.model_validate_json(raw))
