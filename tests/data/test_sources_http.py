"""HTTP JSON sources against a real local HTTP server started by the test."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from tabpipe.config import HttpSource
from tabpipe.data.sources.spec import Pagination
from tabpipe.errors import SourceError
from tabpipe.workspace import Workspace

HERE = Path(__file__).parent
TOKEN = "Bearer test-token-81c2"


def penguins() -> list[dict[str, Any]]:
    with (HERE / "penguins.csv").open(encoding="utf-8") as fh:
        return [
            {
                k: (float(v) if k.endswith(("_mm", "_g")) and v else (v or None))
                for k, v in row.items()
            }
            for row in csv.DictReader(fh)
        ]


@dataclass
class Api:
    """State of the test server: its records, planned failures and what it saw."""

    records: list[dict[str, Any]]
    failures: dict[tuple[str, int], list[int]] = field(default_factory=dict)
    requests: list[tuple[str, int, float]] = field(default_factory=list)
    hang: threading.Event = field(default_factory=threading.Event)
    url: str = ""


def make_handler(api: Api) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: Any) -> None:
            pass

        def send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            url = urlparse(self.path)
            q = {k: v[0] for k, v in parse_qs(url.query).items()}
            route = url.path.strip("/")
            page = int(q.get("page", q.get("offset", q.get("cursor", "1")) or 1))
            api.requests.append((route, page, time.monotonic()))
            if self.headers.get("authorization") != TOKEN:
                self.send(401, {"error": "missing or wrong token"})
                return
            plan = api.failures.get((route, page))
            if plan:
                status = plan.pop(0)
                self.send(
                    status, {"error": "planned"}, {"retry-after": "0"} if status == 429 else None
                )
                return
            size = int(q.get("limit", 50))
            if route == "page":
                chunk = api.records[(page - 1) * size : page * size]
                self.send(200, {"data": {"items": chunk}, "page": page})
            elif route == "offset":
                self.send(200, {"results": api.records[page : page + size]})
            elif route == "cursor":
                start = page if "cursor" in q else 0
                nxt = start + 50 if start + 50 < len(api.records) else None
                self.send(200, {"items": api.records[start : start + 50], "meta": {"next": nxt}})
            elif route == "link":
                chunk = api.records[(page - 1) * 100 : page * 100]
                more = page * 100 < len(api.records)
                link = {"link": f'<{api.url}/link?page={page + 1}>; rel="next"'} if more else {}
                self.send(200, chunk, link)
            elif route == "storm":
                self.send(500, {"error": "down"})
            elif route == "hang":
                if page >= 3:
                    api.hang.wait(30)
                self.send(200, {"items": api.records[(page - 1) * 10 : page * 10]})
            elif route == "notjson":
                self.send(200, b"<html>maintenance</html>")
            else:
                self.send(404, {"error": "no route"})

    return Handler


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    state = Api(records=penguins())
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("TP_TEST_API_TOKEN", TOKEN)
    yield state
    state.hang.set()
    server.shutdown()
    server.server_close()


def source(api: Api, route: str, **kwargs: Any) -> HttpSource:
    return HttpSource(
        kind="http", url=f"{api.url}/{route}", auth_env="TP_TEST_API_TOKEN", backoff=0.01, **kwargs
    )


def test_page_pagination_with_429_and_500_retried(workspace: Workspace, api: Api) -> None:
    api.failures = {("page", 2): [429, 429], ("page", 4): [500, 503]}
    spec = source(
        api, "page", records_path="data.items", pagination=Pagination(style="page", page_size=50)
    )
    record, report = workspace.ingest_report(spec)
    assert record.rows == 344 and record.columns == 7
    assert any("4 request(s) retried" in w for w in report.warnings)
    frame = workspace.snapshots.frame(record)
    assert frame["species"].tolist() == [r["species"] for r in api.records]


def test_offset_cursor_link_give_the_same_snapshot(workspace: Workspace, api: Api) -> None:
    ids = set()
    for spec in (
        source(
            api,
            "offset",
            records_path="results",
            pagination=Pagination(style="offset", page_size=40),
        ),
        source(
            api,
            "cursor",
            records_path="items",
            pagination=Pagination(style="cursor", cursor_path="meta.next", size_param=None),
        ),
        source(api, "link", pagination=Pagination(style="link", size_param=None)),
    ):
        record, _ = workspace.ingest_report(spec, name="penguins")
        assert record.rows == 344
        ids.add(record.id)
    assert len(ids) == 1


def test_rate_limit_spaces_requests(workspace: Workspace, api: Api) -> None:
    spec = source(
        api,
        "page",
        records_path="data.items",
        rate_limit=20.0,
        pagination=Pagination(style="page", page_size=50),
    )
    workspace.ingest_report(spec)
    times = [t for _, _, t in api.requests]
    assert len(times) == 7  # 344 records in pages of 50
    assert times[-1] - times[0] >= 6 * 0.05 * 0.95  # 20 requests/s at most


def test_500_storm_gives_up_with_a_clear_error(workspace: Workspace, api: Api) -> None:
    with pytest.raises(
        SourceError, match=r"storm \(page 1\): gave up after 4 attempts; last: HTTP 500"
    ):
        workspace.ingest_report(source(api, "storm", max_retries=3))
    assert workspace.snapshots.list() == []


def test_auth_missing_not_json_and_bad_path(
    workspace: Workspace, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TP_TEST_API_TOKEN", "Bearer wrong")
    with pytest.raises(SourceError, match="HTTP 401"):
        workspace.ingest_report(source(api, "page", records_path="data.items"))
    monkeypatch.delenv("TP_TEST_API_TOKEN")
    with pytest.raises(SourceError, match=r"TP_TEST_API_TOKEN .auth_env. is not set"):
        workspace.ingest_report(source(api, "page"))
    monkeypatch.setenv("TP_TEST_API_TOKEN", TOKEN)
    with pytest.raises(SourceError, match="not JSON"):
        workspace.ingest_report(source(api, "notjson"))
    with pytest.raises(
        SourceError, match=r"records_path 'data.rows' does not lead to a list.*data, page"
    ):
        workspace.ingest_report(source(api, "page", records_path="data.rows"))
    assert workspace.snapshots.list() == []


@pytest.mark.slow
def test_killed_halfway_registers_nothing(workspace: Workspace, api: Api, tmp_path: Path) -> None:
    spec = tmp_path / "api.yaml"
    spec.write_text(
        f"kind: http\nurl: {api.url}/hang\nrecords_path: items\nauth_env: TP_TEST_API_TOKEN\n"
        "pagination: {style: page, page_size: 10}\n",
        encoding="utf-8",
    )
    env = {**os.environ, "TABPIPE_WORKSPACE": str(workspace.root)}
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("tabpipe")), "ingest", str(spec)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while not any(page == 3 for _, page, _ in api.requests) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert any(page == 3 for _, page, _ in api.requests), "the ingest never reached page 3"
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert workspace.snapshots.list() == []
    assert not (workspace.artifacts.root / "table").exists()
    api.hang.set()
    record, _ = workspace.ingest_report(
        source(api, "hang", records_path="items", pagination=Pagination(style="page", page_size=10))
    )
    assert record.rows == 344 and [r.id for r in workspace.snapshots.list()] == [record.id]
