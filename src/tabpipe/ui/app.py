"""``tabpipe ui``: server-rendered pages over a workspace (models, runs, data, monitoring)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import plotly
from fastapi import FastAPI, Request
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    Response,
)
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel

from tabpipe.errors import NotFoundError, TabpipeError
from tabpipe.registry import Registry
from tabpipe.ui import charts, queries
from tabpipe.ui.login import install_login
from tabpipe.workspace import Workspace

HERE = Path(__file__).resolve().parent
PLOTLY_JS = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"


class UiSettings(BaseModel):
    workspace: Path | str
    db_url: str | None = None
    base: str = ""
    api_keys_env: str = "TABPIPE_API_KEYS"
    api_keys_file: Path | None = None


def create_ui_app(settings: UiSettings) -> FastAPI:
    templates = Jinja2Templates(directory=HERE / "templates")
    state: dict[str, Workspace] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        state["ws"] = Workspace(settings.workspace, settings.db_url)
        yield
        state.pop("ws").close()

    app = FastAPI(title="tabpipe", lifespan=lifespan, docs_url=None, redoc_url=None)

    def ws() -> Workspace:
        return state["ws"]

    def page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        return templates.TemplateResponse(
            request, name, {"base": settings.base, **context}, status_code=status
        )

    install_login(app, settings, page)

    @app.exception_handler(NotFoundError)
    async def not_found(request: Request, exc: Exception) -> HTMLResponse:
        return page(request, "message.html", 404, title="Not found", message=str(exc), error=True)

    @app.exception_handler(TabpipeError)
    async def tabpipe_error(request: Request, exc: Exception) -> HTMLResponse:
        return page(
            request, "message.html", 500, title="Something went wrong", message=str(exc), error=True
        )

    @app.get("/static/plotly.min.js")
    async def plotly_js() -> FileResponse:
        return FileResponse(PLOTLY_JS, media_type="application/javascript")

    @app.get("/static/style.css")
    async def style() -> FileResponse:
        return FileResponse(HERE / "static" / "style.css", media_type="text/css")

    @app.get("/favicon.ico")
    async def favicon() -> Response:
        return Response(status_code=204)

    @app.get("/", response_class=HTMLResponse)
    async def index(request: Request) -> HTMLResponse:
        return page(
            request, "index.html", models=Registry(ws()).models(), runs=queries.runs(ws(), limit=10)
        )

    @app.get("/runs", response_class=HTMLResponse)
    async def runs(request: Request) -> HTMLResponse:
        return page(request, "runs.html", runs=queries.runs(ws()))

    @app.get("/runs/{run_id}", response_class=HTMLResponse)
    async def run(request: Request, run_id: str) -> HTMLResponse:
        view = queries.run(ws(), run_id)
        board = queries.leaderboard(ws(), view)
        durations = [(s.stage, s.duration_s or 0.0) for s in view.stages if s.status == "done"]
        return page(
            request,
            "run.html",
            run=view,
            board=board,
            pareto=charts.pareto(board) if board and board.rows else None,
            test_metrics=sorted({m for r in board.rows for m in r.test}) if board else [],
            stage_chart=charts.stage_durations(durations) if durations else None,
            cleaning=queries.cleaning(ws(), view),
            has_report=queries.html_artifact(ws(), view, "report") is not None,
        )

    @app.get("/api/runs/{run_id}")
    async def run_status(run_id: str) -> JSONResponse:
        view = queries.run(ws(), run_id)
        return JSONResponse({"id": view.id, "status": view.status, "stages": len(view.stages)})

    @app.get("/runs/{run_id}/report", response_class=HTMLResponse)
    async def run_report(run_id: str) -> HTMLResponse:
        return _html_artifact(queries.run(ws(), run_id), "report")

    @app.get("/runs/{run_id}/profile", response_class=HTMLResponse)
    async def run_profile(run_id: str) -> HTMLResponse:
        return _html_artifact(queries.run(ws(), run_id), "profile_html")

    def _html_artifact(view: queries.RunView, name: str) -> HTMLResponse:
        path = queries.html_artifact(ws(), view, name)
        if path is None:
            raise NotFoundError(
                f"run {view.id} has no {name.replace('_', ' ')} (it stopped before)"
            )
        return HTMLResponse(path.read_text(encoding="utf-8"))

    @app.get("/models/{name}", response_class=HTMLResponse)
    async def model(request: Request, name: str) -> HTMLResponse:
        info, versions, history = queries.model(ws(), name)
        return page(
            request,
            "model.html",
            info=info,
            versions=versions,
            history=history,
            runs=queries.runs(ws(), model=name),
        )

    @app.get("/data", response_class=HTMLResponse)
    async def data(request: Request) -> HTMLResponse:
        return page(request, "data.html", snapshots=queries.snapshots(ws()))

    @app.get("/data/{snapshot_id}", response_class=HTMLResponse)
    async def snapshot(request: Request, snapshot_id: str) -> HTMLResponse:
        snap = queries.snapshot(ws(), snapshot_id)
        head = queries.snapshot_head(ws(), snapshot_id).to_html(
            index=False, border=0, na_rep="", escape=True
        )
        reports = []
        for run_id in snap.runs:
            path = queries.html_artifact(ws(), queries.run(ws(), run_id), "profile_html")
            if path is not None:
                reports.append((run_id, path))
        return page(request, "snapshot.html", snap=snap, head=head, reports=reports[-1:])

    @app.get("/models/{name}/monitoring", response_class=HTMLResponse)
    async def monitoring(request: Request, name: str) -> HTMLResponse:
        queries.model(ws(), name)
        return page(request, "monitoring.html", model=name, **queries.monitoring(ws(), name))

    @app.get("/models/{name}/monitoring/report", response_class=HTMLResponse)
    async def monitoring_report(name: str) -> HTMLResponse:
        from tabpipe.monitoring import report
        from tabpipe.monitoring.alerts import list_alerts
        from tabpipe.monitoring.monitor import monitor as run_monitor

        result = run_monitor(ws(), name)
        return HTMLResponse(report.render(result, list_alerts(ws(), name)))

    return app
