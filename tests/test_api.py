"""Pipelines run by several processes at once on one shared PostgreSQL store."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from support import SharedStore
from tabpipe import metadata as md
from tabpipe.registry import CHAMPION, Registry
from tabpipe.workspace import Workspace


@pytest.mark.slow
@pytest.mark.service
def test_two_concurrent_runs_on_one_postgresql_store_both_finish(
    pg_shared_store: SharedStore,
) -> None:
    with Workspace(pg_shared_store.root, pg_shared_store.url) as ws:
        runs = ws.meta.all(select(md.runs).order_by(md.runs.c.started_at))
        assert [r["status"] for r in runs] == ["done", "done"]
        assert {r["spec"]["seed"] for r in runs} == {1, 2}
        registry = Registry(ws)
        versions = registry.versions("titanic")
        # each run registered its own bundle under its own number
        assert [v.version for v in versions] == [1, 2]
        assert len({v.bundle_id for v in versions}) == 2
        assert {v.run_id for v in versions} == {r["id"] for r in runs}
        # both promoted; the history is a chain and ends at the champion (the store is
        # shared for the session: a later test may move the alias by hand, after the runs)
        moves = [e for e in registry.history("titanic") if e["alias"] == CHAMPION]
        events = [e for e in moves if e["actor"] == "tabpipe run"]
        assert len(events) == 2
        assert moves[:2] == events
        assert events[0]["previous"] is None
        assert events[1]["previous"] == events[0]["version"]
        assert registry.resolve("titanic").version == moves[-1]["version"]
        for v in versions:
            assert (v.path / "manifest.json").exists()
        # the shared snapshot was recorded once
        assert len(ws.meta.all(select(md.snapshots))) == 1
