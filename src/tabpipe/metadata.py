"""The metadata store: runs, stage executions, snapshots, models, versions, aliases.

SQLAlchemy Core over SQLite (WAL mode) by default; any SQLAlchemy URL such as
``postgresql+psycopg://...`` works with the same code. Opening a store brings
its schema to the newest Alembic revision (``tabpipe.migrations``).

Transactions: :meth:`MetadataStore.begin` is a write transaction (``BEGIN
IMMEDIATE`` on SQLite, so writers queue instead of failing half-way);
:meth:`MetadataStore.transaction` runs a function in one and retries it when a
concurrent writer won a race (a unique constraint, a deadlock or a
serialization failure); ``one`` and ``all`` read in a deferred transaction.
"""

from __future__ import annotations

import json
import random
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    select,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError

from tabpipe.errors import StoreError

metadata = MetaData()

snapshots = Table(
    "snapshots",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False, index=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("rows", Integer, nullable=False),
    Column("columns", Integer, nullable=False),
    Column("schema", JSON, nullable=False),
    Column("source", JSON, nullable=False),
    Column("parent_id", String(64), nullable=True),
    Column("path", Text, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("model_name", String(200), nullable=False, index=True),
    Column("spec", JSON, nullable=False),
    Column("spec_hash", String(64), nullable=False, index=True),
    Column("status", String(20), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("error", Text, nullable=True),
    Column("outputs", JSON, nullable=True),
)

stage_runs = Table(
    "stage_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(64), nullable=False, index=True),
    Column("stage", String(64), nullable=False),
    Column("cache_key", String(64), nullable=False, index=True),
    Column("status", String(20), nullable=False),
    Column("cached", Integer, nullable=False, default=0),
    Column("inputs", JSON, nullable=False),
    Column("outputs", JSON, nullable=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("duration_s", Float, nullable=True),
    Column("error", Text, nullable=True),
)

models = Table(
    "models",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("task", String(20), nullable=False),
    Column("target", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("bundle_id", String(64), nullable=False),
    Column("run_id", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("metrics", JSON, nullable=False),
    # one version per distinct bundle: two racing `register` calls cannot both add it
    Index("uq_model_versions_name_bundle", "name", "bundle_id", unique=True),
)

aliases = Table(
    "aliases",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("alias", String(64), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

alias_events = Table(
    "alias_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, index=True),
    Column("alias", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("previous", Integer, nullable=True),
    Column("actor", String(200), nullable=False),
    Column("reason", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, index=True),
    Column("version", Integer, nullable=True),
    Column("kind", String(40), nullable=False),
    Column("window_label", String(100), nullable=True),
    Column("message", Text, nullable=False),
    Column("details", JSON, nullable=False),
    Column("action", String(20), nullable=False),
    Column("delivered", String(200), nullable=True),
    Column("at", DateTime(timezone=True), nullable=False),
)

retrain_events = Table(
    "retrain_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, index=True),
    Column("champion", Integer, nullable=True),
    Column("challenger", Integer, nullable=True),
    Column("promoted", Integer, nullable=False),
    Column("reason", Text, nullable=False),
    Column("trigger", String(200), nullable=False),
    Column("details", JSON, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)


def utcnow() -> datetime:
    return datetime.now(UTC)


T = TypeVar("T")
#: SQLSTATEs of a transaction that lost a race and may simply be run again.
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})  # serialization failure, deadlock
#: Execution option naming the ``BEGIN`` mode of a SQLite transaction.
SQLITE_BEGIN = "tabpipe_sqlite_begin"


#: How long a new SQLite connection waits for the lock (busy timeout, switch to WAL).
SQLITE_LOCK_WAIT_S = 30.0


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # the driver issues no BEGIN of its own; _sqlite_begin does
    cursor = dbapi_conn.cursor()
    cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_LOCK_WAIT_S * 1000)}")
    _switch_to_wal(cursor)
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _switch_to_wal(cursor: Any) -> None:
    """``PRAGMA journal_mode=WAL``, waiting for other openers of a new database file.

    The switch needs the database to itself, and SQLite answers 'database is locked'
    at once, without its busy handler, while another connection holds a lock on it;
    processes opening a new store together would fail. The mode is persistent, so
    once one of them has switched, the others find it switched."""
    deadline = time.monotonic() + SQLITE_LOCK_WAIT_S
    delay = 0.005
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.25)


def _sqlite_begin(conn: Connection) -> None:
    """Writers take the write lock at BEGIN, so a read-then-write never fails half-way."""
    mode = conn.get_execution_options().get(SQLITE_BEGIN, "IMMEDIATE")
    conn.exec_driver_sql(f"BEGIN {mode}")


def _retryable(exc: SQLAlchemyError) -> bool:
    if isinstance(exc, IntegrityError):
        return True
    code = getattr(getattr(exc, "orig", None), "sqlstate", None)
    return isinstance(exc, DBAPIError) and code in RETRYABLE_SQLSTATES


def _json_serializer(value: Any) -> str:
    return json.dumps(value, default=str)


class MetadataStore:
    """Thin typed access to the metadata tables."""

    def __init__(self, url: str, *, upgrade: bool = True) -> None:
        self.url = url
        try:
            self.engine: Engine = create_engine(
                url, json_serializer=_json_serializer, pool_pre_ping=True
            )
            if self.engine.dialect.name == "sqlite":
                event.listen(self.engine, "connect", _sqlite_pragmas)
                event.listen(self.engine, "begin", _sqlite_begin)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot open the metadata store at {_redact(url)}: {exc}") from exc
        if upgrade:
            from tabpipe.migrations import upgrade_store

            try:
                upgrade_store(self)
            except BaseException:
                self.engine.dispose()
                raise

    @property
    def redacted_url(self) -> str:
        return _redact(self.url)

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A write transaction: committed on success, rolled back on error."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise StoreError(f"metadata store {_redact(self.url)}: {exc}") from exc

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction (on SQLite it takes no write lock)."""
        try:
            with self.engine.connect() as conn:
                conn.execution_options(**{SQLITE_BEGIN: "DEFERRED"})
                with conn.begin():
                    yield conn
        except SQLAlchemyError as exc:
            raise StoreError(f"metadata store {_redact(self.url)}: {exc}") from exc

    def transaction(self, work: Callable[[Connection], T], *, attempts: int = 8) -> T:
        """Run ``work`` in one write transaction; run it again if it lost a race.

        A concurrent writer can make ``work`` fail on a unique constraint (two
        processes inserting the same key), a deadlock or a serialization
        failure; the whole transaction is rolled back and ``work`` re-reads the
        state it depends on. Other errors are raised at once.
        """
        for attempt in range(attempts):
            try:
                with self.engine.begin() as conn:
                    return work(conn)
            except SQLAlchemyError as exc:
                if attempt + 1 < attempts and _retryable(exc):
                    time.sleep(random.uniform(0.005, 0.05) * (attempt + 1))
                    continue
                raise StoreError(f"metadata store {_redact(self.url)}: {exc}") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def one(self, query: Any) -> dict[str, Any] | None:
        with self.read() as conn:
            row = conn.execute(query).mappings().first()
        return dict(row) if row else None

    def all(self, query: Any) -> list[dict[str, Any]]:
        with self.read() as conn:
            return [dict(r) for r in conn.execute(query).mappings().all()]

    def dispose(self) -> None:
        self.engine.dispose()


def _redact(url: str) -> str:
    """Hide a password in a database URL before it goes into a message."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"


__all__ = [
    "MetadataStore",
    "alerts",
    "alias_events",
    "aliases",
    "model_versions",
    "models",
    "retrain_events",
    "runs",
    "select",
    "snapshots",
    "stage_runs",
    "utcnow",
]
