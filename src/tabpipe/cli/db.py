"""``tabpipe db upgrade|current|history``: the metadata store's schema revision."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import typer

from tabpipe.cli._common import DbOpt, WorkspaceOpt, errors, out

if TYPE_CHECKING:
    from tabpipe.metadata import MetadataStore

app = typer.Typer(no_args_is_help=True, help="The metadata store's schema (Alembic revisions).")


@contextmanager
def _store(workspace: WorkspaceOpt, db_url: DbOpt) -> Iterator[MetadataStore]:
    """The workspace's store, opened without upgrading it, errors shown as messages."""
    from tabpipe.metadata import MetadataStore
    from tabpipe.workspace import store_url, workspace_root

    with errors():
        root = workspace_root(workspace)
        root.mkdir(parents=True, exist_ok=True)
        store = MetadataStore(store_url(root, db_url), upgrade=False)
        try:
            yield store
        finally:
            store.dispose()


@app.command()
def upgrade(workspace: WorkspaceOpt = None, db_url: DbOpt = None) -> None:
    """Bring the store to the newest revision (a store also does so when it is opened)."""
    from tabpipe.migrations import upgrade_store

    with _store(workspace, db_url) as store:
        result = upgrade_store(store)
        if result.before == result.after:
            out.print(f"already at the newest revision {result.after}")
        else:
            origin = result.before or ("an unversioned store" if result.legacy else "empty")
            out.print(f"upgraded {store.redacted_url} from {origin} to {result.after}")


@app.command()
def current(workspace: WorkspaceOpt = None, db_url: DbOpt = None) -> None:
    """The store's revision and whether it is the newest; changes nothing."""
    from tabpipe.migrations import store_state

    with _store(workspace, db_url) as store:
        state = store_state(store)
        if state.at_head:
            out.print(f"{state.revision} (head)")
        elif state.revision is None:
            kind = "made before migrations" if state.legacy else "empty"
            out.print(f"none: the store is {kind}; the head is {state.head} (tabpipe db upgrade)")
        else:
            out.print(f"{state.revision}; the head is {state.head} (tabpipe db upgrade)")


@app.command()
def history() -> None:
    """Every schema revision, oldest first."""
    from tabpipe.migrations import history as revisions

    with errors():
        for rev in revisions():
            line = f"{rev.down or '<base>'} -> {rev.id}  {rev.message}"
            out.print(line, highlight=False, markup=False, soft_wrap=True)
