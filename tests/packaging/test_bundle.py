"""The bundle format: older versions stay readable, tampered bundles are refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tabpipe.errors import BundleError
from tabpipe.packaging import bundle
from tabpipe.serving.runtime import load_predictor

FIXTURE = Path(__file__).parent / "fixtures" / "bundle_v1"
ROW = {
    "Pclass": [3],
    "Age": [22.0],
    "SibSp": [1],
    "Parch": [0],
    "Fare": [7.25],
    "Sex": ["male"],
    "Embarked": ["S"],
}


def copy(tmp_path: Path) -> Path:
    target = tmp_path / "bundle"
    shutil.copytree(FIXTURE, target)
    return target


def test_format_1_bundle_is_read_and_upgraded() -> None:
    assert json.loads((FIXTURE / "manifest.json").read_text())["format_version"] == 1
    manifest = bundle.read_manifest(FIXTURE)
    assert manifest.format_version == 1
    assert [o.name for o in manifest.output_schema] == ["prediction", "proba_0", "proba_1"]
    assert manifest.output_schema[0].datatype == "INT64"
    assert manifest.signature.unseen_categories == "ignore"
    assert manifest.contributions is False


@pytest.mark.parametrize("runtime", ["onnx", "native"])
def test_format_1_bundle_predicts_with_both_runtimes(runtime: str) -> None:
    predictor = load_predictor(FIXTURE, "native" if runtime == "native" else "onnx")
    feeds = predictor.manifest.signature.to_feeds(
        {n: ROW.get(n, [None]) for n in predictor.manifest.signature.names}
    )
    prediction = predictor.predict(feeds)
    assert prediction.proba is not None
    assert prediction.proba.shape == (1, 2)
    assert prediction.proba.sum() == pytest.approx(1.0)
    assert prediction.values[0] in (0, 1)


def test_both_runtimes_agree_on_the_fixture() -> None:
    onnx = load_predictor(FIXTURE, "onnx")
    native = load_predictor(FIXTURE, "native")
    names = onnx.manifest.signature.names
    feeds = onnx.manifest.signature.to_feeds({n: [*ROW.get(n, [None]), None] for n in names})
    a, b = onnx.predict(feeds).proba, native.predict(feeds).proba
    assert a is not None and b is not None
    assert abs(a - b).max() < 1e-4


def test_tampered_file_is_refused(tmp_path: Path) -> None:
    folder = copy(tmp_path)
    data = bytearray((folder / "model.onnx").read_bytes())
    data[-1] ^= 0xFF
    (folder / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"checksum of .model\.onnx. does not match"):
        load_predictor(folder)


def test_missing_file_is_refused(tmp_path: Path) -> None:
    folder = copy(tmp_path)
    (folder / "pipeline.skops").unlink()
    with pytest.raises(BundleError, match=r"pipeline\.skops. listed in the manifest is missing"):
        bundle.read_manifest(folder)


def test_unknown_format_version_is_refused(tmp_path: Path) -> None:
    folder = copy(tmp_path)
    raw = json.loads((folder / "manifest.json").read_text())
    raw["format_version"] = 99
    (folder / "manifest.json").write_text(json.dumps(raw))
    with pytest.raises(BundleError, match="format version 99 is not supported"):
        bundle.read_manifest(folder)


def test_write_then_read_is_format_2(tmp_path: Path) -> None:
    manifest = bundle.read_manifest(FIXTURE)
    files = {name: (FIXTURE / name).read_bytes() for name in manifest.files}
    content = bundle.BundleContent(
        manifest=manifest.model_copy(update={"format_version": bundle.FORMAT_VERSION}), files=files
    )
    bundle.write(content, tmp_path)
    again = bundle.read_manifest(tmp_path)
    assert again.format_version == 2
    assert again.output_schema == manifest.output_schema
    assert again.files == manifest.files
