"""Shared fixtures: service URLs and workspaces trained by real runs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import SQLAlchemyError

from support import DATA, PG_URL, require_service, train


@pytest.fixture(scope="session")
def pg_url() -> str:
    try:
        engine = create_engine(PG_URL)
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
        ok, detail = True, ""
    except SQLAlchemyError as exc:
        ok, detail = False, str(exc).splitlines()[0]
    require_service("PostgreSQL", ok, f"{PG_URL}: {detail}")
    return PG_URL


@pytest.fixture(scope="session")
def titanic_ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A workspace with a model `titanic` (binary) trained by a real run."""
    root = tmp_path_factory.mktemp("titanic-ws")
    train(root, DATA / "titanic.csv", "Survived")
    yield root


@pytest.fixture(scope="session")
def ames_ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A workspace with a model `ames` (regression) trained by a real run."""
    root = tmp_path_factory.mktemp("ames-ws")
    train(root, DATA / "ames.csv", "SalePrice")
    yield root
