"""API-key sign-in for the web app: the server's keys, as a header or a cookie."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from tabpipe.serving.auth import KeyRing, presented_key

if TYPE_CHECKING:
    from tabpipe.ui.app import UiSettings

COOKIE = "tabpipe_key"
OPEN_PATHS = frozenset({"/login", "/static/style.css", "/favicon.ico"})


def install_login(app: FastAPI, settings: UiSettings, page: Callable[..., HTMLResponse]) -> None:
    """Guard every page when keys are configured; ``/login`` sets an HttpOnly cookie."""
    keys = KeyRing.load(settings.api_keys_env, settings.api_keys_file)

    @app.middleware("http")
    async def require_key(request: Request, call_next: Any) -> Response:
        """The server's API keys: a header, or a cookie set by the login form."""
        if not keys.enabled or request.url.path in OPEN_PATHS:
            response: Response = await call_next(request)
            return response
        presented = presented_key(
            {k.lower().encode(): v.encode("latin-1") for k, v in request.headers.items()}
        ) or request.cookies.get(COOKIE)
        if keys.accepts(presented):
            response = await call_next(request)
            return response
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": "an API key is required"}, status_code=401)
        return RedirectResponse(f"{settings.base}/login", status_code=303)

    @app.get("/login", response_class=HTMLResponse)
    async def login_form(request: Request) -> HTMLResponse:
        return page(request, "login.html", failed=False)

    @app.post("/login", response_class=HTMLResponse)
    async def login(request: Request) -> Response:
        form = await request.form()
        key = str(form.get("key", ""))
        if not keys.accepts(key):
            return page(request, "login.html", 401, failed=True)
        response = RedirectResponse(f"{settings.base}/", status_code=303)
        response.set_cookie(COOKIE, key, httponly=True, samesite="strict")
        return response
