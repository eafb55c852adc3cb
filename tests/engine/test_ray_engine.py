"""The Ray engine on a real two-node cluster: same trials as local, and a worker killed mid-trial."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from modeling.modeling_data import prepared
from support import DATA, train
from tabpipe.engine import EngineSpec
from tabpipe.modeling.train import train_candidates

pytestmark = pytest.mark.slow

SEARCH = {"models": ["lightgbm", "linear"], "max_trials": 6, "time_budget": 300.0}


def _leaderboard(summary) -> list[tuple[str, float, dict[str, float]]]:
    return [(r.name, r.cv_score, r.test) for r in summary.leaderboard.rows]


def test_a_pipeline_on_ray_gives_the_local_leaderboard(ray_cluster, tmp_path: Path) -> None:
    engine = {"parallel_trials": 2}
    local = train(tmp_path / "local", DATA / "titanic.csv", "Survived", **SEARCH, engine=engine)
    on_ray = train(
        tmp_path / "ray",
        DATA / "titanic.csv",
        "Survived",
        **SEARCH,
        engine={**engine, "kind": "ray", "address": ray_cluster.address},
    )
    assert _leaderboard(on_ray) == _leaderboard(local)
    assert len(on_ray.leaderboard.rows) >= 2


def _trial_workers(groups: set[int]) -> list[int]:
    """Worker processes (children of a raylet in these process groups) running a trial.

    Ray titles a worker process ``ray::<function>`` while it runs a task; workers have
    process groups of their own, so they are found through their parent.
    """
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            mine = os.getpgid(parent) in groups
        except (OSError, ProcessLookupError):
            continue
        if mine and title.startswith("ray::run_trial"):
            found.append(int(entry.name))
    return found


class Killer(threading.Thread):
    """Kills the first worker process seen running a trial task of this cluster."""

    def __init__(self, groups: set[int]) -> None:
        super().__init__(daemon=True)
        self.groups = groups
        self.killed: int | None = None
        self.done = threading.Event()

    def run(self) -> None:
        deadline = time.monotonic() + 60
        while not self.done.is_set() and time.monotonic() < deadline:
            for pid in _trial_workers(self.groups):
                os.kill(pid, signal.SIGKILL)
                self.killed = pid
                return
            time.sleep(0.02)


@pytest.mark.parametrize("retries", [1, 0])
def test_a_killed_worker_is_retried_or_recorded_and_the_run_finishes(
    ray_cluster, retries: int
) -> None:
    data = prepared("titanic.csv", "Survived")
    spec = data["spec"].model_copy(
        update={
            "models": ("lightgbm",),
            "max_trials": 4,
            "time_budget": 300.0,
            "engine": EngineSpec(
                kind="ray", address=ray_cluster.address, parallel_trials=2, max_retries=retries
            ),
        }
    )
    killer = Killer(ray_cluster.process_groups())
    killer.start()
    try:
        models, report, _ = train_candidates(data["frame"], data["plan"], data["report"], spec)
    finally:
        killer.done.set()
        killer.join()
    assert killer.killed is not None, "no running trial was found to kill"
    assert "lightgbm" in models
    lost = [n for n in report.notes if " lost: " in n]
    assert report.stopped_by == "max_trials=4 reached"
    if retries:
        assert lost == []
        assert len(report.trials) + report.pruned == 4
    else:
        assert len(lost) == 1 and "lightgbm trial" in lost[0], report.notes
        assert len(report.trials) + report.pruned == 3
