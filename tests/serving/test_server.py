"""The uvicorn runner (``tabpipe.serving.server``) on a real server process, over raw sockets."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from support import TITANIC_ROW
from tabpipe.serving.server import JoinedWritesProtocol, uvicorn_options
from tabpipe.serving.settings import ServeSettings

BODY = json.dumps([TITANIC_ROW]).encode()


@pytest.fixture(scope="module")
def served(workspace: Path, server_factory: Any) -> tuple[str, int, Path]:
    settings = ServeSettings(workspace=workspace, model="titanic", poll_seconds=0)
    url, _, log = server_factory(settings)
    return url, int(url.rsplit(":", 1)[1]), log


def read_response(sock: socket.socket) -> tuple[bytes, bytes]:
    """One response (head, body) read off a keep-alive connection (content-length bodies)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk
        rest += chunk
    return head, rest[:length]


def post(path: str, body: bytes, extra: bytes = b"") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n".encode()
        + extra
        + b"\r\n"
    )


def test_options_use_the_joined_writes_protocol() -> None:
    options = uvicorn_options("127.0.0.1", 8000)
    assert options["http"] is JoinedWritesProtocol
    assert options["server_header"] is False and options["access_log"] is False


def test_keep_alive_head_and_scoring_answers_on_one_connection(
    served: tuple[str, int, Path],
) -> None:
    _, port, _ = served
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        # HEAD has no body write: its head must still leave at once
        sock.sendall(b"HEAD /v2/health/live HTTP/1.1\r\nhost: x\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(65536)
        assert head.startswith(b"HTTP/1.1 ")  # 200 or 405 (GET-only route): no body either way
        for _ in range(3):
            sock.sendall(post("/v1/models/titanic/predict", BODY) + BODY)
            head, body = read_response(sock)
            assert head.startswith(b"HTTP/1.1 200 ")
            assert b"\r\nx-request-id: " in head and b"\r\nserver:" not in head
            assert b"\r\ndate: " in head
            assert json.loads(body)["predictions"][0]["prediction"] in (0, 1)
        sock.sendall(post("/invocations", b"{") + b"{")
        head, body = read_response(sock)
        assert head.startswith(b"HTTP/1.1 400 ")
        assert json.loads(body)["field"] == "body"


def test_expect_100_continue_is_answered_before_the_body(served: tuple[str, int, Path]) -> None:
    _, port, _ = served
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(post("/v1/models/titanic/predict", BODY, b"expect: 100-continue\r\n"))
        interim = sock.recv(65536)
        assert interim.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        rest = interim.removeprefix(b"HTTP/1.1 100 Continue\r\n\r\n")
        assert rest == b""  # the final answer waits for the body
        sock.sendall(BODY)
        head, body = read_response(sock)
        assert head.startswith(b"HTTP/1.1 200 ")
        assert "predictions" in json.loads(body)


def test_access_log_lines_are_json_with_the_request_fields(served: tuple[str, int, Path]) -> None:
    url, _, log = served
    sent = httpx.post(
        f"{url}/v1/models/titanic/predict", json=[TITANIC_ROW], headers={"x-request-id": "abc-9"}
    )
    assert sent.status_code == 200
    deadline = time.monotonic() + 10  # lines are written in batches, at least twice a second
    entry = None
    while entry is None and time.monotonic() < deadline:
        lines = [json.loads(x) for x in log.read_text().splitlines() if x.startswith("{")]
        entry = next((e for e in lines if e.get("request_id") == "abc-9"), None)
        time.sleep(0.1)
    assert entry is not None
    assert entry["event"] == "request" and entry["logger"] == "tabpipe.serving.access"
    assert entry["method"] == "POST" and entry["path"] == "/v1/models/titanic/predict"
    assert entry["status"] == 200 and entry["ms"] > 0 and isinstance(entry["pid"], int)
    assert entry["ts"].endswith("Z") and entry["level"] == "info"


def test_serve_refuses_zero_workers(workspace: Path) -> None:
    from typer.testing import CliRunner

    from tabpipe.cli import app

    result = CliRunner().invoke(app, ["serve", "titanic", "-w", str(workspace), "--workers", "0"])
    assert result.exit_code == 1
    assert "--workers must be at least 1" in result.output
