"""Fixtures for the ingestion tests: a workspace and the real services.

Service URLs come from environment variables with the local defaults. Outside
CI a service that is down skips its tests with the reason; under CI=true it fails.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tabpipe.workspace import Workspace

HERE = Path(__file__).parent
REPO = HERE.parents[1]


def unavailable(what: str, reason: object) -> None:
    """Skip (or, under CI, fail) because a service or file is missing."""
    message = f"{what} unavailable: {reason}"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Workspace]:
    with Workspace(tmp_path / "ws") as ws:
        yield ws


def _database(env: str, default: str) -> Callable[[], str]:
    def check() -> str:
        url = os.environ.get(env, default)
        engine = sa.create_engine(url)
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except Exception as exc:
            unavailable(f"database {env}={url}", exc)
        finally:
            engine.dispose()
        return url

    return check


@pytest.fixture(scope="session")
def pg_url() -> str:
    return _database("TABPIPE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")()


@pytest.fixture(scope="session")
def mysql_url() -> str:
    return _database("TABPIPE_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")()


@pytest.fixture(scope="session")
def mqtt_broker() -> tuple[str, int]:
    host, _, port = os.environ.get("TABPIPE_TEST_MQTT", "127.0.0.1:1883").partition(":")
    try:
        socket.create_connection((host, int(port or 1883)), timeout=3).close()
    except OSError as exc:
        unavailable(f"MQTT broker {host}:{port}", exc)
    return host, int(port or 1883)


def run_sql(url: str, *statements: str, params: list[dict[str, Any]] | None = None) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.execute(sa.text(statement), params or [{}])
    finally:
        engine.dispose()


@pytest.fixture(name="execute", scope="session")
def execute_fixture() -> Callable[..., None]:
    """Run SQL statements against a database URL (tables the tests create and drop)."""
    return run_sql
