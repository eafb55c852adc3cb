"""Helpers shared by the tests (importable as `support` thanks to pytest's pythonpath)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from tabpipe import api
from tabpipe.config import build_spec
from tabpipe.workspace import Workspace

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
EXAMPLES = ROOT / "examples"

ARTIFACTS = ROOT / "test-artifacts" / "screenshots"

#: The first passenger of the bundled titanic data, as a request row.
TITANIC_ROW: dict[str, object] = {
    "Pclass": 3,
    "Sex": "male",
    "Age": 22,
    "SibSp": 1,
    "Parch": 0,
    "Fare": 7.25,
    "Cabin": None,
    "Embarked": "S",
}

PG_URL = os.environ.get("TABPIPE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@dataclass(frozen=True)
class SharedStore:
    """A workspace folder and a PostgreSQL metadata store two concurrent runs trained into."""

    root: Path
    url: str
    logs: tuple[str, ...]


def pg_schema_url(base_url: str, prefix: str = "tabpipe_test") -> tuple[str, str]:
    """A new empty schema on the test PostgreSQL and a URL whose search_path is that schema."""
    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    engine = create_engine(base_url)
    with engine.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    engine.dispose()
    return schema, f"{base_url}?options=-csearch_path%3D{schema}"


def drop_pg_schema(base_url: str, schema: str) -> None:
    engine = create_engine(base_url)
    with engine.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    engine.dispose()


def run_sql_file(url: str, path: Path) -> None:
    """Run a file of ``;``-separated SQL statements (``--`` comment lines skipped)."""
    sql = "\n".join(line for line in path.read_text().splitlines() if not line.startswith("--"))
    engine = create_engine(url)
    with engine.begin() as conn:
        for statement in filter(str.strip, sql.split(";\n")):
            conn.exec_driver_sql(statement)
    engine.dispose()


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require_service(name: str, check: bool, detail: str) -> None:
    """Skip with a reason when a service is down, except under CI, where it fails."""
    if check:
        return
    message = f"{name} is not reachable ({detail})"
    if in_ci():
        pytest.fail(f"{message}; CI must provide it")
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def train(workspace: Path, data: Path, target: str, **spec: object) -> api.RunSummary:
    """A real pipeline run into ``workspace`` with a small time budget."""
    raw = {"source": {"path": str(data)}, "target": target, "time_budget": 10, **spec}
    with Workspace(workspace) as ws:
        return api.run(build_spec(raw), ws, show_progress=False)


def wait_until_up(url: str, proc: subprocess.Popen[bytes], path: str = "/") -> None:
    """Poll ``url + path`` until it answers; fail if the process exits or 90 s pass."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the process exited with code {proc.returncode}"
        try:
            if httpx.get(url + path, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.terminate()
    raise AssertionError(f"{url} did not come up")


def start(args: list[str]) -> tuple[subprocess.Popen[bytes], str]:
    """``tabpipe ARGS --port P`` on a free loopback port, once it answers."""
    port = free_port()
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "tabpipe"), *args, "--port", str(port)]
    )
    url = f"http://127.0.0.1:{port}"
    wait_until_up(url, proc)
    return proc, url


def screenshot(pg: object, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    pg.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    return path
