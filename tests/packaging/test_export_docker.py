"""The Docker export's build context, run without Docker: the Dockerfile's own steps in a venv.

There is no Docker engine on the development machines, so this test reads the
exported ``Dockerfile`` and replays it: ``COPY`` into a folder standing for
``/srv``, every ``RUN`` (but the user creation) in a fresh venv standing for the
image's Python, ``ENV`` as the server's only environment, then ``CMD``; it waits
for the ``HEALTHCHECK`` URL and scores a row over HTTP. An instruction the
replay does not know fails the test, so the test cannot drift from the file.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import venv
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tabpipe.packaging.export import export

FIXTURE = Path(__file__).parent / "fixtures" / "bundle_v1"
ROW = {
    "Pclass": 3,
    "Sex": "male",
    "Age": 22.0,
    "SibSp": 1,
    "Parch": 0,
    "Fare": 7.25,
    "Embarked": "S",
}
#: Instructions that change nothing a process in the image sees (or need root: the user).
NOT_REPLAYED = {"FROM", "USER", "EXPOSE", "HEALTHCHECK"}
SKIPPED_RUN = ("useradd ",)


@dataclass
class Image:
    """What replaying the Dockerfile gives: environment, working folder, command, probe."""

    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    cmd: list[str] = field(default_factory=list)
    health_url: str = ""
    python: str = ""


def instructions(text: str) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", text)
    out = []
    for raw in joined.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def replay(context: Path, root: Path, bin_dir: Path) -> Image:
    """Run the Dockerfile's steps with ``root`` standing for the image's ``/``."""

    def local(path: str) -> Path:
        return root / path.lstrip("/")

    image = Image()
    for word, args in instructions((context / "Dockerfile").read_text()):
        if word == "FROM":
            image.python = re.fullmatch(r"python:(\d+\.\d+)-slim", args).group(1)  # type: ignore[union-attr]
        elif word == "ENV":
            for pair in shlex.split(args):
                name, _, value = pair.partition("=")
                image.env[name] = value
        elif word == "WORKDIR":
            image.workdir = args
            local(args).mkdir(parents=True, exist_ok=True)
        elif word == "COPY":
            source, dest = shlex.split(args)
            target = local(dest if dest.startswith("/") else f"{image.workdir}/{dest}")
            if (context / source).is_dir():
                shutil.copytree(context / source, target)
            else:
                target = target / source if dest.endswith((".", "/")) else target
                shutil.copy2(context / source, target)
        elif word == "RUN":
            if args.startswith(SKIPPED_RUN):
                continue
            env = {**base_env(bin_dir), **image.env}
            subprocess.run(
                args, shell=True, check=True, cwd=local(image.workdir), env=env, timeout=600
            )
        elif word == "CMD":
            image.cmd = json.loads(args)
        elif word == "HEALTHCHECK":
            image.health_url = re.search(r"http://[^'\"]+", args).group(0)  # type: ignore[union-attr]
        else:
            assert word in NOT_REPLAYED, f"the replay does not know {word}"
    return image


def base_env(bin_dir: Path) -> dict[str, str]:
    """A clean environment with the venv first on PATH (pip's index settings kept)."""
    keep = {k: v for k, v in os.environ.items() if k.startswith("PIP_") or k in {"HOME", "TMPDIR"}}
    return {**keep, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}


@pytest.mark.slow
def test_docker_context_installs_from_its_lock_and_serves(tmp_path: Path) -> None:
    context = export(FIXTURE, tmp_path / "context", "docker")
    root = tmp_path / "image"
    python = root / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(python)
    bin_dir = python / "bin"
    image = replay(context, root, bin_dir)
    assert image.python == f"{sys.version_info.major}.{sys.version_info.minor}"
    # paths inside the image become paths under ``root``; the server listens on loopback
    port = free_port()
    env = {k: v.replace("/srv", str(root / "srv")) for k, v in image.env.items()}
    command = [a.replace("/srv", str(root / "srv")) for a in image.cmd]
    command[command.index("--port") + 1] = str(port)
    command[command.index("--host") + 1] = "127.0.0.1"
    assert command[:3] == ["python", "-m", "tabpipe.serving.server"]
    health = image.health_url.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
    log = tmp_path / "server.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [str(bin_dir / "python"), *command[1:]],
            cwd=root / image.workdir.lstrip("/"),
            env={**base_env(bin_dir), **env},
            stderr=sink,
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                if httpx.get(health, timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "not ready after 120 s"
            time.sleep(0.2)
        split = {"dataframe_split": {"columns": list(ROW), "data": [list(ROW.values())]}}
        answer = httpx.post(f"http://127.0.0.1:{port}/invocations", json=split, timeout=10)
        assert answer.status_code == 200, answer.text
        row = answer.json()["predictions"][0]
        assert row["proba_0"] + row["proba_1"] == pytest.approx(1.0)
        # the image's Python has no training stack: the served code did not need it
        done = subprocess.run(
            [str(bin_dir / "python"), "-c", "import sklearn"], capture_output=True, check=False
        )
        assert done.returncode != 0
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
