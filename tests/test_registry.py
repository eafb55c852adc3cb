"""The registry under concurrent writers, on SQLite and on the real PostgreSQL.

Each worker thread opens its own workspace (its own engine and connections),
as a separate process would; a barrier releases them together.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from tabpipe.registry import CHAMPION, Registry
from tabpipe.workspace import Workspace

T = TypeVar("T")
ROUNDS = 4


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.service)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A workspace folder and its metadata store URL (SQLite file or a PostgreSQL schema)."""
    if request.param == "sqlite":
        yield tmp_path, f"sqlite:///{tmp_path / 'metadata.db'}"
    else:
        yield tmp_path, request.getfixturevalue("pg_store_url")


def together(store: tuple[Path, str], jobs: list[Callable[[Registry], T]]) -> list[T]:
    """Run each job in its own thread with its own workspace, all released at once."""
    workspaces = [Workspace(*store) for _ in jobs]
    barrier = threading.Barrier(len(jobs))
    results: list[T | None] = [None] * len(jobs)
    errors: list[BaseException] = []

    def work(i: int) -> None:
        registry = Registry(workspaces[i])
        barrier.wait()
        try:
            results[i] = jobs[i](registry)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a worker is stuck (a lock never released)"
    for ws in workspaces:
        ws.close()
    assert errors == [], errors
    return [r for r in results if r is not None]


def register(bundle: str) -> Callable[[Registry], int]:
    def job(registry: Registry) -> int:
        return registry.register(
            "m", task="binary", target="y", bundle_id=bundle, run_id="r", metrics={}
        ).version

    return job


def test_concurrent_registers_get_distinct_versions(store: tuple[Path, str]) -> None:
    # the first registers of a new model race on the models row too
    first = together(store, [register(f"b{i}") for i in range(4)])
    assert sorted(first) == [1, 2, 3, 4]
    second = together(store, [register(f"c{i}") for i in range(4)])
    assert sorted(second) == [5, 6, 7, 8]
    with Workspace(*store) as ws:
        versions = Registry(ws).versions("m")
    assert [v.version for v in versions] == list(range(1, 9))
    assert {v.bundle_id: v.version for v in versions} == {
        **{f"b{i}": v for i, v in zip(range(4), first, strict=True)},
        **{f"c{i}": v for i, v in zip(range(4), second, strict=True)},
    }


def test_concurrent_registers_of_one_bundle_share_one_version(store: tuple[Path, str]) -> None:
    together(store, [register("first")])
    assert together(store, [register("same") for _ in range(4)]) == [2, 2, 2, 2]
    with Workspace(*store) as ws:
        assert [v.bundle_id for v in Registry(ws).versions("m")] == ["first", "same"]


def promote(version: int) -> Callable[[Registry], int]:
    def job(registry: Registry) -> int:
        return registry.promote("m", version, actor=f"worker-{version}", reason="race").version

    return job


def assert_chain(events: list[dict[str, object]]) -> None:
    """Each move's ``previous`` is the version the move before it set: no lost update."""
    for before, after in itertools.pairwise(events):
        assert after["previous"] == before["version"], events


def test_concurrent_promotions_serialise_with_a_complete_history(
    store: tuple[Path, str],
) -> None:
    together(store, [register(f"b{i}") for i in range(1, 4)])
    # the very first promotions race on creating the alias row
    together(store, [promote(1), promote(2)])
    for _ in range(ROUNDS):
        together(store, [promote(2), promote(3)])
    with Workspace(*store) as ws:
        registry = Registry(ws)
        final = registry.resolve("m", CHAMPION).version
        events = [e for e in registry.history("m") if e["alias"] == CHAMPION]
    assert len(events) == 2 + 2 * ROUNDS
    assert events[0]["previous"] is None
    assert_chain(events)
    assert events[-1]["version"] == final
    # every round recorded both promotions
    for i in range(2, len(events), 2):
        assert {events[i]["actor"], events[i + 1]["actor"]} == {"worker-2", "worker-3"}


def test_a_rollback_racing_a_promotion_keeps_the_history_a_chain(
    store: tuple[Path, str],
) -> None:
    together(store, [register(f"b{i}") for i in range(1, 4)])
    together(store, [promote(1)])
    together(store, [promote(2)])

    def roll_back(registry: Registry) -> int:
        return registry.rollback("m", actor="rollback", reason="race").version

    together(store, [roll_back, promote(3)])
    with Workspace(*store) as ws:
        registry = Registry(ws)
        events = [e for e in registry.history("m") if e["alias"] == CHAMPION]
        final = registry.resolve("m", CHAMPION).version
    assert len(events) == 4
    assert_chain(events)
    assert events[-1]["version"] == final
