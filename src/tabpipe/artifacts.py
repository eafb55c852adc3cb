"""The artifact store: immutable, identified artifacts under the workspace folder.

An artifact lives at ``<root>/<kind>/<id>/``. It is written to a temporary
folder first and renamed into place only when complete, so a failed write
never leaves a half-written artifact behind.

When the workspace is on an object store, a :class:`~tabpipe.objectstore.RemoteStore`
holds the artifacts and ``root`` is a local cache of them: a new artifact is
published to the store (temporary keys, then its ``.complete`` marker) before
it enters the cache, and a read downloads a complete artifact into the cache
once. Artifacts are immutable, so a cached copy never goes stale; libraries
that need a local file (DuckDB, onnxruntime, skops) read the cached copy.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import pandas as pd
from pydantic import BaseModel

from tabpipe.errors import StoreError
from tabpipe.objectstore import COMPLETE, RemoteStore

T = TypeVar("T")


@dataclass(frozen=True)
class Codec(Generic[T]):
    """How one kind of artifact is written to and read from its folder."""

    kind: str
    save: Callable[[T, Path], None]
    load: Callable[[Path], T]


def _save_table(frame: pd.DataFrame, folder: Path) -> None:
    frame.to_parquet(folder / "data.parquet", index=False)


def _load_table(folder: Path) -> pd.DataFrame:
    return pd.read_parquet(folder / "data.parquet")


TABLE: Codec[pd.DataFrame] = Codec("table", _save_table, _load_table)


def json_codec(model: type[BaseModel]) -> Codec[Any]:
    """A codec for a pydantic model saved as ``data.json``."""

    def save(obj: BaseModel, folder: Path) -> None:
        (folder / "data.json").write_text(obj.model_dump_json(indent=2), encoding="utf-8")

    def load(folder: Path) -> BaseModel:
        return model.model_validate_json((folder / "data.json").read_text(encoding="utf-8"))

    return Codec(f"json:{model.__name__}", save, load)


def _save_estimators(estimators: dict[str, Any], folder: Path) -> None:
    from tabpipe.packaging import persist  # skops/sklearn load only when needed (fast CLI start)

    index = {}
    for i, (name, est) in enumerate(estimators.items()):
        fname = f"model-{i}.skops"
        (folder / fname).write_bytes(persist.dumps(est))
        index[name] = fname
    (folder / "index.json").write_text(json.dumps(index, indent=2), encoding="utf-8")


def _load_estimators(folder: Path) -> dict[str, Any]:
    from tabpipe.packaging import persist

    index = json.loads((folder / "index.json").read_text(encoding="utf-8"))
    return {name: persist.load(folder / fname) for name, fname in index.items()}


ESTIMATORS: Codec[dict[str, Any]] = Codec("estimators", _save_estimators, _load_estimators)


def _save_text(text: str, folder: Path) -> None:
    (folder / "content.html").write_text(text, encoding="utf-8")


def _load_text(folder: Path) -> str:
    return (folder / "content.html").read_text(encoding="utf-8")


HTML: Codec[str] = Codec("html", _save_text, _load_text)


@contextmanager
def _removed_on_failure(staging: Path, what: str) -> Iterator[None]:
    """Remove ``staging`` if the block fails; a file-system error becomes a StoreError."""
    try:
        yield
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise StoreError(f"{what}: {exc}") from exc
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


class ArtifactStore:
    """Content-identified folders under ``root``, written atomically.

    With ``remote``, the folders live on an object store and ``root`` caches them.
    """

    def __init__(self, root: Path, remote: RemoteStore | None = None) -> None:
        self.root = root
        self.remote = remote
        self.tmp = root / ".tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)

    def path(self, kind: str, artifact_id: str) -> Path:
        """The local folder of an artifact (for a remote store, its place in the cache).

        Use :meth:`fetch` to read it: that also brings a remote artifact into the cache.
        """
        return self.root / kind.split(":", maxsplit=1)[0] / artifact_id

    def location(self, kind: str, artifact_id: str) -> str:
        """Where the artifact lives: a local folder, or a URL on the object store."""
        if self.remote is not None:
            return self.remote.url(kind, artifact_id)
        return str(self.path(kind, artifact_id))

    def exists(self, kind: str, artifact_id: str) -> bool:
        if (self.path(kind, artifact_id) / COMPLETE).exists():
            return True
        return self.remote is not None and self.remote.is_complete(kind, artifact_id)

    def put(self, codec: Codec[T], artifact_id: str, obj: T) -> Path:
        """Write ``obj``; a no-op when an artifact with this id is already complete."""
        if self.exists(codec.kind, artifact_id):
            return self.path(codec.kind, artifact_id)
        return self.put_with(lambda folder: codec.save(obj, folder), codec.kind, artifact_id)

    def put_with(self, writer: Callable[[Path], None], kind: str, artifact_id: str) -> Path:
        """Run ``writer`` on a fresh temporary folder, then move it into place."""
        staging = self.staging(artifact_id)
        with _removed_on_failure(staging, f"cannot write artifact {kind}/{artifact_id}"):
            writer(staging)
        return self.commit(staging, kind, artifact_id)

    def staging(self, label: str) -> Path:
        """A fresh, empty temporary folder to write an artifact into."""
        folder = self.tmp / f"{label}-{uuid.uuid4().hex}"
        folder.mkdir(parents=True)
        return folder

    def commit(self, staging: Path, kind: str, artifact_id: str) -> Path:
        """Make a fully written ``staging`` folder the artifact ``kind/artifact_id``.

        On an object store the folder is published first (it becomes visible
        to other readers when its marker is written), then moved into the
        cache. On failure the staging folder is removed and nothing is visible.
        """
        final = self.path(kind, artifact_id)
        with _removed_on_failure(staging, f"cannot write artifact {kind}/{artifact_id}"):
            (staging / COMPLETE).write_text(kind, encoding="utf-8")
            if self.remote is not None:
                self.remote.publish(staging, kind, artifact_id)
            self._move(staging, final)
        return final

    @staticmethod
    def _move(staging: Path, final: Path) -> None:
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists() and not (final / COMPLETE).exists():
            shutil.rmtree(final)  # an incomplete leftover of a killed writer
        try:
            staging.rename(final)
        except OSError:
            if not (final / COMPLETE).exists():
                raise
            shutil.rmtree(staging, ignore_errors=True)  # a concurrent writer of the same id won

    def fetch(self, kind: str, artifact_id: str) -> Path:
        """The local folder of a complete artifact, downloaded into the cache when remote."""
        folder = self.path(kind, artifact_id)
        if (folder / COMPLETE).exists():
            return folder
        if self.remote is None:
            raise StoreError(f"artifact {kind}/{artifact_id} is missing or incomplete")
        staging = self.staging(artifact_id)
        with _removed_on_failure(staging, f"cannot cache artifact {kind}/{artifact_id}"):
            self.remote.download(kind, artifact_id, staging)
            self._move(staging, folder)
        return folder

    def get(self, codec: Codec[T], artifact_id: str) -> T:
        return codec.load(self.fetch(codec.kind, artifact_id))
