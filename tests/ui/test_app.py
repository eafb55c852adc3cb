"""Every page of `tabpipe ui` in a real browser, against a workspace built by real runs."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert

from support import DATA, screenshot, start
from tabpipe import metadata as md
from tabpipe.config import build_spec
from tabpipe.errors import SchemaError
from tabpipe.workspace import Workspace

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ui_ws(titanic_ws: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the trained workspace without any prediction log (other tests serve it)."""
    root = tmp_path_factory.mktemp("ui") / "ws"
    shutil.copytree(titanic_ws, root)
    shutil.rmtree(root / "predictions", ignore_errors=True)
    _add_failed_run(root)
    return root


@pytest.fixture(scope="module")
def ui_url(ui_ws: Path) -> Iterator[str]:
    proc, url = start(["ui", "-w", str(ui_ws)])
    yield url
    proc.terminate()
    proc.wait(timeout=30)


def _add_failed_run(root: Path) -> None:
    """A run that failed halfway: the penguins data with a target column that is missing."""
    from tabpipe import api

    spec = build_spec({"source": {"path": str(DATA / "penguins.csv")}, "target": "beak"})
    with Workspace(root) as ws:
        with contextlib.suppress(SchemaError):
            api.run(spec, ws, show_progress=False)
        with ws.meta.begin() as conn:  # and one still in progress
            conn.execute(
                insert(md.runs).values(
                    id="live0000run00000",
                    model_name="titanic",
                    spec={"target": "Survived"},
                    spec_hash="x",
                    status="running",
                    started_at=md.utcnow(),
                )
            )


def visit(page: Any, url: str) -> Any:
    response = page.goto(url)
    assert response is not None and response.status < 500, url
    assert "Traceback" not in page.content()
    return response


def test_models_page(page: Any, ui_url: str) -> None:
    visit(page, ui_url + "/")
    assert page.locator("text=titanic").first.is_visible()
    screenshot(page, "ui-models")
    page.click("text=titanic >> nth=0")
    page.wait_for_url("**/models/titanic")
    assert page.locator("text=champion").first.is_visible()
    assert page.locator("text=trained by run").first.is_visible()
    screenshot(page, "ui-model")
    assert page.console_errors == []


def test_run_page_with_leaderboard_and_pareto_chart(page: Any, ui_url: str) -> None:
    visit(page, ui_url + "/runs")
    page.locator("td.status-done >> xpath=.. >> a").first.click()
    page.wait_for_selector("#pareto .main-svg")
    assert page.locator("text=Leaderboard").is_visible()
    assert page.locator("text=Cleaning ledger").is_visible()
    report = page.frame_locator("#run-report")
    report.locator("text=What each millisecond buys").first.wait_for(timeout=30_000)
    assert report.locator("text=Confusion matrix").first.is_visible()
    screenshot(page, "ui-run")
    page.click("text=Open the full report")
    assert page.locator("text=run report").first.is_visible()
    assert page.console_errors == []


def test_failed_and_live_runs_explain_themselves(page: Any, ui_url: str) -> None:
    visit(page, ui_url + "/runs")
    page.locator("td.status-failed >> xpath=.. >> a").first.click()
    assert page.locator("text=This run stopped with an error").is_visible()
    assert page.locator("text=beak").first.is_visible()
    visit(page, ui_url + "/runs/live0000run00000")
    assert page.locator("#live").is_visible()
    assert page.locator("text=No stage has run yet").is_visible()
    assert page.console_errors == []


def test_data_pages_show_lineage_and_the_eda_report(page: Any, ui_url: str) -> None:
    visit(page, ui_url + "/data")
    page.locator("tr:has-text('titanic') a[href*='/data/']").first.click()
    assert page.locator("text=Model versions trained from it").is_visible()
    assert page.locator("a:has-text('titanic v1')").first.is_visible()
    frame = page.frame_locator("iframe.report")
    assert frame.locator("text=data profile").first.is_visible()
    screenshot(page, "ui-data")
    assert page.console_errors == []


def test_unknown_pages_and_empty_monitoring(page: Any, ui_url: str) -> None:
    response = visit(page, ui_url + "/models/ghost")
    assert response.status == 404
    assert page.locator("text=no model named 'ghost'").is_visible()
    visit(page, ui_url + "/models/titanic/monitoring")
    assert page.locator("text=No monitoring data yet").is_visible()
    assert page.locator("text=No retraining yet").is_visible()


def test_monitoring_page_shows_the_report_once_predictions_are_logged(
    page: Any, ui_url: str, ui_ws: Path, tmp_path: Path
) -> None:
    from tabpipe import api

    with Workspace(ui_ws) as ws:  # batch scoring writes to the prediction log
        api.predict_file(ws, "titanic", DATA / "titanic.csv", tmp_path / "scored.csv")
    visit(page, ui_url + "/models/titanic/monitoring")
    frame = page.frame_locator("iframe.report")
    frame.locator("text=titanic").first.wait_for(timeout=60_000)
    assert "No monitoring data yet" not in page.content()
    screenshot(page, "ui-monitoring")
    assert page.console_errors == []


def test_phone_screen(browser: Any, ui_url: str) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    pg = context.new_page()
    pg.goto(ui_url + "/")
    width = pg.evaluate("document.documentElement.scrollWidth")
    assert width <= 400, f"page is {width}px wide on a 390px screen"
    screenshot(pg, "ui-phone")
    context.close()


def test_empty_workspace(tmp_path: Path, page: Any) -> None:
    proc, url = start(["ui", "-w", str(tmp_path / "empty")])
    try:
        visit(page, url + "/")
        assert page.locator("text=No models in this workspace yet").is_visible()
        visit(page, url + "/data")
        assert page.locator("text=No snapshots yet").is_visible()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_api_keys_guard_the_app(tmp_path: Path, page: Any) -> None:
    keys = tmp_path / "keys.txt"
    keys.write_text("# team keys\ns3cret-key\n", encoding="utf-8")
    proc, url = start(["ui", "-w", str(tmp_path / "ws"), "--api-keys-file", str(keys)])
    try:
        visit(page, url + "/runs")
        assert page.url.endswith("/login")
        page.fill("#key", "wrong")
        page.click("button:has-text('Sign in')")
        assert page.locator("text=That key is not accepted").is_visible()
        page.fill("#key", "s3cret-key")
        page.click("button:has-text('Sign in')")
        page.wait_for_url(url + "/")
        assert page.locator("text=No models in this workspace yet").is_visible()
        import httpx

        assert httpx.get(url + "/api/runs/x").status_code == 401
        assert (
            httpx.get(url + "/api/runs/x", headers={"X-API-Key": "s3cret-key"}).status_code == 404
        )
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_the_readme_ui_command(ui_ws: Path, page: Any) -> None:
    import re

    from support import ROOT

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    (command,) = re.findall(r"^tabpipe ui .*$", readme, re.M)
    args = command.split()[1:]
    args = args[: args.index("--port")] + args[args.index("--port") + 2 :]
    proc, url = start([*args, "-w", str(ui_ws)])
    try:
        visit(page, url + "/")
        assert page.locator("text=titanic").first.is_visible()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
