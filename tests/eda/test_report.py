"""The HTML report: self-contained, and rendered by a real headless Chromium."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from plotly.offline import get_plotlyjs

from tabpipe.config import SourceSpec
from tabpipe.data.ingest import read_source
from tabpipe.eda.explore import explore, write_exploration

DATA = Path(__file__).parents[1] / "data"
SECTIONS = (
    "Overview",
    "Warnings",
    "Contract",
    "Cleaning ledger",
    "Columns",
    "Missing values",
    "Correlations",
    "Features vs target",
    "Train vs test",
)


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("CI") == "true":
        pytest.fail("chromium is not installed (CI installs it in .ci/run)")
    pytest.skip("chromium is not installed (apt-get install chromium)")


@pytest.fixture(scope="module")
def report_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    frame = read_source(SourceSpec(path=str(DATA / "horse_colic.csv")))
    result = explore(frame, "outcome", title="horse colic: data report")
    folder = tmp_path_factory.mktemp("eda")
    return write_exploration(result, folder)["report.html"]


def test_report_is_self_contained(report_file: Path) -> None:
    page = report_file.read_text(encoding="utf-8")
    for section in SECTIONS:
        assert f">{section}</h2>" in page
    outside = page.replace(get_plotlyjs(), "")  # the library inlined once, then our page
    assert len(page) - len(outside) > 1_000_000
    assert "<script src" not in outside and "<link" not in outside
    assert 'src="http' not in outside and "cdn." not in outside.lower()
    assert "Plotly.newPlot" in page
    assert "removed: missing target" in page  # the ledger is shown


@pytest.mark.slow
def test_report_renders_in_headless_chromium(report_file: Path, tmp_path: Path) -> None:
    browser = chromium()
    shot = tmp_path / "report.png"
    common = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--virtual-time-budget=10000",
    ]
    subprocess.run(
        [*common, "--window-size=1400,3000", f"--screenshot={shot}", str(report_file)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 100_000  # a blank page compresses to a few KB
    dom = subprocess.run(
        [*common, "--dump-dom", str(report_file)],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert dom.count('class="main-svg"') >= 10  # plotly drew its charts offline
