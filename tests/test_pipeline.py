"""The runner: caching by input ids, and resuming a run whose process was killed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import select

from support import DATA, train
from tabpipe import api
from tabpipe import metadata as md
from tabpipe.registry import Registry
from tabpipe.workspace import Workspace

# Runs the real command line in a child process that kills itself (SIGKILL: no clean-up,
# no chance to record anything) right after the train stage has finished.
KILL_AFTER_TRAIN = """
import os, signal, sys
import tabpipe.pipeline as pipeline
original = pipeline.Runner._run_stage
def run_stage(self, stage, *args, **kwargs):
    cached = original(self, stage, *args, **kwargs)
    if stage.name == "train":
        os.kill(os.getpid(), signal.SIGKILL)
    return cached
pipeline.Runner._run_stage = run_stage
from tabpipe.cli import main
sys.argv = ["tabpipe", *sys.argv[1:]]
main()
"""


def cli(*args: str, script: str | None = None) -> subprocess.CompletedProcess[str]:
    command = (
        [sys.executable, "-c", script] if script else [str(Path(sys.executable).parent / "tabpipe")]
    )
    return subprocess.run(
        [*command, *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        check=False,
    )


@pytest.mark.slow
def test_killed_run_resumes_from_the_cache_and_builds_the_same_model(tmp_path: Path) -> None:
    # A trial count, not the clock, ends the search: the same spec gives the same model.
    spec = tmp_path / "titanic.yaml"
    spec.write_text(
        f"name: titanic\nsource: {DATA / 'titanic.csv'}\ntarget: Survived\n"
        "time_budget: 600\nmax_trials: 4\n",
        encoding="utf-8",
    )
    args = ("run", str(spec), "-q")
    killed = cli(*args, "-w", str(tmp_path / "ws"), script=KILL_AFTER_TRAIN)
    assert killed.returncode == -9, killed.stderr

    with Workspace(tmp_path / "ws") as ws:
        (run,) = ws.meta.all(select(md.runs))
        assert run["status"] == "running"  # nobody got to mark it
        stages = [r["stage"] for r in ws.meta.all(select(md.stage_runs))]
        assert stages[-1] == "train" and "package" not in stages
        assert Registry(ws).models() == []

    resumed = cli(*args, "-w", str(tmp_path / "ws"))
    assert resumed.returncode == 0, resumed.stderr
    assert f"(run {run['id']}, resumed)" in resumed.stdout

    with Workspace(tmp_path / "ws") as ws:
        rows = ws.meta.all(select(md.stage_runs).where(md.stage_runs.c.run_id == run["id"]))
        last = {r["stage"]: r for r in rows}
        assert last["train"]["cached"] == 1 and last["clean"]["cached"] == 1
        assert last["package"]["cached"] == 0
        resumed_version = Registry(ws).resolve("titanic")

    clean = cli(*args, "-w", str(tmp_path / "clean"))
    assert clean.returncode == 0, clean.stderr
    with Workspace(tmp_path / "clean") as ws:
        clean_version = Registry(ws).resolve("titanic")
    # identical inputs, seed and stages: the same bundle id and the same predictions
    assert clean_version.bundle_id == resumed_version.bundle_id
    frame = pd.read_csv(DATA / "titanic.csv")
    for runtime in ("onnx", "native"):
        a = api.score(frame, clean_version.path, runtime)  # type: ignore[arg-type]
        b = api.score(frame, resumed_version.path, runtime)  # type: ignore[arg-type]
        pd.testing.assert_frame_equal(a, b)


def test_a_second_run_is_served_from_the_cache(tmp_path: Path) -> None:
    first = train(tmp_path, DATA / "penguins.csv", "species", time_budget=5)
    assert first.cached_stages == []
    second = train(tmp_path, DATA / "penguins.csv", "species", time_budget=5)
    assert second.cached_stages == [
        "clean",
        "split",
        "profile",
        "features",
        "train",
        "evaluate",
        "package",
        "report",
    ]
    assert second.version == first.version


def test_a_changed_spec_reruns_only_what_depends_on_it(tmp_path: Path) -> None:
    train(tmp_path, DATA / "penguins.csv", "species", time_budget=5)
    again = train(tmp_path, DATA / "penguins.csv", "species", time_budget=5, seed=1)
    # the profile compares the train and test split, so a new seed re-profiles too
    assert again.cached_stages == ["clean", "features"]


def test_a_failed_stage_is_recorded(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="single"):
        train(
            tmp_path,
            DATA / "penguins.csv",
            "species",
            task="binary",
            split={"test_size": 0.2},
            models=["linear"],
            source={"path": str(_one_class(tmp_path))},
        )
    with Workspace(tmp_path) as ws:
        (run,) = ws.meta.all(select(md.runs))
        assert run["status"] == "failed" and "single" in run["error"]


def _one_class(tmp_path: Path) -> Path:
    path = tmp_path / "one.csv"
    path.write_text("x,species\n" + "".join(f"{i},a\n" for i in range(30)), encoding="utf-8")
    return path
