"""The REST service: ``create_app(settings)`` builds a FastAPI app for one model.

Endpoints (all answers are JSON unless said otherwise; errors are JSON with
``error``, ``error_code``, ``message`` and, when there is one, ``field``):

==========================================  =====================================================
``GET  /v2/health/live``, ``/v2/health/ready``  liveness; readiness (only after load and warm-up)
``GET  /ping``, ``/health``                  readiness, MLflow style
``GET  /v2``, ``/v2/models/{name}``          server and model metadata (Open Inference Protocol v2)
``POST /v2/models/{name}/infer``             OIP v2 inference, one input tensor per column
``POST /invocations``                        MLflow scoring: JSON (four layouts) or CSV
``POST /v1/models/{name}/predict``           plain JSON records; ``?contributions=true``
``POST /v1/models/{name}/batch``             CSV or Parquet upload, answered in kind
``GET  /metrics``                            Prometheus metrics
==========================================  =====================================================

This module imports neither pandas nor scikit-learn: the default runtime is
onnxruntime on numpy feeds. scikit-learn is loaded only for the native runtime
or on the first request for per-feature contributions.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from tabpipe.errors import NotFoundError, PayloadTooLargeError, RequestError, TabpipeError
from tabpipe.packaging.signature import Checked
from tabpipe.serving import protocols
from tabpipe.serving.auth import KeyRing
from tabpipe.serving.edge import Edge
from tabpipe.serving.errors import (
    UnsupportedMediaTypeError,
    handle_http_error,
    handle_tabpipe_error,
    handle_unexpected,
)
from tabpipe.serving.holder import Loaded, ModelHolder
from tabpipe.serving.metrics import Metrics
from tabpipe.serving.runtime import Prediction
from tabpipe.serving.settings import ServeSettings

__all__ = ["SETTINGS_ENV", "ServeSettings", "app_from_env", "create_app"]

log = logging.getLogger("tabpipe.serving")
SETTINGS_ENV = "TABPIPE_SERVE_SETTINGS"
#: Requests with more rows than this run off the event loop.
THREAD_ROWS = 2000
PARQUET_TYPES = frozenset(
    {"application/vnd.apache.parquet", "application/x-parquet", "application/parquet"}
)
WARNINGS_HEADER = "x-tabpipe-warnings"


def _json(content: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(content, separators=(",", ":"), allow_nan=False).encode()
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def _content_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def _body(request: Request, limit: int) -> bytes:
    """The whole body, refused as soon as it passes ``limit`` bytes (declared or streamed)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"the body has {declared} bytes; the limit is {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(f"the body has more than {limit} bytes; the limit is {limit}")
        chunks.append(chunk)
    return b"".join(chunks)


def _flag(request: Request, name: str) -> bool:
    value = request.query_params.get(name)
    if value is None:
        return False
    if value.lower() in {"1", "true", "yes"}:
        return True
    if value.lower() in {"0", "false", "no"}:
        return False
    raise RequestError(f"query parameter {name!r} must be true or false, got {value!r}", field=name)


def create_app(settings: ServeSettings) -> FastAPI:
    """A FastAPI app serving ``settings.model``; ready once the model is loaded and warmed."""
    holder = ModelHolder(settings)
    metrics = Metrics(settings.model)
    keys = KeyRing.load(settings.api_keys_env, settings.api_keys_file)

    def on_loaded(loaded: Loaded) -> None:
        metrics.version.labels(settings.model).set(loaded.version)

    def on_swap(loaded: Loaded) -> None:
        on_loaded(loaded)
        metrics.swaps.inc()

    async def load() -> None:
        try:
            loaded = await asyncio.to_thread(holder.load_current)
        except Exception as exc:
            holder.error = f"{type(exc).__name__}: {exc}"
            log.error("cannot load the model", extra={"event": "load_failed", "error": holder.error})
            return
        on_loaded(loaded)
        log.info(
            "model loaded and warmed; ready",
            extra={"event": "ready", "model": settings.model, "version": loaded.version},
        )
        if holder.follows_alias:
            await holder.follow(on_swap)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(load())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            holder.close()
            log.info("server stopped", extra={"event": "stopped"})

    app = FastAPI(title=f"tabpipe: {settings.model}", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.holder = holder
    app.state.metrics = metrics
    app.add_exception_handler(TabpipeError, handle_tabpipe_error)
    app.add_exception_handler(StarletteHTTPException, handle_http_error)
    app.add_exception_handler(Exception, handle_unexpected)

    async def read_json(request: Request) -> Any:
        ctype = _content_type(request)
        if ctype not in {"application/json", ""}:
            raise UnsupportedMediaTypeError(
                f"content type {ctype!r} is not supported here; send application/json",
                field="content-type",
            )
        if "inference-header-content-length" in request.headers:
            raise UnsupportedMediaTypeError(
                "the binary tensor extension is not supported; send tensors as JSON "
                "(binary_data=False)",
                field="inference-header-content-length",
            )
        body = await _body(request, settings.max_body_bytes)
        try:
            return json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RequestError(f"the body is not valid JSON: {exc}", field="body") from exc

    def check_model(name: str) -> Loaded:
        if name != settings.model:
            raise NotFoundError(
                f"model {name!r} is not served here; this server serves {settings.model!r}"
            )
        return holder.get()

    def run(
        loaded: Loaded, columns: dict[str, Any], max_rows: int, explain: bool
    ) -> tuple[Checked, Prediction, list[dict[str, float]] | None]:
        checked = loaded.manifest.signature.check(columns, max_rows=max_rows)
        metrics.observe_checked(checked)
        prediction = loaded.predictor.predict(checked.feeds)
        metrics.observe_prediction(prediction, loaded.version)
        contributions = loaded.predictor.contributions(checked.feeds) if explain else None
        return checked, prediction, contributions

    async def predict(
        loaded: Loaded, columns: dict[str, Any], *, max_rows: int, explain: bool = False
    ) -> tuple[Checked, Prediction, list[dict[str, float]] | None]:
        rows = len(next(iter(columns.values()), ()))
        if rows > THREAD_ROWS or explain:
            return await asyncio.to_thread(run, loaded, columns, max_rows, explain)
        return run(loaded, columns, max_rows, explain)

    def warning_headers(checked: Checked, loaded: Loaded) -> dict[str, str]:
        headers = {"x-model-version": str(loaded.version)}
        if checked.out_of_range or checked.unseen:
            parts = [f"out_of_range:{c}={n}" for c, n in checked.out_of_range.items()]
            parts += [f"unseen:{c}={n}" for c, n in checked.unseen.items()]
            headers[WARNINGS_HEADER] = ";".join(parts)
        return headers

    @app.get("/v2/health/live")
    async def live() -> Response:
        return _json({"live": True})

    @app.get("/v2/health/ready")
    async def ready() -> Response:
        current = holder.current
        if current is None:
            body: dict[str, Any] = {"ready": False}
            if holder.error:
                body["error"] = holder.error
            return _json(body, 503)
        return _json({"ready": True, "version": current.version})

    @app.get("/ping")
    @app.get("/health")
    async def ping() -> Response:
        return await ready()

    @app.get("/metrics")
    async def metrics_endpoint() -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v2")
    async def server_metadata() -> Response:
        from tabpipe import __version__

        return _json({"name": "tabpipe", "version": __version__, "extensions": []})

    @app.get("/v2/models/{name}")
    @app.get("/v2/models/{name}/versions/{version}")
    async def model_metadata(name: str, version: str | None = None) -> Response:
        loaded = check_model(name)
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
        check_model(name)
        return _json({"name": name, "ready": True})

    @app.post("/v2/models/{name}/infer")
    @app.post("/v2/models/{name}/versions/{version}/infer")
    async def infer(name: str, request: Request, version: str | None = None) -> Response:
        loaded = check_model(name)
        body = await read_json(request)
        columns = protocols.parse_oip(body)
        params = body.get("parameters") or {}
        explain = bool(params.get("contributions", False)) if isinstance(params, dict) else False
        checked, prediction, contributions = await predict(
            loaded, columns, max_rows=settings.max_rows, explain=explain
        )
        request_id = str(body.get("id") or request.scope["state"]["request_id"])
        return _json(
            protocols.format_oip(
                prediction,
                loaded.manifest,
                loaded.version,
                request_id,
                contributions=contributions,
                warnings=checked.warnings(),
            ),
            headers=warning_headers(checked, loaded),
        )

    @app.post("/invocations")
    async def invocations(request: Request) -> Response:
        loaded = holder.get()
        ctype = _content_type(request)
        if ctype == "text/csv":
            columns = protocols.parse_csv(await _body(request, settings.max_body_bytes))
        elif ctype in {"application/json", ""}:
            columns = protocols.parse_mlflow(await read_json(request))
        else:
            raise UnsupportedMediaTypeError(
                f"content type {ctype!r} is not supported; send application/json or text/csv",
                field="content-type",
            )
        checked, prediction, _ = await predict(loaded, columns, max_rows=settings.max_rows)
        return _json(
            {"predictions": protocols.format_records(prediction, loaded.manifest)},
            headers=warning_headers(checked, loaded),
        )

    @app.post("/v1/models/{name}/predict")
    async def predict_records(name: str, request: Request) -> Response:
        loaded = check_model(name)
        columns, explain = protocols.parse_records(await read_json(request))
        explain = explain or _flag(request, "contributions")
        checked, prediction, contributions = await predict(
            loaded, columns, max_rows=settings.max_rows, explain=explain
        )
        return _json(
            {
                "model": loaded.manifest.name,
                "version": loaded.version,
                "request_id": request.scope["state"]["request_id"],
                "predictions": protocols.format_records(prediction, loaded.manifest, contributions),
                "warnings": checked.warnings(),
            },
            headers=warning_headers(checked, loaded),
        )

    @app.post("/v1/models/{name}/batch")
    async def batch(name: str, request: Request) -> Response:
        loaded = check_model(name)
        kind, data = await _batch_body(request, settings.max_batch_bytes)
        table = await asyncio.to_thread(protocols.read_table, data, kind)
        columns = protocols.table_columns(table, loaded.manifest.signature.names)
        checked, prediction, _ = await predict(loaded, columns, max_rows=settings.max_batch_rows)
        out = await asyncio.to_thread(
            protocols.write_scored, table, prediction, loaded.manifest, kind
        )
        media = "text/csv" if kind == "csv" else "application/vnd.apache.parquet"
        return Response(out, media_type=media, headers=warning_headers(checked, loaded))

    endpoints = frozenset(
        path for r in app.routes if "{" not in (path := str(getattr(r, "path", "{")))
    )
    app.add_middleware(
        Edge, keys=keys, metrics=metrics, endpoints=endpoints, access_log=settings.access_log
    )
    return app


async def _batch_body(request: Request, limit: int) -> tuple[str, bytes]:
    ctype = _content_type(request)
    if ctype == "multipart/form-data":
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise PayloadTooLargeError(f"the body has {declared} bytes; the limit is {limit}")
        form = await request.form(max_files=1, max_fields=4)
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise RequestError("the form needs a 'file' field with the CSV or Parquet file", field="file")
        data = await upload.read()
        if len(data) > limit:
            raise PayloadTooLargeError(f"the file has {len(data)} bytes; the limit is {limit}")
        filename = (upload.filename or "").lower()
        kind = "parquet" if filename.endswith((".parquet", ".pq")) or data[:4] == b"PAR1" else "csv"
        return kind, data
    if ctype == "text/csv":
        return "csv", await _body(request, limit)
    if ctype in PARQUET_TYPES or ctype == "application/octet-stream":
        data = await _body(request, limit)
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
