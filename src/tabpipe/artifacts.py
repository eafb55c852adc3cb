"""The artifact store: immutable, identified artifacts under the workspace folder.

An artifact lives at ``<root>/<kind>/<id>/``. It is written to a temporary
folder first and renamed into place only when complete, so a failed write
never leaves a half-written artifact behind.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import pandas as pd
from pydantic import BaseModel

from tabpipe.errors import StoreError

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


class ArtifactStore:
    """Content-identified folders under ``root``, written atomically."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = root / ".tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)

    def path(self, kind: str, artifact_id: str) -> Path:
        return self.root / kind.split(":", maxsplit=1)[0] / artifact_id

    def exists(self, kind: str, artifact_id: str) -> bool:
        return (self.path(kind, artifact_id) / ".complete").exists()

    def put(self, codec: Codec[T], artifact_id: str, obj: T) -> Path:
        """Write ``obj``; a no-op when an artifact with this id is already complete."""
        final = self.path(codec.kind, artifact_id)
        if (final / ".complete").exists():
            return final
        return self.put_with(lambda folder: codec.save(obj, folder), codec.kind, artifact_id)

    def put_with(self, writer: Callable[[Path], None], kind: str, artifact_id: str) -> Path:
        """Run ``writer`` on a fresh temporary folder, then move it into place."""
        final = self.path(kind, artifact_id)
        staging = self.tmp / f"{artifact_id}-{uuid.uuid4().hex}"
        staging.mkdir(parents=True)
        try:
            writer(staging)
            (staging / ".complete").write_text(kind, encoding="utf-8")
            final.parent.mkdir(parents=True, exist_ok=True)
            if (final / ".complete").exists():  # a concurrent writer of the same id finished first
                shutil.rmtree(staging, ignore_errors=True)
                return final
            if final.exists():  # an incomplete leftover of a killed writer
                shutil.rmtree(final)
            staging.rename(final)
        except OSError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            if (final / ".complete").exists():  # another writer of the same id won the race
                return final
            raise StoreError(f"cannot write artifact {kind}/{artifact_id}: {exc}") from exc
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return final

    def get(self, codec: Codec[T], artifact_id: str) -> T:
        folder = self.path(codec.kind, artifact_id)
        if not (folder / ".complete").exists():
            raise StoreError(f"artifact {codec.kind}/{artifact_id} is missing or incomplete")
        return codec.load(folder)
