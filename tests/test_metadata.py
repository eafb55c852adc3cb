"""The metadata store's transactions: retries after a lost race, SQLite locking."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.engine import Connection

from tabpipe import metadata as md
from tabpipe.errors import StoreError


def model_row(name: str) -> dict[str, object]:
    return {"name": name, "task": "binary", "target": "y", "created_at": md.utcnow()}


@pytest.fixture
def store(tmp_path: Path) -> md.MetadataStore:
    return md.MetadataStore(f"sqlite:///{tmp_path / 'metadata.db'}")


def test_a_unique_violation_is_retried_and_other_errors_are_not(store: md.MetadataStore) -> None:
    with store.begin() as conn:
        conn.execute(insert(md.models).values(**model_row("taken")))
    calls = {"n": 0}

    def clashing(conn: Connection) -> int:
        calls["n"] += 1
        if calls["n"] == 1:  # the first attempt loses the race on the primary key
            conn.execute(insert(md.models).values(**model_row("taken")))
        return calls["n"]

    assert store.transaction(clashing) == 2

    def broken(conn: Connection) -> None:
        calls["n"] += 1
        conn.execute(text("SELECT * FROM no_such_table"))

    calls["n"] = 0
    with pytest.raises(StoreError, match="no_such_table"):
        store.transaction(broken)
    assert calls["n"] == 1


def test_a_race_lost_every_time_ends_in_a_store_error(store: md.MetadataStore) -> None:
    with store.begin() as conn:
        conn.execute(insert(md.models).values(**model_row("taken")))

    def always(conn: Connection) -> None:
        conn.execute(insert(md.models).values(**model_row("taken")))

    with pytest.raises(StoreError, match="UNIQUE constraint failed"):
        store.transaction(always, attempts=3)


def test_sqlite_readers_do_not_wait_for_a_writer(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'metadata.db'}"
    writer, reader = md.MetadataStore(url), md.MetadataStore(url)
    try:
        with writer.begin() as conn:  # holds the write lock until the block ends
            conn.execute(insert(md.models).values(**model_row("pending")))
            started = time.monotonic()
            assert reader.all(select(md.models)) == []  # sees the last commit, at once
            assert time.monotonic() - started < 5
        assert [r["name"] for r in reader.all(select(md.models))] == ["pending"]
    finally:
        writer.dispose()
        reader.dispose()
