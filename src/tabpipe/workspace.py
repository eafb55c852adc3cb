"""Where things live: the artifact folder and the metadata store.

The workspace is the only part of tabpipe that reads and writes artifacts;
stages receive and return objects.

A workspace is a local folder, or a URL on an object store such as
``s3://bucket/prefix`` (any fsspec filesystem). Then the artifacts and
snapshots live on the store, the metadata store must be given separately
(``db_url`` / ``TABPIPE_DB_URL``), and :attr:`Workspace.root` is a local
folder holding the artifact cache and the files of this machine only.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import select

from tabpipe import metadata as md
from tabpipe.artifacts import ArtifactStore
from tabpipe.data.ingest import AnySource, ingest
from tabpipe.data.snapshots import IngestReport, SnapshotRecord, SnapshotStore
from tabpipe.errors import ConfigError, NotFoundError
from tabpipe.objectstore import FolderMirror, RemoteStore, is_url

DEFAULT_ROOT = "tabpipe-workspace"
CACHE_ENV = "TABPIPE_CACHE_DIR"


def default_cache_dir() -> Path:
    """``$TABPIPE_CACHE_DIR``, else ``$XDG_CACHE_HOME/tabpipe``, else ``~/.cache/tabpipe``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tabpipe"


def local_root(location: str | Path | None, cache_dir: Path | None = None) -> Path:
    """The local folder of a workspace: the folder itself, or the cache of a remote one."""
    where = str(location or os.environ.get("TABPIPE_WORKSPACE") or DEFAULT_ROOT)
    if is_url(where):
        digest = hashlib.sha256(where.rstrip("/").encode()).hexdigest()[:16]
        return ((cache_dir or default_cache_dir()) / digest).resolve()
    return Path(where.removeprefix("file://")).resolve()


def workspace_root(root: str | Path | None = None) -> Path:
    """The local workspace folder (the cache of a remote one): ``root``, else
    ``$TABPIPE_WORKSPACE``, else ./tabpipe-workspace."""
    return local_root(root)


def store_url(root: Path, db_url: str | None = None) -> str:
    """The metadata store URL: ``db_url``, else ``$TABPIPE_DB_URL``, else SQLite in ``root``."""
    return db_url or os.environ.get("TABPIPE_DB_URL") or f"sqlite:///{root / 'metadata.db'}"


class Workspace:
    """A folder of artifacts plus a metadata store (SQLite inside the folder by default).

    ``root`` may also be an object-store URL (``s3://bucket/prefix``); then
    ``db_url`` (or ``TABPIPE_DB_URL``) is required, ``storage_options`` go to
    the fsspec filesystem, and ``cache_dir`` (default :func:`default_cache_dir`)
    holds the local cache of its artifacts.
    """

    def __init__(
        self,
        root: str | Path | None = None,
        db_url: str | None = None,
        *,
        storage_options: dict[str, Any] | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        where = str(root or os.environ.get("TABPIPE_WORKSPACE") or DEFAULT_ROOT)
        url = db_url or os.environ.get("TABPIPE_DB_URL")
        remote: RemoteStore | None = None
        self.mirror: FolderMirror | None = None
        if is_url(where):
            self.location = where.rstrip("/")
            if not url:
                raise ConfigError(
                    f"workspace {self.location!r} is on an object store, which cannot hold the "
                    "metadata store: set --db-url or TABPIPE_DB_URL (e.g. "
                    "postgresql+psycopg://host/db, or sqlite:////local/path/metadata.db)"
                )
            remote = RemoteStore.from_url(f"{self.location}/artifacts", storage_options)
            self.root = local_root(where, cache_dir)
            self.mirror = FolderMirror(remote.fs, remote.base.rsplit("/", 1)[0], self.root)
        else:
            self.root = local_root(where)
            self.location = str(self.root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.meta = md.MetadataStore(store_url(self.root, url))
        self.artifacts = ArtifactStore(self.root / "artifacts", remote)

    @property
    def is_remote(self) -> bool:
        """True when the artifacts live on an object store (``root`` is then a cache)."""
        return self.artifacts.remote is not None

    def sync_log(self, model: str) -> None:
        """Share the prediction log and labels of ``model`` through the object store.

        Pushes this machine's parts the store lacks and pulls the others'; a
        no-op for a local workspace. Readers of the log call it first.
        """
        if self.mirror is not None:
            self.mirror.sync(f"predictions/{model}")
            self.mirror.sync(f"feedback/{model}")

    def gc(self, older_than_seconds: float) -> list[str]:
        """Remove temporary uploads and staging folders untouched for ``older_than_seconds``.

        They belong to writers that failed or were killed: nothing registered
        points at them. Returns what was removed (keys on the store, local paths).
        """
        removed = self.artifacts.remote.gc(older_than_seconds) if self.artifacts.remote else []
        cutoff = time.time() - older_than_seconds
        for entry in sorted(self.artifacts.tmp.iterdir()):
            try:
                if entry.lstat().st_mtime <= cutoff:
                    if entry.is_dir() and not entry.is_symlink():
                        shutil.rmtree(entry)
                    else:
                        entry.unlink()
                    removed.append(str(entry))
            except OSError:
                continue  # already gone, or in use: the next gc tries again
        return removed

    def close(self) -> None:
        self.meta.dispose()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # snapshots -------------------------------------------------------------
    @property
    def snapshots(self) -> SnapshotStore:
        return SnapshotStore(self.meta, self.artifacts)

    def ingest(
        self, source: AnySource, name: str | None = None
    ) -> tuple[SnapshotRecord, pd.DataFrame]:
        """Read a source into an immutable snapshot (or resolve a snapshot reference).

        Identical data yields the same id; returns the record and its rows.
        """
        record, _report = ingest(source, self.snapshots, name=name)
        return record, self.snapshots.frame(record)

    def ingest_report(
        self, source: AnySource, name: str | None = None
    ) -> tuple[SnapshotRecord, IngestReport]:
        """Like :meth:`ingest`, without loading the rows; returns the ingest report."""
        return ingest(source, self.snapshots, name=name)

    def snapshot(self, snapshot_id: str) -> pd.DataFrame:
        return self.snapshots.frame(self.snapshots.resolve(snapshot_id))

    # bundles -----------------------------------------------------------------
    def bundle_path(self, bundle_id: str, *, fetch: bool = True) -> Path:
        """The bundle's local folder.

        On an object-store workspace it is downloaded into the cache first
        (unless ``fetch`` is false: then it is only where the cache keeps it).
        """
        if fetch and self.is_remote:
            return self.artifacts.fetch("bundle", bundle_id)
        return self.artifacts.path("bundle", bundle_id)

    def run(self, run_id: str) -> dict[str, Any]:
        row = self.meta.one(select(md.runs).where(md.runs.c.id == run_id))
        if row is None:
            raise NotFoundError(f"no run with id {run_id!r}")
        return row
