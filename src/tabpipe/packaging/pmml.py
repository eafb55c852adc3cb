"""PMML export: the fitted pipeline converted by sklearn2pmml (Java), then checked.

:func:`convert` writes the file from the steps :mod:`tabpipe.packaging.pmml_steps`
restates; :func:`verify` scores rows with the written file through a PMML evaluator
(jpmml-evaluator, a separate Java implementation of PMML) and compares with the native
pipeline, as the package stage compares ONNX. Both raise
:class:`~tabpipe.errors.PackagingError` naming what cannot be expressed or how far the
outputs are apart.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel

from tabpipe.errors import PackagingError
from tabpipe.packaging.bundle import Manifest
from tabpipe.packaging.pmml_steps import ADVICE, pmml_pipeline, refuse
from tabpipe.packaging.signature import MISSING_CATEGORY

#: Largest accepted difference between PMML and native outputs (as for ONNX).
PMML_TOLERANCE = 1e-4


class PmmlParity(BaseModel):
    """How the written PMML file compared with the native pipeline."""

    rows: int
    max_difference: float
    tolerance: float
    evaluator: str


def convert(pipeline: Any, manifest: Manifest, path: Path) -> None:
    """Write ``path`` (PMML) from the fitted ``pipeline``; the converter's reason on failure."""
    import contextlib
    import io

    try:
        from sklearn2pmml import sklearn2pmml
    except ImportError as exc:
        raise PackagingError(
            "PMML export needs sklearn2pmml and a Java runtime: pip install 'tabpipe[pmml]'"
        ) from exc
    pmml = pmml_pipeline(pipeline, manifest)
    captured = io.StringIO()
    try:
        with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
            sklearn2pmml(pmml, str(path))
    except Exception as exc:
        reason = _java_reason(captured.getvalue()) or str(exc)
        if "Scikit-Learn version" in reason:
            raise PackagingError(
                f"sklearn2pmml {_version('sklearn2pmml')} cannot convert models under the "
                f"installed scikit-learn: {reason}. Export PMML from an environment with the "
                "scikit-learn version it names (tabpipe accepts scikit-learn>=1.9.0), or use "
                "the ONNX or MLflow export."
            ) from exc
        raise refuse(manifest, f"sklearn2pmml failed: {reason}") from exc


def _java_reason(text: str) -> str | None:
    """The root cause the converter printed (its last exception) and its suggested fix."""
    lines = text.splitlines()
    found = [i for i, line in enumerate(lines) if "Exception:" in line]
    if not found:
        return None
    i = found[-1]
    reason = lines[i].split("Exception:", 1)[1].strip()
    if i + 2 < len(lines) and lines[i + 1].strip() == "Solution:":
        reason += f" ({lines[i + 2].strip()})"
    return reason


def edge_rows(manifest: Manifest) -> dict[str, list[Any]]:
    """Rows that exercise missing values, the training range's ends and every category."""
    columns = manifest.signature.columns
    width = max([len(c.categories or []) for c in columns] + [3]) + 2
    rows: dict[str, list[Any]] = {}
    for col in columns:
        if col.kind == "numeric":
            values: list[Any] = [col.minimum, col.median, col.maximum, None]
            values += list(col.rules.sentinels) if col.rules else []
            if col.minimum is not None and col.maximum is not None:
                span = col.maximum - col.minimum
                values += [col.minimum - span, col.maximum + span]
        elif col.kind == "datetime":  # a leap day, a time of day, before 1970, missing
            values = ["2024-02-29", "2011-01-01 13:45:00", "1969-12-31", None]
        else:
            values = [*(col.categories or []), None, "a value never seen in training"]
        rows[col.name] = [values[i % len(values)] for i in range(width)]
    return rows


def verify(path: Path, pipeline: Any, manifest: Manifest, rows: dict[str, list[Any]]) -> PmmlParity:
    """Score ``rows`` (raw values) with the PMML file and the native pipeline; compare."""
    try:
        from jpmml_evaluator import make_evaluator
    except ImportError as exc:
        raise PackagingError(
            "PMML export verifies the file with a PMML evaluator: pip install 'tabpipe[pmml]'"
        ) from exc
    feeds = manifest.signature.to_feeds(rows)
    frame = pd.DataFrame({k: v.reshape(-1) for k, v in feeds.items()})
    classifier = manifest.task != "regression"
    native = np.asarray(
        pipeline.predict_proba(frame) if classifier else pipeline.predict(frame), dtype=np.float64
    )
    evaluator = make_evaluator(str(path)).verify()
    scored = evaluator.evaluateAll(_pmml_input(rows, frame, manifest))
    names = [f"probability({c})" for c in pipeline.classes_] if classifier else [manifest.target]
    missing = [n for n in names if n not in scored.columns]
    if missing:
        raise refuse(manifest, f"the PMML file has no output {missing[0]!r}")
    converted = scored[names].to_numpy(dtype=np.float64).reshape(native.shape)
    from tabpipe.packaging.onnx import parity

    difference = parity(native, converted)
    result = PmmlParity(
        rows=len(frame),
        max_difference=difference,
        tolerance=PMML_TOLERANCE,
        evaluator=f"jpmml_evaluator {_version('jpmml_evaluator')}",
    )
    if not difference <= PMML_TOLERANCE:
        raise PackagingError(
            f"PMML predictions of {manifest.name!r} differ from the native pipeline by "
            f"{difference:.3g} (tolerance {PMML_TOLERANCE}) on {len(frame)} rows; "
            f"the PMML export was not written. {ADVICE}"
        )
    return result


def _pmml_input(
    rows: dict[str, list[Any]], frame: pd.DataFrame, manifest: Manifest
) -> pd.DataFrame:
    """The rows as a PMML consumer sends them: numbers as given (the file replays the
    cleaning rules it can state), categories as text, a missing value as missing."""
    out: dict[str, list[Any]] = {}
    for col in manifest.signature.columns:
        fed = frame[col.name].tolist()
        if col.kind == "numeric":
            out[col.name] = [
                float(raw) if _is_number(raw) else (None if math.isnan(f) else float(f))
                for raw, f in zip(rows[col.name], fed, strict=True)
            ]
        elif col.kind == "datetime":  # epoch seconds, as the model is fed
            out[col.name] = [None if math.isnan(f) else float(f) for f in fed]
        else:
            out[col.name] = [
                None if raw is None or f == MISSING_CATEGORY else f
                for raw, f in zip(rows[col.name], fed, strict=True)
            ]
    return pd.DataFrame(out, dtype=object)


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, int | float | np.integer | np.floating)
        and not isinstance(value, bool | np.bool_)
        and not math.isnan(float(value))
    )


def _version(package: str) -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
