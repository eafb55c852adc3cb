"""The REST service: ``create_app(settings)`` builds a FastAPI app for one model alias."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from tabpipe.errors import NotFoundError, PayloadTooLargeError, RequestError, TabpipeError
from tabpipe.packaging.bundle import Manifest
from tabpipe.serving import protocols
from tabpipe.serving.errors import NotReadyError, UnsupportedMediaTypeError, handle_tabpipe_error
from tabpipe.serving.runtime import Predictor, Runtime, load_predictor
from tabpipe.ui.predict_page import predict_router


class ServeSettings(BaseModel):
    """What the server serves and its limits."""

    workspace: Path
    model: str
    alias: str = "champion"
    db_url: str | None = None
    runtime: Runtime = "onnx"
    max_rows: int = 10_000
    max_body_bytes: int = 16 * 1024 * 1024


@dataclass
class Loaded:
    predictor: Predictor
    manifest: Manifest
    version: int


class ModelHolder:
    """Holds the loaded model; swapped as a whole so a request sees one version."""

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self.current: Loaded | None = None

    def load(self) -> Loaded:
        from tabpipe.registry import Registry
        from tabpipe.workspace import Workspace

        with Workspace(self.settings.workspace, self.settings.db_url) as ws:
            version = Registry(ws).resolve(self.settings.model, self.settings.alias)
        predictor = load_predictor(version.path, self.settings.runtime)
        loaded = Loaded(predictor, predictor.manifest, version.version)
        _warm_up(loaded)
        self.current = loaded
        return loaded

    def get(self) -> Loaded:
        if self.current is None:
            raise NotReadyError("the model is not loaded yet")
        return self.current


def _warm_up(loaded: Loaded) -> None:
    sig = loaded.manifest.signature
    row = {
        c.name: [c.median if c.kind == "numeric" else (c.categories or [""])[0]]
        for c in sig.columns
    }
    loaded.predictor.predict(sig.to_feeds(row))


def create_app(settings: ServeSettings) -> FastAPI:
    holder = ModelHolder(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        holder.load()
        yield

    app = FastAPI(title=f"tabpipe: {settings.model}", lifespan=lifespan)
    app.state.holder = holder
    app.add_exception_handler(TabpipeError, handle_tabpipe_error)
    app.include_router(predict_router(holder.get))  # the prediction page at /

    async def read_json(request: Request) -> Any:
        body = await _body(request, settings.max_body_bytes)
        ctype = request.headers.get("content-type", "application/json").split(";")[0].strip()
        if ctype not in {"application/json", ""}:
            raise UnsupportedMediaTypeError(
                f"content type {ctype!r} is not supported here; send application/json"
            )
        try:
            return json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RequestError(f"the body is not valid JSON: {exc}") from exc

    def check_model(name: str) -> Loaded:
        loaded = holder.get()
        if name != settings.model:
            raise NotFoundError(
                f"model {name!r} is not served here; this server serves {settings.model!r}"
            )
        return loaded

    def predict(loaded: Loaded, columns: protocols.Columns) -> Any:
        rows = len(next(iter(columns.values()), []))
        if rows > settings.max_rows:
            raise PayloadTooLargeError(
                f"{rows} rows in one request; the limit is {settings.max_rows}"
            )
        feeds = loaded.manifest.signature.to_feeds(columns)
        return loaded.predictor.predict(feeds)

    @app.get("/v2/health/live")
    async def live() -> dict[str, bool]:
        return {"live": True}

    @app.get("/v2/health/ready")
    async def ready() -> JSONResponse:
        ok = holder.current is not None
        return JSONResponse({"ready": ok}, status_code=200 if ok else 503)

    @app.get("/ping")
    async def ping() -> JSONResponse:
        return await ready()

    @app.get("/v2")
    async def server_metadata() -> dict[str, Any]:
        from tabpipe import __version__

        return {"name": "tabpipe", "version": __version__, "extensions": []}

    @app.get("/v2/models/{name}")
    @app.get("/v2/models/{name}/versions/{version}")
    async def model_metadata(name: str, version: str | None = None) -> dict[str, Any]:
        loaded = check_model(name)
        m = loaded.manifest
        return {
            "name": m.name,
            "versions": [str(loaded.version)],
            "platform": "onnxruntime",
            "inputs": [
                {"name": c.name, "datatype": c.datatype, "shape": [-1, 1]}
                for c in m.signature.columns
            ],
            "outputs": [
                {
                    "name": o,
                    "datatype": "FP64" if o.startswith("proba_") else "BYTES",
                    "shape": [-1],
                }
                for o in m.outputs
            ],
            "parameters": {
                "task": m.task,
                "target": m.target,
                "classes": m.classes,
                "signature": m.signature.model_dump(mode="json"),
            },
        }

    @app.get("/v2/models/{name}/ready")
    async def model_ready(name: str) -> dict[str, Any]:
        check_model(name)
        return {"name": name, "ready": True}

    @app.post("/v2/models/{name}/infer")
    @app.post("/v2/models/{name}/versions/{version}/infer")
    async def infer(name: str, request: Request, version: str | None = None) -> dict[str, Any]:
        loaded = check_model(name)
        body = await read_json(request)
        columns = protocols.parse_oip(body)
        request_id = str(body.get("id") or uuid.uuid4().hex)
        return protocols.format_oip(
            predict(loaded, columns), loaded.manifest, loaded.version, request_id
        )

    @app.post("/invocations")
    async def invocations(request: Request) -> dict[str, Any]:
        loaded = holder.get()
        ctype = request.headers.get("content-type", "application/json").split(";")[0].strip()
        if ctype == "text/csv":
            columns = protocols.parse_csv(await _body(request, settings.max_body_bytes))
        else:
            columns = protocols.parse_mlflow(await read_json(request))
        prediction = predict(loaded, columns)
        return {"predictions": protocols.format_records(prediction, loaded.manifest)}

    return app


async def _body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"the body has {declared} bytes; the limit is {limit}")
    body = await request.body()
    if len(body) > limit:
        raise PayloadTooLargeError(f"the body has {len(body)} bytes; the limit is {limit}")
    return body


SETTINGS_ENV = "TABPIPE_SERVE_SETTINGS"


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` (several workers): settings come as JSON in the env."""
    import os

    raw = os.environ.get(SETTINGS_ENV)
    if not raw:
        raise RuntimeError(f"{SETTINGS_ENV} is not set")
    return create_app(ServeSettings.model_validate_json(raw))
