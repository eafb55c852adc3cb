"""Artifact folders on an object store (S3-compatible, or any fsspec filesystem).

A :class:`RemoteStore` holds the immutable artifact folders of a workspace
whose location is a URL such as ``s3://bucket/prefix``. Object stores have no
atomic rename, so publishing an artifact goes in three steps:

1. every file is uploaded under a fresh temporary key,
   ``<prefix>/artifacts/.tmp/<uuid>/<file>``;
2. each file is copied (server side) to the final key
   ``<prefix>/artifacts/<kind>/<id>/<file>``;
3. the ``.complete`` marker object is written last, in one PUT.

Readers look for the marker before anything else, and snapshots are
registered in the metadata store only after it exists, so a reader never
sees a partial artifact: a failure in any step leaves no marker (and no
metadata row), and the temporary keys are removed on a best-effort basis.
Keys left behind by a killed process are removed by :meth:`RemoteStore.gc`
(``tabpipe gc``).

Credentials and endpoints come from the filesystem's own configuration; for
S3 that is the standard AWS environment (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL_S3`` for MinIO and the like),
or ``storage_options`` passed to :class:`tabpipe.workspace.Workspace`.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tabpipe.errors import ConfigError, StoreError

COMPLETE = ".complete"
TMP = ".tmp"
CHECK_ACCESS = (
    "check the credentials (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or AWS_PROFILE) and, "
    "for MinIO and other S3-compatible servers, AWS_ENDPOINT_URL_S3"
)


def is_url(location: str | Path) -> bool:
    """True for a remote location such as ``s3://bucket/prefix`` (``file://`` is local)."""
    text = str(location)
    return "://" in text and not text.startswith("file://")


def filesystem(url: str, storage_options: dict[str, Any] | None = None) -> tuple[Any, str]:
    """The fsspec filesystem of ``url`` and the path inside it (no trailing slash)."""
    import fsspec

    try:
        fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
    except ImportError as exc:
        raise ConfigError(
            f"workspace {url!r}: the filesystem for this URL is not installed ({exc}); "
            "for s3:// install the extra: pip install 'tabpipe[s3]'"
        ) from exc
    except ValueError as exc:
        raise ConfigError(f"workspace {url!r}: not a usable filesystem URL: {exc}") from exc
    return fs, str(path).rstrip("/")


@dataclass(frozen=True)
class TmpEntry:
    """One temporary upload folder: its key and the newest modification time seen (UTC)."""

    key: str
    modified: float


class RemoteStore:
    """Immutable artifact folders under ``base`` on the fsspec filesystem ``fs``."""

    def __init__(self, fs: Any, base: str, protocol: str) -> None:
        self.fs = fs
        self.base = base.rstrip("/")
        self.protocol = protocol

    @classmethod
    def from_url(cls, url: str, storage_options: dict[str, Any] | None = None) -> RemoteStore:
        fs, base = filesystem(url, storage_options)
        return cls(fs, base, url.split("://", maxsplit=1)[0])

    # keys ------------------------------------------------------------------
    def key(self, kind: str, artifact_id: str) -> str:
        return f"{self.base}/{kind.split(':', maxsplit=1)[0]}/{artifact_id}"

    def url(self, kind: str, artifact_id: str) -> str:
        return f"{self.protocol}://{self.key(kind, artifact_id)}"

    def is_complete(self, kind: str, artifact_id: str) -> bool:
        marker = f"{self.key(kind, artifact_id)}/{COMPLETE}"
        self.fs.invalidate_cache(marker)  # another process may have published it since
        try:
            return bool(self.fs.exists(marker))
        except Exception as exc:  # botocore's credential and endpoint errors are not OSErrors
            raise StoreError(
                f"cannot reach {self.url(kind, artifact_id)}: {exc}; {CHECK_ACCESS}"
            ) from exc

    # writing ---------------------------------------------------------------
    def publish(self, folder: Path, kind: str, artifact_id: str) -> None:
        """Upload a complete local artifact folder; it becomes visible with its marker, last.

        A no-op when the artifact is already complete on the store (ids are
        immutable: the same id holds the same content).
        """
        if self.is_complete(kind, artifact_id):
            return
        files = sorted(
            p.relative_to(folder).as_posix()
            for p in folder.rglob("*")
            if p.is_file() and p.name != COMPLETE
        )
        staging = f"{self.base}/{TMP}/{uuid.uuid4().hex}"
        final = self.key(kind, artifact_id)
        try:
            for name in files:
                self.fs.put_file(str(folder / name), f"{staging}/{name}")
            for name in files:
                self.fs.copy(f"{staging}/{name}", f"{final}/{name}")
            self.fs.pipe_file(f"{final}/{COMPLETE}", kind.encode())
        except Exception as exc:
            raise StoreError(
                f"cannot upload artifact {kind}/{artifact_id} to {self.url(kind, artifact_id)}: "
                f"{exc}; nothing was registered"
            ) from exc
        finally:
            self._remove(staging)

    def put_file(self, local: Path, relative: str) -> str:
        """Upload one standalone file (e.g. a quarantine file) under ``base``; its URL."""
        key = f"{self.base}/{relative}"
        try:
            self.fs.put_file(str(local), key)
        except Exception as exc:
            raise StoreError(f"cannot upload {local} to {self.protocol}://{key}: {exc}") from exc
        return f"{self.protocol}://{key}"

    # reading ---------------------------------------------------------------
    def download(self, kind: str, artifact_id: str, dest: Path) -> None:
        """Copy a complete artifact folder into ``dest`` (which must exist and be empty)."""
        final = self.key(kind, artifact_id)
        if not self.is_complete(kind, artifact_id):
            raise StoreError(
                f"artifact {kind}/{artifact_id} is missing or incomplete at "
                f"{self.url(kind, artifact_id)}"
            )
        try:
            for key in self.fs.find(final):
                relative = key[len(final) + 1 :]
                target = dest / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                self.fs.get_file(key, str(target))
        except Exception as exc:
            raise StoreError(
                f"cannot download {self.url(kind, artifact_id)}: {exc}; {CHECK_ACCESS}"
            ) from exc

    # cleaning ----------------------------------------------------------------
    def temporary(self) -> Iterator[TmpEntry]:
        """The temporary upload folders present now, with their newest modification time."""
        root = f"{self.base}/{TMP}"
        newest: dict[str, float] = {}
        try:
            found = self.fs.find(root, detail=True)
        except FileNotFoundError:
            return
        for key, info in found.items():
            folder = key[len(root) + 1 :].split("/", maxsplit=1)[0]
            stamp = _modified(info)
            newest[folder] = max(newest.get(folder, 0.0), stamp)
        for folder, stamp in sorted(newest.items()):
            yield TmpEntry(f"{root}/{folder}", stamp)

    def gc(self, older_than_seconds: float) -> list[str]:
        """Remove temporary upload folders untouched for ``older_than_seconds``; their keys."""
        cutoff = time.time() - older_than_seconds
        removed = [entry.key for entry in self.temporary() if entry.modified <= cutoff]
        for key in removed:
            self._remove(key)
        return removed

    def _remove(self, key: str) -> None:
        # best effort: nothing was registered, and gc removes what is left
        with contextlib.suppress(OSError, ValueError):
            self.fs.rm(key, recursive=True)


@dataclass(frozen=True)
class SyncResult:
    pushed: int
    pulled: int


class FolderMirror:
    """Append-only folders of immutable part files, mirrored between ``local`` and the store.

    The prediction log and late labels are such folders: each part is written
    once (locally to a temporary name, then renamed) and never changed, so a
    part is pushed in one PUT (atomic: readers see all of it or nothing) and
    pulled to a temporary name, then renamed. ``local/<relative>`` maps to
    ``<base>/<relative>``.
    """

    def __init__(self, fs: Any, base: str, local: Path, pattern: str = "part-*.parquet") -> None:
        self.fs = fs
        self.base = base.rstrip("/")
        self.local = local
        self.pattern = pattern

    @classmethod
    def from_url(
        cls, url: str, local: Path, storage_options: dict[str, Any] | None = None
    ) -> FolderMirror:
        """The mirror of the workspace at ``url`` whose local folder is ``local``."""
        fs, base = filesystem(url, storage_options)
        return cls(fs, base, local)

    def push(self, part: Path) -> None:
        """Upload one finished part (a path under ``local``)."""
        key = f"{self.base}/{part.relative_to(self.local).as_posix()}"
        try:
            self.fs.put_file(str(part), key)
        except Exception as exc:
            raise StoreError(f"cannot upload {part} to {key}: {exc}") from exc

    def sync(self, relative: str) -> SyncResult:
        """Push the local parts the store lacks, then pull the parts this machine lacks."""
        folder = self.local / relative
        key = f"{self.base}/{relative}"
        self.fs.invalidate_cache(key)
        try:
            remote = {k.rsplit("/", 1)[1] for k in self.fs.find(key)}
        except FileNotFoundError:
            remote = set()
        except Exception as exc:
            raise StoreError(f"cannot list {key}: {exc}; {CHECK_ACCESS}") from exc
        remote = {n for n in remote if Path(n).match(self.pattern)}
        local = {p.name for p in folder.glob(self.pattern)} if folder.exists() else set()
        for name in sorted(local - remote):
            self.push(folder / name)
        pulled = sorted(remote - local)
        if pulled:
            folder.mkdir(parents=True, exist_ok=True)
        for name in pulled:
            tmp = folder / f".tmp-{name}"
            try:
                self.fs.get_file(f"{key}/{name}", str(tmp))
                tmp.replace(folder / name)
            except Exception as exc:
                tmp.unlink(missing_ok=True)
                raise StoreError(f"cannot download {key}/{name}: {exc}") from exc
        return SyncResult(len(local - remote), len(pulled))


def _modified(info: dict[str, Any]) -> float:
    stamp = info.get("LastModified") or info.get("mtime") or info.get("created")
    if stamp is None:
        return 0.0
    if hasattr(stamp, "timestamp"):
        return float(stamp.timestamp())
    return float(stamp)


__all__ = [
    "COMPLETE",
    "FolderMirror",
    "RemoteStore",
    "SyncResult",
    "TmpEntry",
    "filesystem",
    "is_url",
]
