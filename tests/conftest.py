"""Shared fixtures: service URLs and workspaces trained by real runs."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from sqlalchemy import create_engine, text
from sqlalchemy.exc import SQLAlchemyError

from support import (
    DATA,
    PG_URL,
    SharedStore,
    drop_pg_schema,
    pg_schema_url,
    require_service,
    train,
)


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


@pytest.fixture
def pg_store_url(pg_url: str) -> Iterator[str]:
    """A metadata store URL on PostgreSQL in a schema of its own, dropped afterwards."""
    schema, url = pg_schema_url(pg_url)
    yield url
    drop_pg_schema(pg_url, schema)


@pytest.fixture(scope="session")
def pg_shared_store(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedStore]:
    """Two `tabpipe run` processes started together on one PostgreSQL store (seeds 1 and 2)."""
    schema, url = pg_schema_url(pg_url)
    root = tmp_path_factory.mktemp("shared-store")
    procs = []
    for seed in (1, 2):
        spec = root.parent / f"titanic-{seed}.yaml"
        spec.write_text(
            yaml.safe_dump(
                {
                    "source": {"path": str(DATA / "titanic.csv")},
                    "target": "Survived",
                    "name": "titanic",
                    "models": ["linear"],
                    "split": {"folds": 2},
                    "time_budget": 5,
                    "max_trials": 2,
                    "n_jobs": 1,
                    "selection": {"ensemble": False},
                    "seed": seed,
                }
            )
        )
        command = [str(Path(sys.executable).parent / "tabpipe"), "run", str(spec), "-q"]
        procs.append(
            subprocess.Popen(
                [*command, "--workspace", str(root), "--db-url", url],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env={**os.environ, "OMP_NUM_THREADS": "1"},
            )
        )
    logs = tuple(proc.communicate(timeout=300)[0].decode() for proc in procs)
    for proc, log in zip(procs, logs, strict=True):
        assert proc.returncode == 0, log
    yield SharedStore(root, url, logs)
    drop_pg_schema(pg_url, schema)


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
