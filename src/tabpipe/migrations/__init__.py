"""Schema migrations of the metadata store: Alembic, configured in code.

The revisions live in ``versions/`` next to this file and ship in the wheel;
no ``alembic.ini`` is needed. :func:`upgrade_store` runs whenever a
:class:`~tabpipe.metadata.MetadataStore` opens:

* a store already at the head revision costs one query and takes no lock;
* otherwise the upgrade runs in one transaction under a lock, so two processes
  opening a new store at once do not both create it: on PostgreSQL a
  transaction-level advisory lock keyed on the schema, on SQLite the database
  write lock (``BEGIN IMMEDIATE``). The second process waits, then finds the
  store at head;
* a store created before migrations existed (tables, no ``alembic_version``)
  is recognised (``StoreState.legacy``) and upgraded from the start: the
  baseline revision creates only the tables it lacks, later revisions alter
  the existing ones; its rows are kept;
* a store at a revision this tabpipe does not know (written by a newer
  release) is refused with a message rather than touched.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from tabpipe.errors import StoreError

if TYPE_CHECKING:
    from tabpipe.metadata import MetadataStore

__all__ = [
    "BASELINE",
    "Revision",
    "StoreState",
    "UpgradeResult",
    "head",
    "history",
    "store_state",
    "upgrade_store",
]

SCRIPTS = Path(__file__).resolve().parent
#: The revision equal to the schema of stores made before migrations existed.
BASELINE = "0001"
#: Tables that mark a store written by tabpipe before migrations (present since the first release).
LEGACY_MARKERS = frozenset({"runs", "model_versions", "aliases"})


@dataclass(frozen=True)
class Revision:
    """One migration: its id, the one it follows and what it does."""

    id: str
    down: str | None
    message: str


@dataclass(frozen=True)
class StoreState:
    """Where a store stands: its revision (None when unversioned), the newest one, and
    whether it was made before migrations (``legacy``: tables but no revision)."""

    revision: str | None
    head: str
    legacy: bool

    @property
    def at_head(self) -> bool:
        return self.revision == self.head


@dataclass(frozen=True)
class UpgradeResult:
    """The revision before and after an upgrade, and whether the store predated migrations."""

    before: str | None
    after: str
    legacy: bool


def _config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPTS))
    cfg.attributes["connection"] = connection
    return cfg


def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config())


def head() -> str:
    """The newest revision this tabpipe knows (the chain has exactly one head)."""
    heads = _scripts().get_heads()
    if len(heads) != 1:
        raise StoreError(f"the migration scripts have {len(heads)} heads ({heads}); expected one")
    return heads[0]


def history() -> list[Revision]:
    """Every revision, oldest first."""
    revisions = [
        Revision(
            id=r.revision,
            down=r.down_revision if isinstance(r.down_revision, str) else None,
            message=(r.doc or "").strip().splitlines()[0] if r.doc else "",
        )
        for r in _scripts().walk_revisions()
    ]
    return revisions[::-1]


def _state(conn: Connection) -> StoreState:
    revision = MigrationContext.configure(conn).get_current_revision()
    tables = set(inspect(conn).get_table_names())
    return StoreState(
        revision=revision, head=head(), legacy=revision is None and tables >= LEGACY_MARKERS
    )


def store_state(store: MetadataStore) -> StoreState:
    """The revision of ``store`` without changing it."""
    with store.read() as conn:
        return _state(conn)


def _lock(conn: Connection) -> None:
    """Serialise migrations of one store: held until the transaction ends."""
    if conn.dialect.name == "postgresql":
        conn.execute(
            text("SELECT pg_advisory_xact_lock(hashtext('tabpipe-migrate:' || current_schema()))")
        )
    # SQLite: the transaction began with BEGIN IMMEDIATE and holds the write lock


def _check_known(state: StoreState) -> None:
    if state.revision is None:
        return
    known = {r.id for r in history()}
    if state.revision not in known:
        raise StoreError(
            f"the metadata store is at schema revision {state.revision!r}, which this tabpipe "
            f"does not know (its newest is {state.head!r}): it was upgraded by a newer tabpipe; "
            "upgrade tabpipe to use it"
        )


def upgrade_store(store: MetadataStore, target: str = "head") -> UpgradeResult:
    """Bring ``store`` to ``target`` (the head by default) safely; see the module docstring."""
    try:
        state = store_state(store)
        if state.at_head and target == "head":
            return UpgradeResult(state.revision, state.head, legacy=False)
        _check_known(state)
        with store.begin() as conn:
            _lock(conn)
            state = _state(conn)  # another process may have upgraded it meanwhile
            _check_known(state)
            # a legacy store runs the baseline too: it creates only the tables the store lacks
            command.upgrade(_config(conn), target)
            after = MigrationContext.configure(conn).get_current_revision()
    except StoreError:
        raise
    except (SQLAlchemyError, CommandError, OSError) as exc:
        raise StoreError(
            f"cannot upgrade the metadata store at {store.redacted_url}: {exc}"
        ) from exc
    return UpgradeResult(state.revision, after or "", legacy=state.legacy)
