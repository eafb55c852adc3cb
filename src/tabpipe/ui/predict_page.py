"""The prediction page of ``tabpipe serve`` at ``/``: a form generated from the bundle's signature.

The form checks its fields (empty, not a number, outside the training range) and
explains the problem next to the field; the prediction comes from the same
predictor as the API. A CSV upload scores a whole file and returns it for download.
"""

from __future__ import annotations

import csv
import io
import math
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


def _field_problems(col: ColumnSpec, raw: Any) -> tuple[Any, str | None, str | None]:
    """(value, error, warning) for one submitted field."""
    text = "" if raw is None else str(raw).strip()
    if col.kind == "categorical":
        if not text:
            if col.nullable:
                return None, None, None  # "(missing)" is a value the model saw in training
            return None, f"{col.name} is empty: choose one of the listed values", None
        known = col.categories or []
        warning = (
            None
            if not known or text in known
            else (f"{col.name}={text!r} was not seen in training; the model treats it as unknown")
        )
        return text, None, warning
    if not text:
        median = f" (the training median is {col.median:g})" if col.median is not None else ""
        return None, f"{col.name} is empty: enter a number{median}", None
    try:
        value = float(text.replace(",", ""))
    except ValueError:
        return None, f"{col.name}={text!r} is not a number", None
    if not math.isfinite(value):
        return None, f"{col.name} must be a finite number", None
    warning = None
    if (
        col.minimum is not None
        and col.maximum is not None
        and not (col.minimum <= value <= col.maximum)
    ):
        warning = (
            f"{col.name}={value:g} is outside the training range "
            f"{col.minimum:g} to {col.maximum:g}; the prediction is an extrapolation"
        )
    return value, None, warning


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
        values: dict[str, list[Any]] = {}
        errors: dict[str, str] = {}
        warnings: list[str] = []
        for col in loaded.manifest.signature.columns:
            value, error, warning = _field_problems(col, body.get(col.name))
            if error:
                errors[col.name] = error
            if warning:
                warnings.append(warning)
            values[col.name] = [value]
        if errors:
            # 200: field problems are the form's answer, shown next to the fields
            return JSONResponse({"errors": errors})
        feeds = loaded.manifest.signature.to_feeds(values)
        prediction = loaded.predictor.predict(feeds)
        (record,) = protocols.format_records(prediction, loaded.manifest)
        contributions = None
        if loaded.manifest.contributions:  # tree boosters: SHAP values per input column
            (contributions,) = loaded.predictor.contributions(feeds)
        return JSONResponse(
            {
                "result": record,
                "warnings": warnings,
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
