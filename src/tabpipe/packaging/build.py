"""The package stage: winner pipeline to bundle content, with the ONNX parity check."""

from __future__ import annotations

import importlib.metadata
from typing import Any

import numpy as np
import pandas as pd

from tabpipe.data.cleaning import CleaningReport
from tabpipe.errors import PackagingError
from tabpipe.features.frame import FeaturePlan
from tabpipe.modeling.decision import CalibratedModel
from tabpipe.modeling.select import Leaderboard
from tabpipe.packaging import onnx, persist
from tabpipe.packaging.bundle import (
    FORMAT_VERSION,
    BundleContent,
    Lineage,
    Manifest,
    Parity,
    output_schema,
)
from tabpipe.packaging.signature import ColumnSpec, Signature
from tabpipe.serving.explain import supports_contributions

PARITY_TOLERANCE = 1e-4
_LIBRARIES = (
    "scikit-learn",
    "lightgbm",
    "xgboost",
    "catboost",
    "onnx",
    "onnxruntime",
    "skl2onnx",
    "skops",
    "numpy",
    "tabpipe",
)


def signature_of(report: CleaningReport, plan: FeaturePlan) -> Signature:
    info = {c.name: c for c in report.columns}
    columns = [
        ColumnSpec(
            name=n,
            kind="numeric",
            nullable=True,
            minimum=info[n].minimum,
            maximum=info[n].maximum,
            median=info[n].median,
            rules=info[n].rules,
        )
        for n in plan.numeric
    ] + [
        ColumnSpec(
            name=n,
            kind="categorical",
            nullable=True,
            categories=info[n].categories,
            rules=info[n].rules,
        )
        for n in plan.categorical
    ]
    columns += [
        ColumnSpec(name=n, kind="datetime", nullable=True, formats=info[n].formats)
        for n in plan.datetime
    ]
    columns += [
        ColumnSpec(name=n, kind="text", nullable=True, rules=info[n].rules) for n in plan.text
    ]
    return Signature(columns=columns)


def output_names(report: CleaningReport) -> list[str]:
    if report.task == "regression":
        return ["prediction"]
    return ["prediction", *(f"proba_{c}" for c in report.classes or [])]


def package(
    name: str,
    models: dict[str, Any],
    leaderboard: Leaderboard,
    plan: FeaturePlan,
    report: CleaningReport,
    test: pd.DataFrame,
    lineage: Lineage,
    seed: int,
) -> BundleContent:
    """Build the bundle of the leaderboard's best model; fail if ONNX disagrees with it."""
    best = leaderboard.best
    pipeline = models[best.name]
    decision = leaderboard.decision
    if decision is not None and (decision.calibration or decision.threshold is not None):
        pipeline = CalibratedModel.from_fitted(pipeline, decision)
    signature = signature_of(report, plan)
    classifier = report.task != "regression"
    onnx_bytes = onnx.to_onnx(pipeline, signature, classifier=classifier)
    feeds = signature.to_feeds({c: test[c].tolist() for c in signature.names})
    native = _native_output(pipeline, feeds, classifier)
    converted = _onnx_output(onnx_bytes, feeds, classifier)
    difference = onnx.parity(native, converted)
    if not difference <= PARITY_TOLERANCE:
        raise PackagingError(
            f"ONNX predictions of {best.name!r} differ from the native pipeline by {difference:.3g} "
            f"(tolerance {PARITY_TOLERANCE}) on the test split; the bundle was not written"
        )
    manifest = Manifest(
        format_version=FORMAT_VERSION,
        name=name,
        task=report.task,
        target=report.target,
        classes=report.classes,
        signature=signature,
        outputs=output_names(report),
        output_schema=output_schema(
            report.task, report.classes, decision.threshold if decision else None
        ),
        contributions=supports_contributions(pipeline),
        threshold=decision.threshold if decision else None,
        calibration=decision.calibration.method if decision and decision.calibration else None,
        family=best.name,
        metric=leaderboard.metric,
        validation_score=best.cv_score,
        test_metrics=decision.test_metrics if decision and decision.test_metrics else best.test,
        lineage=lineage,
        seed=seed,
        parity=Parity(rows=len(test), max_difference=difference, tolerance=PARITY_TOLERANCE),
        library_versions=_versions(),
        created_at=pd.Timestamp.now(tz="UTC").to_pydatetime(),
        files={},
    )
    return BundleContent(
        manifest=manifest,
        files={
            "model.onnx": onnx_bytes,
            "pipeline.skops": persist.dumps(pipeline),
            **(
                {"contract.json": report.contract.model_dump_json(indent=2).encode()}
                if report.contract
                else {}
            ),
        },
    )


def _native_output(pipeline: Any, feeds: dict[str, np.ndarray], classifier: bool) -> np.ndarray:
    frame = pd.DataFrame({k: v.reshape(-1) for k, v in feeds.items()})
    out = pipeline.predict_proba(frame) if classifier else pipeline.predict(frame)
    return np.asarray(out, dtype=np.float64)


def _onnx_output(model: bytes, feeds: dict[str, np.ndarray], classifier: bool) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    output = "probabilities" if classifier else "variable"
    columns = list(feeds)
    renamed = {i.name: feeds[c] for i, c in zip(session.get_inputs(), columns, strict=True)}
    (result,) = session.run([output], renamed)
    return np.asarray(result, dtype=np.float64)


def _versions() -> dict[str, str]:
    versions = {}
    for lib in _LIBRARIES:
        try:
            versions[lib] = importlib.metadata.version(lib)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions
