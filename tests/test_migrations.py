"""Schema migrations of the metadata store on SQLite and the real PostgreSQL."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, insert, inspect, text
from sqlalchemy.exc import IntegrityError

from support import DATA, run_sql_file
from tabpipe import metadata as md
from tabpipe import migrations
from tabpipe.errors import StoreError
from tabpipe.registry import Registry
from tabpipe.workspace import Workspace


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.service)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each kind: a SQLite file or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'metadata.db'}"
    else:
        yield request.getfixturevalue("pg_store_url")


def load_fixture(url: str, dialect: str) -> None:
    """Create the store as the code before migrations did, with its rows."""
    run_sql_file(url, DATA / f"legacy_store_{dialect}.sql")


def schema_diff(store: md.MetadataStore) -> list[object]:
    with store.engine.connect() as conn:
        return list(compare_metadata(MigrationContext.configure(conn), md.metadata))


def revision(store: md.MetadataStore) -> str | None:
    with store.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def test_the_revisions_form_one_chain_with_one_head() -> None:
    chain = migrations.history()
    assert chain[0].id == migrations.BASELINE and chain[0].down is None
    for earlier, later in itertools.pairwise(chain):
        assert later.down == earlier.id
    assert migrations.head() == chain[-1].id
    assert all(r.message for r in chain)


def test_a_new_store_is_created_at_head_equal_to_the_tables(store_url: str) -> None:
    store = md.MetadataStore(store_url)
    try:
        assert revision(store) == migrations.head()
        assert schema_diff(store) == []
        tables = set(inspect(store.engine).get_table_names())
        assert tables == {*md.metadata.tables, "alembic_version"}
        # opening it again is a no-op
        again = md.MetadataStore(store_url)
        assert migrations.store_state(again).at_head
        again.dispose()
    finally:
        store.dispose()


def test_a_store_made_before_migrations_is_upgraded_and_keeps_its_rows(
    store_url: str, tmp_path: Path
) -> None:
    dialect = "sqlite" if store_url.startswith("sqlite") else "postgresql"
    load_fixture(store_url, dialect)
    plain = md.MetadataStore(store_url, upgrade=False)
    state = migrations.store_state(plain)
    assert state.revision is None and state.legacy and not state.at_head
    plain.dispose()

    with Workspace(tmp_path / "ws", store_url) as ws:
        assert revision(ws.meta) == migrations.head()
        assert schema_diff(ws.meta) == []
        registry = Registry(ws)
        assert registry.resolve("titanic").version == 2
        assert [v.bundle_id for v in registry.versions("titanic")] == ["b1", "b2"]
        assert [(e["version"], e["previous"]) for e in registry.history("titanic")] == [
            (1, None),
            (2, 1),
        ]
        assert ws.run("r1")["outputs"] == {"bundle": "b1"}
        assert ws.snapshots.get("s1").rows == 891
        # the new revision's constraint holds: a bundle cannot get a second version
        with pytest.raises(IntegrityError), ws.meta.engine.begin() as conn:
            conn.execute(
                insert(md.model_versions).values(
                    name="titanic",
                    version=3,
                    bundle_id="b2",
                    run_id="r1",
                    created_at=md.utcnow(),
                    metrics={},
                )
            )
        # and the store keeps working: a new version, a promotion chained on the old history
        registry.register(
            "titanic", task="binary", target="Survived", bundle_id="b3", run_id="r1", metrics={}
        )
        registry.promote("titanic", 3, actor="test", reason="after the upgrade")
        assert registry.history("titanic")[-1]["previous"] == 2


def test_an_early_store_without_the_monitoring_tables_gains_them(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'metadata.db'}"
    load_fixture(url, "sqlite")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE alerts"))
        conn.execute(text("DROP TABLE retrain_events"))
    engine.dispose()
    store = md.MetadataStore(url)
    try:
        assert {"alerts", "retrain_events"} <= set(inspect(store.engine).get_table_names())
        assert schema_diff(store) == []
        assert store.one(md.select(md.aliases))["version"] == 2  # type: ignore[index]
    finally:
        store.dispose()


def test_a_store_from_a_newer_release_is_refused(store_url: str) -> None:
    md.MetadataStore(store_url).dispose()
    engine = create_engine(store_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(StoreError, match=r"'9999'.*newer tabpipe"):
        md.MetadataStore(store_url)


def test_processes_opening_a_new_store_at_once_do_not_race(store_url: str) -> None:
    """Four openers start together on an empty database; the lock lets one create it."""
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def open_store() -> None:
        barrier.wait()
        try:
            md.MetadataStore(store_url).dispose()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a worker is stuck (a lock never released)"
    assert errors == []
    engine = create_engine(store_url)
    with engine.connect() as conn:
        versions = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    engine.dispose()
    assert versions == [migrations.head()]


def test_a_failed_upgrade_says_why_and_leaves_the_store_as_it_was(store_url: str) -> None:
    """Two versions holding one bundle stop revision 0002; the transaction undoes 0001 too."""
    dialect = "sqlite" if store_url.startswith("sqlite") else "postgresql"
    load_fixture(store_url, dialect)
    engine = create_engine(store_url)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE alerts"))
        conn.execute(
            text(
                "INSERT INTO model_versions (name, version, bundle_id, run_id, created_at, "
                "metrics) VALUES ('titanic', 3, 'b2', 'r1', '2026-11-02 12:00:00', '{}')"
            )
        )
    with pytest.raises(StoreError, match=r"'titanic' bundle b2 \(2 versions\).*tabpipe db upgrade"):
        md.MetadataStore(store_url)
    with engine.connect() as conn:
        tables = set(inspect(conn).get_table_names())
    engine.dispose()
    assert "alembic_version" not in tables
    assert "alerts" not in tables  # created by 0001 inside the same, rolled back, transaction
