"""A real two-node Ray cluster on loopback, started once for the engine tests.

The head node and one worker node each offer one CPU. Each ``ray start --block`` runs
in its own process group, so teardown ends exactly the processes these tests started.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from support import free_port

RAY = Path(sys.executable).with_name("ray")
AUTH = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")
OBJECT_STORE_BYTES = str(150 * 1024 * 1024)


@dataclass
class Cluster:
    address: str
    nodes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def process_groups(self) -> set[int]:
        return {p.pid for p in self.nodes}


def _node_args() -> list[str]:
    ports = {
        "--node-manager-port": free_port(),
        "--object-manager-port": free_port(),
        "--metrics-export-port": free_port(),
        "--runtime-env-agent-port": free_port(),
        "--dashboard-agent-listen-port": free_port(),
        "--dashboard-agent-grpc-port": free_port(),
    }
    return [
        "--node-ip-address=127.0.0.1",
        "--num-cpus=1",
        f"--object-store-memory={OBJECT_STORE_BYTES}",
        "--disable-usage-stats",
        "--block",
        *(f"{k}={v}" for k, v in ports.items()),
    ]


def _start(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # has the token
    # A loaded 2-core machine starts a node's agents slowly: give them time.
    env.update(
        OMP_NUM_THREADS="1",
        RAY_agent_register_timeout_ms="120000",
        RAY_raylet_start_wait_time_s="120",
    )
    with log.open("wb") as out:
        return subprocess.Popen(
            [str(RAY), "start", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )


def _wait_until_started(node: subprocess.Popen[bytes], log: Path) -> None:
    """Until ``ray start --block`` says the node runs (it prints that once)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert node.poll() is None, f"a Ray node exited with code {node.returncode}: see {log}"
        if b"Ray runtime started" in log.read_bytes():
            return
        time.sleep(0.25)
    pytest.fail(f"a Ray node did not start within 120 s: see {log}")


def stop(node: subprocess.Popen[bytes]) -> None:
    """End one node: its ``ray start --block`` process group, by id."""
    if node.poll() is None:
        os.killpg(node.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            node.wait(timeout=5)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(node.pid, signal.SIGKILL)  # what is left of the node (workers follow raylet)


@pytest.fixture(scope="package")
def ray_cluster() -> Iterator[Cluster]:
    """The cluster's address; token authentication is on, the token in this process's env."""
    saved = {k: os.environ.get(k) for k in AUTH}
    # Before Ray is imported: its token loader reads the environment once.
    os.environ.update({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)})
    pytest.importorskip("ray")
    temp = Path(tempfile.mkdtemp(prefix="tpray", dir="/tmp"))  # short: Ray's socket paths
    port = free_port()
    cluster = Cluster(address=f"127.0.0.1:{port}")
    head = [
        "--head",
        f"--port={port}",
        f"--ray-client-server-port={free_port()}",
        "--include-dashboard=false",
        f"--temp-dir={temp}",
    ]
    try:
        cluster.nodes.append(_start([*head, *_node_args()], temp / "head.log"))
        _wait_until_started(cluster.nodes[-1], temp / "head.log")
        worker = [f"--address={cluster.address}"]
        cluster.nodes.append(_start([*worker, *_node_args()], temp / "worker.log"))
        _wait_until_started(cluster.nodes[-1], temp / "worker.log")
        yield cluster
    finally:
        for node in reversed(cluster.nodes):
            stop(node)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
