"""Model versions and aliases (``champion``, ``challenger``), with a history of every move.

Safe with several processes on one store: each change is one transaction run
by :meth:`MetadataStore.transaction`. ``register`` locks the model's row
(``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite transactions take the write
lock at BEGIN) before allocating ``max(version) + 1``, and the primary key
``(name, version)`` plus the unique ``(name, bundle_id)`` index turn any race
the lock cannot cover (the model's first version) into a retry. An alias move
locks the alias row, reads the version it replaces and appends the
``alias_events`` row in the same transaction, so two racing promotions
serialise: the second sees the first as its ``previous``, and the history is a
chain with no lost event.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection

from tabpipe import metadata as md
from tabpipe.errors import NotFoundError
from tabpipe.workspace import Workspace

CHAMPION = "champion"


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: int
    bundle_id: str
    run_id: str
    metrics: dict[str, Any]
    path: Path


class Registry:
    def __init__(self, workspace: Workspace) -> None:
        self.ws = workspace

    def register(
        self,
        name: str,
        *,
        task: str,
        target: str,
        bundle_id: str,
        run_id: str,
        metrics: dict[str, Any],
    ) -> ModelVersion:
        """Add a version for ``bundle_id`` (or return the one that holds it already)."""
        v = md.model_versions

        def work(conn: Connection) -> int:
            model = conn.execute(
                select(md.models.c.name).where(md.models.c.name == name).with_for_update()
            ).first()
            if model is None:  # a racing first register makes this fail, and retry
                conn.execute(
                    insert(md.models).values(
                        name=name, task=task, target=target, created_at=md.utcnow()
                    )
                )
            existing = conn.execute(
                select(v.c.version).where(v.c.name == name, v.c.bundle_id == bundle_id)
            ).scalar()
            if existing is not None:
                return int(existing)
            latest = conn.execute(select(func.max(v.c.version)).where(v.c.name == name)).scalar()
            version = int(latest or 0) + 1
            conn.execute(
                insert(v).values(
                    name=name,
                    version=version,
                    bundle_id=bundle_id,
                    run_id=run_id,
                    created_at=md.utcnow(),
                    metrics=metrics,
                )
            )
            return version

        return self.get(name, self.ws.meta.transaction(work))

    def set_alias(self, name: str, alias: str, version: int, *, actor: str, reason: str) -> None:
        """Point ``alias`` at ``version`` and record who moved it and why, in one transaction."""
        self.get(name, version)
        self.ws.meta.transaction(
            lambda conn: self._move(conn, name, alias, version, actor=actor, reason=reason)
        )

    def _lock_alias(self, conn: Connection, name: str, alias: str) -> int | None:
        """The alias's version, its row locked until the transaction ends (None: no alias)."""
        a = md.aliases
        current = conn.execute(
            select(a.c.version).where(a.c.name == name, a.c.alias == alias).with_for_update()
        ).scalar()
        return None if current is None else int(current)

    def _move(
        self, conn: Connection, name: str, alias: str, version: int, *, actor: str, reason: str
    ) -> None:
        a = md.aliases
        current = self._lock_alias(conn, name, alias)
        if current is None:  # a racing first move makes this insert fail, and retry
            conn.execute(
                insert(a).values(name=name, alias=alias, version=version, updated_at=md.utcnow())
            )
        else:
            conn.execute(
                update(a)
                .where(a.c.name == name, a.c.alias == alias)
                .values(version=version, updated_at=md.utcnow())
            )
        conn.execute(
            insert(md.alias_events).values(
                name=name,
                alias=alias,
                version=version,
                previous=current,
                actor=actor,
                reason=reason,
                at=md.utcnow(),
            )
        )

    def promote(self, name: str, version: int, *, actor: str, reason: str) -> ModelVersion:
        """Make ``version`` the champion (the server follows the alias)."""
        self.set_alias(name, CHAMPION, version, actor=actor, reason=reason)
        return self.get(name, version)

    def rollback(self, name: str, *, actor: str, reason: str) -> ModelVersion:
        """Point the champion back at the version it held before its last move.

        Reading the history and moving the alias happen in one transaction with
        the alias row locked, so a promotion racing a rollback cannot be undone
        by a rollback computed from a stale champion.
        """
        self.resolve(name, CHAMPION)  # a clear error when there is no champion
        previous = self.ws.meta.transaction(
            lambda conn: self._roll_back(conn, name, actor=actor, reason=reason)
        )
        return self.get(name, previous)

    def _roll_back(self, conn: Connection, name: str, *, actor: str, reason: str) -> int:
        e = md.alias_events
        current = self._lock_alias(conn, name, CHAMPION)
        events = conn.execute(
            select(e.c.version, e.c.previous)
            .where(e.c.name == name, e.c.alias == CHAMPION)
            .order_by(e.c.id.desc())
        ).all()
        last = next(
            (ev for ev in events if ev.version == current and ev.previous not in (None, current)),
            None,
        )
        if last is None:
            raise NotFoundError(
                f"model {name!r} has no earlier champion to roll back to; "
                "use `tabpipe promote NAME VERSION` to pick one"
            )
        previous = int(last.previous)
        self._move(conn, name, CHAMPION, previous, actor=actor, reason=reason)
        return previous

    def get(self, name: str, version: int) -> ModelVersion:
        v = md.model_versions
        row = self.ws.meta.one(select(v).where(v.c.name == name, v.c.version == version))
        if row is None:
            raise NotFoundError(f"model {name!r} has no version {version}")
        return self._version(row)

    def resolve(self, name: str, alias: str = CHAMPION) -> ModelVersion:
        """The version an alias points to; a plain number is taken as a version."""
        if alias.isdigit():
            return self.get(name, int(alias))
        a = md.aliases
        row = self.ws.meta.one(select(a).where(a.c.name == name, a.c.alias == alias))
        if row is None:
            known = [m["name"] for m in self.models()]
            if name not in known:
                raise NotFoundError(
                    f"no model named {name!r}; known models: {', '.join(known) or 'none yet'} "
                    "(train one with `tabpipe run`)"
                )
            raise NotFoundError(f"model {name!r} has no alias {alias!r}")
        return self.get(name, int(row["version"]))

    def models(self) -> list[dict[str, Any]]:
        """Every model with its latest version and champion."""
        rows = self.ws.meta.all(select(md.models).order_by(md.models.c.name))
        out = []
        for row in rows:
            versions = self.versions(row["name"])
            champion = self.ws.meta.one(
                select(md.aliases.c.version).where(
                    md.aliases.c.name == row["name"], md.aliases.c.alias == CHAMPION
                )
            )
            out.append(
                {
                    **row,
                    "versions": len(versions),
                    "champion": champion["version"] if champion else None,
                    "latest": versions[-1] if versions else None,
                }
            )
        return out

    def versions(self, name: str) -> list[ModelVersion]:
        v = md.model_versions
        rows = self.ws.meta.all(select(v).where(v.c.name == name).order_by(v.c.version))
        return [self._version(r, fetch=False) for r in rows]

    def history(self, name: str) -> list[dict[str, Any]]:
        e = md.alias_events
        return self.ws.meta.all(select(e).where(e.c.name == name).order_by(e.c.id))

    def _version(self, row: dict[str, Any], *, fetch: bool = True) -> ModelVersion:
        return ModelVersion(
            name=row["name"],
            version=int(row["version"]),
            bundle_id=row["bundle_id"],
            run_id=row["run_id"],
            metrics=dict(row["metrics"] or {}),
            path=self.ws.bundle_path(row["bundle_id"], fetch=fetch),
        )
