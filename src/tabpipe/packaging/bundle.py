"""The bundle: a versioned folder that carries a model out of training.

Layout::

    manifest.json      format version, task, target, signature, outputs, metrics, lineage,
                       library versions, seed, checksums
    model.onnx         the whole pipeline as one ONNX graph (serving default)
    pipeline.skops     the native scikit-learn pipeline, safe to load (no pickle)

A bundle whose files do not match the manifest's SHA-256 checksums is refused.

Format history (every version stays readable):

- 1: the walking skeleton's manifest.
- 2: adds the output schema (name, datatype, shape per output), the signature's
  unseen-category policy, which kinds of explanation the native model supports,
  and the manifest's own format note. A format-1 manifest is upgraded on read.
  Optional fields added since (absent means "none"): ``threshold`` and ``calibration``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from tabpipe.errors import BundleError
from tabpipe.packaging.signature import Signature

FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
MANIFEST = "manifest.json"


class Lineage(BaseModel):
    snapshot_id: str
    run_id: str
    spec_hash: str


class Parity(BaseModel):
    rows: int
    max_difference: float
    tolerance: float


class OutputSpec(BaseModel):
    """One model output: ``prediction`` and, for classifiers, ``proba_<class>``."""

    name: str
    datatype: Literal["FP64", "INT64", "BOOL", "BYTES"]
    shape: list[int] = Field(default_factory=lambda: [-1])
    description: str = ""


class Manifest(BaseModel):
    format_version: int
    name: str
    task: Literal["binary", "multiclass", "regression"]
    target: str
    classes: list[str | int | float | bool] | None
    signature: Signature
    outputs: list[str]
    output_schema: list[OutputSpec]
    contributions: bool = False
    #: binary classifiers: the label is the positive class when P(positive) >= threshold
    threshold: float | None = None
    #: the probability calibration inside the model (``sigmoid``, ``isotonic``, ``temperature``) or None
    calibration: str | None = None
    family: str
    metric: str
    validation_score: float
    test_metrics: dict[str, float]
    lineage: Lineage
    seed: int
    parity: Parity
    library_versions: dict[str, str]
    created_at: datetime
    files: dict[str, str]


@dataclass
class BundleContent:
    """A bundle in memory: the manifest (without checksums yet) and its files' bytes."""

    manifest: Manifest
    files: dict[str, bytes] = field(default_factory=dict)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write(content: BundleContent, folder: Path) -> None:
    """Write files and a manifest carrying their checksums into ``folder``."""
    for name, data in content.files.items():
        (folder / name).write_bytes(data)
    manifest = content.manifest.model_copy(
        update={"files": {name: sha256(data) for name, data in sorted(content.files.items())}}
    )
    (folder / MANIFEST).write_text(manifest.model_dump_json(indent=2), encoding="utf-8")


def read_manifest(folder: Path, *, verify: bool = True) -> Manifest:
    """Read and validate a bundle's manifest; check every file's checksum."""
    path = folder / MANIFEST
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise BundleError(f"{folder}: not a bundle (no {MANIFEST})") from exc
    except json.JSONDecodeError as exc:
        raise BundleError(f"{path}: not valid JSON: {exc}") from exc
    version = raw.get("format_version") if isinstance(raw, dict) else None
    if version not in READABLE_VERSIONS:
        raise BundleError(
            f"{path}: bundle format version {version!r} is not supported; this tabpipe reads "
            f"versions {', '.join(map(str, READABLE_VERSIONS))} (upgrade tabpipe, or re-package "
            "the model)"
        )
    if version == 1:
        raw = upgrade_v1(raw)
    try:
        manifest = Manifest.model_validate(raw)
    except ValidationError as exc:
        raise BundleError(f"{path}: invalid manifest: {exc}") from exc
    if verify:
        verify_files(folder, manifest)
    return manifest


def verify_files(folder: Path, manifest: Manifest) -> None:
    for name, expected in manifest.files.items():
        target = folder / name
        if not target.exists():
            raise BundleError(f"{folder}: file {name!r} listed in the manifest is missing")
        if sha256(target.read_bytes()) != expected:
            raise BundleError(
                f"{folder}: checksum of {name!r} does not match the manifest; "
                "the bundle was modified or corrupted and will not be loaded"
            )


def output_schema(
    task: str, classes: list[str | int | float | bool] | None, threshold: float | None = None
) -> list[OutputSpec]:
    """The outputs a model of ``task`` answers with, in order."""
    if task == "regression":
        return [OutputSpec(name="prediction", datatype="FP64", description="predicted value")]
    labels = classes or []
    kind = _label_datatype(labels)
    return [
        OutputSpec(
            name="prediction",
            datatype=kind,
            description=(
                "most probable class"
                if threshold is None
                else f"{labels[-1]!r} when its probability is at least {threshold:.4g}"
            ),
        ),
        *(
            OutputSpec(name=f"proba_{c}", datatype="FP64", description=f"probability of {c!r}")
            for c in labels
        ),
    ]


def _label_datatype(labels: list[str | int | float | bool]) -> Literal["INT64", "BOOL", "BYTES"]:
    if labels and all(isinstance(v, bool) for v in labels):
        return "BOOL"
    if labels and all(isinstance(v, int) and not isinstance(v, bool) for v in labels):
        return "INT64"
    return "BYTES"


def upgrade_v1(raw: dict[str, Any]) -> dict[str, Any]:
    """A format-1 manifest as format 2: derive the output schema; defaults elsewhere."""
    upgraded = dict(raw)
    upgraded["output_schema"] = [
        o.model_dump() for o in output_schema(raw.get("task", ""), raw.get("classes"))
    ]
    upgraded.setdefault("contributions", False)
    upgraded["format_version"] = 1
    return upgraded
