"""SQL sources against the real PostgreSQL and MariaDB servers, and SQLite."""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tabpipe.config import SqlSource
from tabpipe.errors import SourceError
from tabpipe.workspace import Workspace

pytestmark = pytest.mark.service
ROWS = 2500  # more than two chunks of 1000
SECRET = "s3cr3t-Pw-9f1"


def rows(start: int, stop: int) -> list[dict[str, object]]:
    return [
        {"id": i, "city": ["Oslo", "Lima", "Pune"][i % 3], "amount": i * 1.25, "seen": 1_000 + i}
        for i in range(start, stop)
    ]


@pytest.fixture(params=["postgresql", "mariadb"])
def server(
    request: pytest.FixtureRequest, execute: Callable[..., None]
) -> Iterator[tuple[str, str]]:
    """A database URL and a fresh table of ROWS rows, dropped afterwards."""
    url = request.getfixturevalue("pg_url" if request.param == "postgresql" else "mysql_url")
    table = f"tp_ingest_{uuid.uuid4().hex[:8]}"
    execute(
        url,
        f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, city VARCHAR(20), "
        "amount DOUBLE PRECISION, seen BIGINT)",
    )
    insert = f"INSERT INTO {table} VALUES (:id, :city, :amount, :seen)"
    execute(url, insert, params=rows(0, ROWS))
    yield url, table
    execute(url, f"DROP TABLE IF EXISTS {table}")


def test_table_bigger_than_chunk_streams_and_matches(
    workspace: Workspace, server: tuple[str, str]
) -> None:
    url, table = server
    record, report = workspace.ingest_report(
        SqlSource(kind="sql", url=url, table=table, chunk_rows=1000)
    )
    assert (record.rows, record.columns) == (ROWS, 4)
    assert record.schema == {
        "id": "BIGINT",
        "city": "VARCHAR",
        "amount": "DOUBLE",
        "seen": "BIGINT",
    }
    frame = workspace.snapshots.frame(record).sort_values("id")
    assert frame["amount"].sum() == pytest.approx(sum(r["amount"] for r in rows(0, ROWS)))
    assert record.name == table and report.bad_rows == 0


def test_incremental_by_watermark(
    workspace: Workspace, server: tuple[str, str], execute: Callable[..., None]
) -> None:
    url, table = server
    source = SqlSource(kind="sql", url=url, table=table, watermark="seen", chunk_rows=1000)
    first, _ = workspace.ingest_report(source)
    assert first.source["high_water_mark"] == {"type": "int", "value": 1000 + ROWS - 1}
    execute(
        url,
        f"INSERT INTO {table} VALUES (:id, :city, :amount, :seen)",
        params=rows(ROWS, ROWS + 120),
    )
    second, report = workspace.ingest_report(source)
    assert second.parent_id == first.id
    assert second.rows == ROWS + 120
    assert second.source["high_water_mark"]["value"] == 1000 + ROWS + 119
    assert any("120 new rows" in w for w in report.warnings)
    frame = workspace.snapshots.frame(second)
    assert frame["id"].tolist() == list(range(ROWS + 120))  # parent rows, then the new ones
    third, again = workspace.ingest_report(source)  # nothing new
    assert third.id == second.id and again.reused
    assert [r.id for r in workspace.snapshots.list(table)] == [first.id, second.id]


def test_query_errors_and_empty_result(workspace: Workspace, server: tuple[str, str]) -> None:
    url, table = server
    q = SqlSource(
        kind="sql", url=url, query=f"SELECT city, count(*) AS n FROM {table} GROUP BY city"
    )
    record, _ = workspace.ingest_report(q)
    assert record.rows == 3
    with pytest.raises(SourceError, match=r"the query failed:.*no_such_column"):
        workspace.ingest_report(
            SqlSource(kind="sql", url=url, query=f"SELECT no_such_column FROM {table}")
        )
    with pytest.raises(SourceError, match="returned no rows; nothing registered"):
        workspace.ingest_report(
            SqlSource(kind="sql", url=url, query=f"SELECT * FROM {table} WHERE id < 0")
        )
    assert len(workspace.snapshots.list()) == 1


def test_refused_connection(workspace: Workspace, pg_url: str) -> None:
    url = sa.engine.make_url(pg_url).set(port=1).render_as_string()
    with pytest.raises(SourceError, match=r"cannot connect: .*refused.*server runs"):
        workspace.ingest_report(SqlSource(kind="sql", url=url, table="t"))


def test_password_from_env_is_used_and_never_shown(
    workspace: Workspace, mysql_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # MariaDB's root has no password here: a wrong one is refused, and the message must not show it.
    monkeypatch.setenv("TP_TEST_DB_PASSWORD", SECRET)
    source = SqlSource(kind="sql", url=mysql_url, table="t", password_env="TP_TEST_DB_PASSWORD")
    with pytest.raises(SourceError) as info:
        workspace.ingest_report(source)
    assert "Access denied" in str(info.value) and SECRET not in str(info.value)
    assert "***" in str(info.value)
    monkeypatch.delenv("TP_TEST_DB_PASSWORD")
    with pytest.raises(SourceError, match=r"TP_TEST_DB_PASSWORD .password_env. is not set"):
        workspace.ingest_report(source)


def test_credentials_file_secret_not_stored(
    workspace: Workspace, pg_url: str, tmp_path: Path, execute: Callable[..., None]
) -> None:
    table = f"tp_cred_{uuid.uuid4().hex[:8]}"
    execute(pg_url, f"CREATE TABLE {table} AS SELECT 1 AS a, 'x' AS b")
    try:
        creds = tmp_path / "db.yaml"
        creds.write_text(f"password: {SECRET}\n", encoding="utf-8")  # trust auth ignores it
        record, report = workspace.ingest_report(
            SqlSource(kind="sql", url=pg_url, table=table, credentials_file=str(creds))
        )
        assert record.rows == 1
        stored = (workspace.root / "metadata.db").read_bytes()
        assert SECRET.encode() not in stored
        assert SECRET not in report.model_dump_json()
        assert SECRET not in (record.path / "report.json").read_text(encoding="utf-8")
    finally:
        execute(pg_url, f"DROP TABLE IF EXISTS {table}")


def test_sqlite_gives_the_same_id_as_postgresql(
    workspace: Workspace, pg_url: str, tmp_path: Path, execute: Callable[..., None]
) -> None:
    table = f"tp_same_{uuid.uuid4().hex[:8]}"
    data = rows(0, 50)
    db = tmp_path / "local.db"
    with sqlite3.connect(db) as con:
        con.execute(f"CREATE TABLE {table} (id INTEGER, city TEXT, amount REAL, seen INTEGER)")
        con.executemany(f"INSERT INTO {table} VALUES (:id, :city, :amount, :seen)", data)
    execute(
        pg_url, f"CREATE TABLE {table} (id BIGINT, city TEXT, amount DOUBLE PRECISION, seen BIGINT)"
    )
    try:
        execute(pg_url, f"INSERT INTO {table} VALUES (:id, :city, :amount, :seen)", params=data)
        lite, _ = workspace.ingest_report(
            SqlSource(kind="sql", url=f"sqlite:///{db}", query=f"SELECT * FROM {table} ORDER BY id")
        )
        pg, report = workspace.ingest_report(
            SqlSource(kind="sql", url=pg_url, query=f"SELECT * FROM {table} ORDER BY id")
        )
        assert lite.id == pg.id and report.reused
    finally:
        execute(pg_url, f"DROP TABLE IF EXISTS {table}")


@pytest.mark.slow
@pytest.mark.parametrize("db", ["postgresql", "mariadb"])
def test_connection_dropped_halfway_registers_nothing(
    workspace: Workspace, request: pytest.FixtureRequest, db: str
) -> None:
    url = request.getfixturevalue("pg_url" if db == "postgresql" else "mysql_url")
    marker = f"tp_drop_{uuid.uuid4().hex[:8]}"
    if db == "postgresql":
        query = (
            f"SELECT g AS {marker}, pg_sleep(0.0005) IS NULL AS s FROM generate_series(1, 40000) g"
        )
        find = f"SELECT pid FROM pg_stat_activity WHERE query LIKE '%{marker}%' AND pid <> pg_backend_pid()"
        kill = "SELECT pg_terminate_backend({})"
    else:
        query = f"SELECT seq AS {marker}, SLEEP(0.0005) AS s FROM seq_1_to_40000"
        find = (
            "SELECT id FROM information_schema.processlist "
            f"WHERE info LIKE '%{marker}%' AND id <> CONNECTION_ID()"
        )
        kill = "KILL CONNECTION {}"
    source = SqlSource(kind="sql", url=url, query=query, chunk_rows=500)
    errors: list[BaseException] = []

    def ingest() -> None:
        try:
            workspace.ingest_report(source)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=ingest)
    thread.start()
    engine = sa.create_engine(url)
    try:
        deadline = time.monotonic() + 20
        killed = False
        while not killed and time.monotonic() < deadline and thread.is_alive():
            time.sleep(0.5)
            with engine.begin() as conn:
                for (pid,) in conn.execute(sa.text(find)).fetchall():
                    conn.execute(sa.text(kill.format(int(pid))))
                    killed = True
    finally:
        engine.dispose()
    thread.join(60)
    assert killed, "the extraction finished before it could be cut off"
    assert len(errors) == 1 and isinstance(errors[0], SourceError), errors
    assert "nothing was registered" in str(errors[0])
    assert workspace.snapshots.list() == []
    assert list(workspace.artifacts.tmp.iterdir()) == []
