"""The prediction page of `tabpipe serve` in a real browser."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from support import DATA, screenshot, start

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(titanic_ws: Path) -> Iterator[str]:
    proc, url = start(["serve", "titanic", "-w", str(titanic_ws)])
    yield url
    proc.terminate()
    proc.wait(timeout=30)


def form_values(page: Any) -> dict[str, str]:
    values: dict[str, str] = page.evaluate(
        "() => Object.fromEntries(new FormData(document.getElementById('predict-form')))"
    )
    return values


def test_form_prediction_equals_the_api(page: Any, served: str) -> None:
    page.goto(served + "/")
    page.select_option("select[name=Sex]", "female")
    page.fill("input[name=Age]", "29")
    page.click("button:has-text('Predict')")
    page.wait_for_selector("#result-card:not([hidden])")
    page.wait_for_selector("#proba-chart .main-svg")
    shown = page.inner_text("#prediction")
    values = form_values(page)
    api = httpx.post(f"{served}/invocations", json={"dataframe_records": [values]}).json()
    assert shown == str(api["predictions"][0]["prediction"])
    screenshot(page, "predict-page")
    assert page.console_errors == []


def test_empty_and_out_of_range_fields_are_explained(page: Any, served: str) -> None:
    page.goto(served + "/")
    page.fill("input[name=Age]", "")
    page.click("button:has-text('Predict')")
    error = page.locator(".field-error[data-for=Age]")
    error.wait_for()
    page.wait_for_function("document.querySelector('.field-error[data-for=Age]').textContent != ''")
    assert "Age is empty" in error.inner_text()
    page.fill("input[name=Age]", "very old")
    page.click("button:has-text('Predict')")
    page.wait_for_function(
        "document.querySelector('.field-error[data-for=Age]').textContent.includes('number')"
    )
    assert "'very old'" in error.inner_text()
    page.fill("input[name=Age]", "250")
    page.click("button:has-text('Predict')")
    page.wait_for_selector("#result-card:not([hidden])")
    assert "outside the training range" in page.inner_text("#warnings")
    assert page.console_errors == []


def test_csv_upload_downloads_the_scored_file(
    page: Any, served: str, tmp_path: Path, titanic_ws: Path
) -> None:
    rows = pd.read_csv(DATA / "titanic.csv").head(30)
    rows.to_csv(tmp_path / "rows.csv", index=False)
    page.goto(served + "/")
    page.set_input_files("input[type=file]", str(tmp_path / "rows.csv"))
    with page.expect_download() as info:
        page.click("button:has-text('Score and download')")
    download = info.value
    assert download.suggested_filename == "rows-scored.csv"
    download.save_as(tmp_path / "scored.csv")
    scored = pd.read_csv(tmp_path / "scored.csv")
    assert list(scored.columns) == [*rows.columns, "prediction", "proba_0", "proba_1"]

    from tabpipe import api
    from tabpipe.registry import Registry
    from tabpipe.workspace import Workspace

    with Workspace(titanic_ws) as ws:
        expected = api.score(rows, Registry(ws).resolve("titanic").path)
    assert scored["prediction"].tolist() == expected["prediction"].tolist()


def test_contributions_chart_for_a_boosted_model(page: Any, tmp_path: Path) -> None:
    from support import train

    train(
        tmp_path / "ws",
        DATA / "titanic.csv",
        "Survived",
        name="boosted",
        models=["lightgbm"],
        selection={"ensemble": False},
        time_budget=5,
    )
    proc, url = start(["serve", "boosted", "-w", str(tmp_path / "ws")])
    try:
        page.goto(url + "/")
        page.select_option("select[name=Sex]", "male")
        page.click("button:has-text('Predict')")
        page.wait_for_selector("#contrib-chart .main-svg")
        labels = page.eval_on_selector_all(
            "#contrib-chart .ytick text", "els => els.map(e => e.textContent)"
        )
        assert "Sex" in labels and "Age" in labels
        assert page.locator("#contrib-note").is_hidden()
        screenshot(page, "predict-page-contributions")
        assert page.console_errors == []
    finally:
        proc.terminate()
        proc.wait(timeout=30)
