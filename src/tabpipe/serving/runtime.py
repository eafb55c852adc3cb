"""Predictors: the ONNX runtime (default, no scikit-learn needed) and the native pipeline."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from tabpipe.packaging.bundle import Manifest, read_manifest

Runtime = Literal["onnx", "native"]


@dataclass(frozen=True)
class Prediction:
    """Model output for a batch: predictions, plus class probabilities for classifiers."""

    values: list[Any]
    proba: np.ndarray | None


class Predictor(Protocol):
    manifest: Manifest
    folder: Path

    def predict(self, feeds: dict[str, np.ndarray]) -> Prediction: ...

    def contributions(self, feeds: dict[str, np.ndarray]) -> list[dict[str, float]]: ...


class Decider:
    """Turns model output into a :class:`Prediction`, with the manifest's settings at hand."""

    __slots__ = ("classes", "regression", "threshold")

    def __init__(self, manifest: Manifest) -> None:
        self.regression = manifest.task == "regression"
        self.classes = list(manifest.classes or [])
        self.threshold = manifest.threshold

    def finish(self, output: np.ndarray) -> Prediction:
        if self.regression:
            return Prediction(values=output.reshape(-1).astype(float).tolist(), proba=None)
        proba = output.astype(np.float64)
        return Prediction(values=self.labels(proba), proba=proba)

    def labels(self, proba: np.ndarray) -> list[Any]:
        """The predicted classes: by the threshold for binary models, else argmax."""
        classes = self.classes
        if self.threshold is not None and proba.shape[1] == 2:
            threshold = self.threshold
            return [classes[p >= threshold] for p in proba[:, 1].tolist()]
        return [classes[i] for i in proba.argmax(axis=1).tolist()]


def decide_labels(manifest: Manifest, proba: np.ndarray) -> list[Any]:
    """The predicted classes: by the bundle's threshold for binary models, else argmax."""
    return Decider(manifest).labels(proba)


class OnnxPredictor:
    """Runs ``model.onnx`` with onnxruntime on numpy feeds."""

    def __init__(self, folder: Path, manifest: Manifest) -> None:
        import onnxruntime as ort

        self.folder = folder
        self._explainer: Any = None
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.manifest = manifest
        self._decider = Decider(manifest)
        self._session = ort.InferenceSession(
            str(folder / "model.onnx"), sess_options=options, providers=["CPUExecutionProvider"]
        )
        # ONNX renames some inputs (e.g. a leading digit gets '_'); inputs keep the column order.
        self._inputs = [
            (i.name, c.name)
            for i, c in zip(self._session.get_inputs(), manifest.signature.columns, strict=True)
        ]
        names = [o.name for o in self._session.get_outputs()]
        output = "variable" if manifest.task == "regression" else "probabilities"
        self._outputs = [output if output in names else names[-1]]
        # The feeds come from Signature.check, which gives every input: the checks of
        # InferenceSession.run (every input named, no foreign OrtValue) hold by
        # construction and cost about 0.2 µs per input, so the session's binding runs directly.
        binding: Any = getattr(self._session, "_sess", None)
        self._run = binding.run if hasattr(binding, "run") else self._run_checked

    def _run_checked(self, outputs: list[str], feeds: dict[str, np.ndarray], options: Any) -> Any:
        return self._session.run(outputs, feeds, options)

    def predict(self, feeds: dict[str, np.ndarray]) -> Prediction:
        (output,) = self._run(
            self._outputs, {onnx_name: feeds[name] for onnx_name, name in self._inputs}, None
        )
        return self._decider.finish(output)

    def contributions(self, feeds: dict[str, np.ndarray]) -> list[dict[str, float]]:
        """Loads the native pipeline (scikit-learn) on the first call only."""
        if self._explainer is None:
            self._explainer = _explainer(self.folder, self.manifest, None)
        result: list[dict[str, float]] = self._explainer.contributions(feeds)
        return result


class NativePredictor:
    """Runs the skops-loaded scikit-learn pipeline."""

    def __init__(self, folder: Path, manifest: Manifest) -> None:
        import pandas as pd

        from tabpipe.packaging import persist

        self.manifest = manifest
        self.folder = folder
        self._pipeline = persist.load(folder / "pipeline.skops")
        self._frame = pd.DataFrame
        self._decider = Decider(manifest)
        self._explainer: Any = None

    def predict(self, feeds: dict[str, np.ndarray]) -> Prediction:
        frame = self._frame({name: values.reshape(-1) for name, values in feeds.items()})
        if self.manifest.task == "regression":
            output = np.asarray(self._pipeline.predict(frame), dtype=np.float64)
        else:
            output = np.asarray(self._pipeline.predict_proba(frame), dtype=np.float64)
        return self._decider.finish(output)

    def contributions(self, feeds: dict[str, np.ndarray]) -> list[dict[str, float]]:
        if self._explainer is None:
            self._explainer = _explainer(self.folder, self.manifest, self._pipeline)
        result: list[dict[str, float]] = self._explainer.contributions(feeds)
        return result


def _explainer(folder: Path, manifest: Manifest, pipeline: Any) -> Any:
    from tabpipe.errors import RequestError
    from tabpipe.serving.explain import Explainer

    if not manifest.contributions:
        raise RequestError(
            f"per-feature contributions are not available for the {manifest.family!r} model; "
            "they are supported for LightGBM and XGBoost models",
            field="contributions",
        )
    if pipeline is None:
        from tabpipe.packaging import persist

        pipeline = persist.load(folder / "pipeline.skops")
    return Explainer(pipeline, manifest.signature.names, manifest.task)


def load_predictor(folder: Path, runtime: Runtime = "onnx") -> Predictor:
    """Load a bundle (checksums verified) into a predictor."""
    manifest = read_manifest(folder)
    if runtime == "native":
        return NativePredictor(folder, manifest)
    return OnnxPredictor(folder, manifest)
