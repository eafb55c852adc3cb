"""The prediction page of ``tabpipe serve`` at ``/``: a form generated from the bundle's signature.

The form adds one check of its own (an empty field) and otherwise validates
through ``Signature.check``, like every API request: a value that cannot be read
is explained next to its field, and values outside the training range or unseen
categories come back as warnings. The prediction comes from the same predictor
as the API. A CSV upload scores a whole file and returns it for download.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from fastapi import APIRouter, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.templating import Jinja2Templates

from tabpipe.errors import RequestError
from tabpipe.packaging.bundle import Manifest
from tabpipe.packaging.signature import ColumnSpec
from tabpipe.serving import protocols
from tabpipe.serving.runtime import Predictor

HERE = Path(__file__).resolve().parent


class LoadedModel(Protocol):
    predictor: Predictor
    manifest: Manifest
    version: int


def _empty_field(col: ColumnSpec) -> str | None:
    """The form's own check: a field left empty where the model needs a value."""
    if col.kind == "categorical":
        # "(missing)" is a choice the model saw in training when the column is nullable
        return None if col.nullable else f"{col.name} is empty: choose one of the listed values"
    if col.kind in ("datetime", "text"):
        return None if col.nullable else f"{col.name} is empty: enter a {col.kind}"
    median = f" (the training median is {col.median:g})" if col.median is not None else ""
    return f"{col.name} is empty: enter a number{median}"


def predict_router(get_loaded: Callable[[], LoadedModel]) -> APIRouter:
    router = APIRouter()
    templates = Jinja2Templates(directory=HERE / "templates")

    @router.get("/static/plotly.min.js", include_in_schema=False)
    async def plotly_js() -> FileResponse:
        import plotly

        js = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"
        return FileResponse(js, media_type="application/javascript")

    @router.get("/static/style.css", include_in_schema=False)
    async def style() -> FileResponse:
        return FileResponse(HERE / "static" / "style.css", media_type="text/css")

    @router.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Response:
        return Response(status_code=204)

    @router.get("/", response_class=HTMLResponse)
    async def form(request: Request) -> HTMLResponse:
        loaded = get_loaded()
        return templates.TemplateResponse(
            request,
            "predict.html",
            {
                "m": loaded.manifest,
                "version": loaded.version,
                "base": "",
            },
        )

    @router.post("/predict/form")
    async def predict_form(request: Request) -> JSONResponse:
        loaded = get_loaded()
        body = await request.json()
        if not isinstance(body, dict):
            raise RequestError("the form must be sent as a JSON object of field values")
        signature = loaded.manifest.signature
        values: dict[str, list[Any]] = {}
        errors: dict[str, str] = {}
        for col in signature.columns:
            text = str(body.get(col.name) or "").strip()
            problem = None if text else _empty_field(col)
            if problem:
                errors[col.name] = problem
            values[col.name] = [text or None]
        # 200 with "errors": field problems are the form's answer, shown next to the fields
        if errors:
            return JSONResponse({"errors": errors})
        try:  # the same checks and cleaning rules as every API request
            checked = signature.check(values)
        except RequestError as exc:
            return JSONResponse({"errors": {exc.field or "": str(exc)}})
        feeds = checked.feeds
        prediction = loaded.predictor.predict(feeds)
        (record,) = protocols.format_records(prediction, loaded.manifest)
        contributions = None
        if loaded.manifest.contributions:  # tree boosters: SHAP values per input column
            (contributions,) = loaded.predictor.contributions(feeds)
        return JSONResponse(
            {
                "result": record,
                "warnings": checked.warnings(),
                "classes": loaded.manifest.classes,
                "contributions": contributions,
            }
        )

    @router.post("/predict/csv")
    async def predict_csv(file: UploadFile) -> Response:
        loaded = get_loaded()
        data = await file.read()
        columns = protocols.parse_csv(data)
        prediction = loaded.predictor.predict(loaded.manifest.signature.to_feeds(columns))
        records = protocols.format_records(prediction, loaded.manifest)
        out = io.StringIO()
        names = list(columns)
        extra = list(records[0])
        writer = csv.writer(out)
        writer.writerow([*names, *extra])
        for i, record in enumerate(records):
            row = ["" if columns[n][i] is None else columns[n][i] for n in names]
            writer.writerow([*row, *(record[k] for k in extra)])
        stem = Path(file.filename or "rows.csv").stem
        return Response(
            out.getvalue(),
            media_type="text/csv",
            headers={"content-disposition": f'attachment; filename="{stem}-scored.csv"'},
        )

    return router
