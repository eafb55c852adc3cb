"""Scale-out: two server processes on one PostgreSQL store follow the same alias."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from support import TITANIC_ROW, SharedStore, free_port, wait_until_up
from tabpipe.registry import Registry
from tabpipe.workspace import Workspace

POLL = 0.5
#: Time allowed past the poll interval to load and warm the new bundle.
LOAD_MARGIN = 15.0
ROW = TITANIC_ROW


def serve(store: SharedStore) -> tuple[subprocess.Popen[bytes], str]:
    """Start a server process (readiness is waited for by the caller)."""
    port = free_port()
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "tabpipe"),
            "serve",
            "titanic",
            "--workspace",
            str(store.root),
            "--db-url",
            store.url,
            "--poll-seconds",
            str(POLL),
            "--port",
            str(port),
        ]
    )
    return proc, f"http://127.0.0.1:{port}"


def served_version(url: str) -> int:
    body = httpx.post(f"{url}/v1/models/titanic/predict", json=[ROW], timeout=10).json()
    return int(body["version"])


@pytest.mark.slow
@pytest.mark.service
def test_two_servers_follow_a_promotion_on_a_shared_postgresql_store(
    pg_shared_store: SharedStore,
) -> None:
    servers = [serve(pg_shared_store) for _ in range(2)]  # both start at once
    try:
        for proc, url in servers:
            wait_until_up(url, proc, "/v2/health/ready")
        with Workspace(pg_shared_store.root, pg_shared_store.url) as ws:
            registry = Registry(ws)
            champion = registry.resolve("titanic").version
            assert [served_version(url) for _, url in servers] == [champion, champion]
            other = 1 if champion == 2 else 2
            registry.promote("titanic", other, actor="test", reason="scale-out")
        promoted = time.monotonic()
        pending = {url for _, url in servers}
        while pending and time.monotonic() - promoted < POLL + LOAD_MARGIN:
            pending = {url for url in pending if served_version(url) != other}
            time.sleep(0.05)
        elapsed = time.monotonic() - promoted
        assert not pending, f"still on version {champion} after {POLL + LOAD_MARGIN} s: {pending}"
        print(f"both servers answer from version {other} {elapsed:.2f} s after the promotion")
        # and they stay on it: every request now answers from the new version
        assert [served_version(url) for _, url in servers for _ in range(5)] == [other] * 10
    finally:
        for proc, _ in servers:
            proc.send_signal(signal.SIGTERM)
        for proc, _ in servers:
            proc.wait(timeout=30)
