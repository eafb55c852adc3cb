"""A workspace with a trained titanic model (LightGBM), shared by the serving tests."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tabpipe import api
from tabpipe.config import build_spec
from tabpipe.workspace import Workspace

DATA = Path(__file__).parents[1] / "data"


def train(root: Path, source: str, target: str, name: str, models: tuple[str, ...]) -> None:
    spec = build_spec(
        {
            "source": {"path": str(DATA / source)},
            "target": target,
            "name": name,
            "time_budget": 20,
            "models": list(models),
            "split": {"folds": 2},
        }
    )
    with Workspace(root) as ws:
        api.run(spec, ws, show_progress=False)


@pytest.fixture(scope="session")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("serving-ws")
    train(root, "titanic.csv", "Survived", "titanic", ("lightgbm",))
    return root


def wait_ready(client: TestClient, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.get("/v2/health/ready").status_code == 200:
            return
        time.sleep(0.02)
    raise AssertionError(f"not ready after {timeout} s: {client.get('/v2/health/ready').json()}")


@pytest.fixture
def ready():  # type: ignore[no-untyped-def]
    """``ready(client)`` waits until the app has loaded and warmed its model."""
    return wait_ready


@pytest.fixture
def settings_factory(workspace: Path):  # type: ignore[no-untyped-def]
    from tabpipe.serving.settings import ServeSettings

    def make(**kw: object) -> ServeSettings:
        base: dict[str, object] = {"workspace": workspace, "model": "titanic", "poll_seconds": 0}
        base.update(kw)
        return ServeSettings.model_validate(base)

    return make


@pytest.fixture
def client(settings_factory) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    from tabpipe.serving.app import create_app

    with TestClient(create_app(settings_factory())) as c:
        wait_ready(c)
        yield c
