"""A workspace with a trained titanic model (LightGBM), shared by the serving tests."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from tabpipe import api
from tabpipe.config import build_spec
from tabpipe.registry import Registry
from tabpipe.workspace import Workspace

DATA = Path(__file__).parents[1] / "data"


def train(
    root: Path, source: str, target: str, name: str, models: tuple[str, ...], **extra: object
) -> None:
    spec = build_spec(
        {
            "source": {"path": str(DATA / source)},
            "target": target,
            "name": name,
            "time_budget": 20,
            "models": list(models),
            "split": {"folds": 2},
            # one model, not an ensemble: the contribution tests need a single booster
            "selection": {"ensemble": False},
            "max_trials": 4,
            **extra,
        }
    )
    with Workspace(root) as ws:
        api.run(spec, ws, show_progress=False)


@pytest.fixture(scope="session")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("serving-ws")
    train(root, "titanic.csv", "Survived", "titanic", ("lightgbm",))
    return root


@pytest.fixture(scope="session")
def decided_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A titanic model with a cost-optimal threshold, sigmoid calibration, Age imputed by
    nearest neighbours inside the model, and declared constraints in its data contract."""
    root = tmp_path_factory.mktemp("decided-ws")
    train(
        root,
        "titanic.csv",
        "Survived",
        "titanic_decided",
        ("lightgbm",),
        calibration="sigmoid",
        threshold={"cost": {"fp": 1, "fn": 5}},
        cleaning={"impute_numeric": "knn"},
        columns={"Age": {"maximum": 100}, "Embarked": {"categories": ["S", "C", "Q"]}},
    )
    return root


def wait_ready(client: TestClient, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.get("/v2/health/ready").status_code == 200:
            return
        time.sleep(0.02)
    raise AssertionError(f"not ready after {timeout} s: {client.get('/v2/health/ready').json()}")


@pytest.fixture(scope="session")
def two_versions(workspace: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the session workspace with a second titanic version; champion at 1 (the tests
    promote, so a test reads the champion it finds)."""
    root = tmp_path_factory.mktemp("swap") / "ws"
    shutil.copytree(workspace, root)
    spec = build_spec(
        {
            "source": {"path": str(DATA / "titanic.csv")},
            "target": "Survived",
            "name": "titanic",
            "time_budget": 20,
            "models": ["lightgbm"],
            "split": {"folds": 2},
            "seed": 7,
        }
    )
    with Workspace(root) as ws:
        summary = api.run(spec, ws, show_progress=False)
        assert summary.version.version == 2
        Registry(ws).set_alias("titanic", "champion", 1, actor="test", reason="start at 1")
    return root


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(
    settings: object, port: int, log: Path, workers: int = 1, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """The server as ``tabpipe serve`` and the Docker image run it (``tabpipe.serving.server``),
    in its own process; its JSON log goes to a file (a pipe could fill and block)."""
    from tabpipe.serving.settings import SETTINGS_ENV

    full_env = {**os.environ, **(env or {}), SETTINGS_ENV: settings.model_dump_json()}  # type: ignore[attr-defined]
    with log.open("wb") as sink:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tabpipe.serving.server",
                "--port",
                str(port),
                "--workers",
                str(workers),
            ],
            env=full_env,
            stderr=sink,
        )


def wait_http_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the server exited"
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("server not ready")


@pytest.fixture(scope="session")
def server_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[[object], tuple[str, subprocess.Popen[bytes], Path]]]:
    """Start real uvicorn servers on free loopback ports; stopped at the end of the session."""
    started: list[subprocess.Popen[bytes]] = []

    def start(
        settings: object, workers: int = 1, env: dict[str, str] | None = None
    ) -> tuple[str, subprocess.Popen[bytes], Path]:
        port = free_port()
        log = tmp_path_factory.mktemp("server") / "server.log"
        proc = start_server(settings, port, log, workers, env)
        started.append(proc)
        url = f"http://127.0.0.1:{port}"
        wait_http_ready(url, proc)
        return url, proc, log

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)


@pytest.fixture(scope="session")
def live_server(workspace: Path, server_factory) -> str:  # type: ignore[no-untyped-def]
    """URL of a real server for the session's titanic model (no auth, no hot swap)."""
    from tabpipe.serving.settings import ServeSettings

    url, _, _ = server_factory(ServeSettings(workspace=workspace, model="titanic", poll_seconds=0))
    return str(url)
