"""What serving a candidate costs: ONNX size, single-row and batch latency, and parity.

Latency is measured through onnxruntime (the serving path) with one thread, as the
median of repeated calls on rows of the test split.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel

from tabpipe.data.cleaning import CleaningReport
from tabpipe.features.frame import FeaturePlan

PARITY_TOLERANCE = 1e-4
SINGLE_ROW_CALLS = 100
BATCH_ROWS = 1000


class Cost(BaseModel):
    onnx: bool
    note: str | None = None
    size_kb: float | None = None
    latency_ms: float | None = None
    batch_ms_per_1k: float | None = None
    parity: float | None = None


def measure(
    model: Any,
    test: pd.DataFrame,
    plan: FeaturePlan,
    report: CleaningReport,
    cache: dict[int, Any] | None = None,
) -> Cost:
    """Convert ``model`` to ONNX and time it; a failed conversion is reported, not raised."""
    from tabpipe.packaging.build import signature_of
    from tabpipe.packaging.onnx import parity, to_onnx

    signature = signature_of(report, plan)
    classifier = report.task != "regression"
    try:
        data = to_onnx(model, signature, classifier=classifier, cache=cache)
    except Exception as exc:  # any converter failure makes the candidate unservable
        return Cost(onnx=False, note=str(exc)[:300])
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    feeds = signature.to_feeds({c: test[c].tolist() for c in signature.names})
    output = "probabilities" if classifier else "variable"
    (converted,) = session.run([output], feeds)
    frame = pd.DataFrame({k: v.reshape(-1) for k, v in feeds.items()})
    native = model.predict_proba(frame) if classifier else model.predict(frame)
    diff = parity(np.asarray(native), np.asarray(converted))
    single = {k: v[:1] for k, v in feeds.items()}
    session.run([output], single)
    times = []
    for _ in range(SINGLE_ROW_CALLS):
        t0 = time.perf_counter()
        session.run([output], single)
        times.append(time.perf_counter() - t0)
    reps = max(1, BATCH_ROWS // len(frame) + 1)
    batch = {k: np.concatenate([v] * reps)[:BATCH_ROWS] for k, v in feeds.items()}
    t0 = time.perf_counter()
    session.run([output], batch)
    batch_seconds = time.perf_counter() - t0
    rows = len(next(iter(batch.values())))
    ok = diff <= PARITY_TOLERANCE
    return Cost(
        onnx=ok,
        note=None if ok else f"ONNX differs from native by {diff:.3g}",
        size_kb=len(data) / 1024,
        latency_ms=float(np.median(times)) * 1000,
        batch_ms_per_1k=batch_seconds * 1000 * 1000 / rows,
        parity=diff,
    )
