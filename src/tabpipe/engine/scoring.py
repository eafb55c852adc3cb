"""Batch scoring of large Parquet data with Ray Data and the bundle's ONNX model.

The bundle's files travel to the cluster once; each scoring actor writes them to a
private folder and loads them (checksums verified), then scores pandas batches with the
same :func:`tabpipe.serving.batch.score_frame` as local batch scoring, so the output is the
same row for row. Batches stream back in input order and are written to one Parquet
file under a temporary name, renamed when complete; each batch is also appended to the
prediction log, as local batch scoring does.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tabpipe.engine.ray_engine import connect
from tabpipe.engine.spec import EngineSpec
from tabpipe.errors import ConfigError
from tabpipe.packaging.bundle import Manifest
from tabpipe.serving.runtime import Prediction, Runtime


@dataclass(frozen=True)
class ScoringJob:
    """What to score and how: Parquet inputs, the bundle folder, the output file."""

    inputs: list[str]
    bundle: Path
    output: Path
    runtime: Runtime = "onnx"
    #: Scoring actors; default: the cluster's CPUs less one (left for reading Parquet).
    actors: int | None = None
    batch_rows: int = 65_536


class BundleScorer:
    """A Ray Data callable class: one loaded bundle per actor, one pandas batch per call."""

    def __init__(self, files: dict[str, bytes], runtime: Runtime) -> None:
        from tabpipe.serving.runtime import load_predictor

        self._folder = Path(tempfile.mkdtemp(prefix="tabpipe-bundle-"))
        for name, content in files.items():
            (self._folder / name).parent.mkdir(parents=True, exist_ok=True)
            (self._folder / name).write_bytes(content)
        self.predictor = load_predictor(self._folder, runtime)

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        from tabpipe.data.snapshots import plain_dtypes
        from tabpipe.serving.batch import score_frame

        return score_frame(self.predictor, plain_dtypes(batch)).frame


def score_parquet(job: ScoringJob, engine: EngineSpec, on_batch: Any = None) -> int:
    """Score ``job.inputs`` on the Ray cluster of ``engine``; return the row count.

    ``on_batch(frame)`` is called with each scored pandas batch, in input order.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    if job.output.suffix.lower() not in {".parquet", ".pq"}:
        raise ConfigError(
            f"{job.output}: Ray batch scoring writes Parquet; give an output ending in .parquet"
        )
    ray, owns = connect(engine.address)
    try:
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True
        # Ray 2.60's DataSourceV2 Parquet reader (its default) yields the row groups of a
        # large file out of order even so; the V1 reader keeps the file's order.
        if hasattr(context, "use_datasource_v2"):
            context.use_datasource_v2 = False
        scored = ray.data.read_parquet(job.inputs).map_batches(
            BundleScorer,
            fn_constructor_args=(bundle_files(job.bundle), job.runtime),
            batch_format="pandas",
            batch_size=job.batch_rows,
            concurrency=job.actors or _actors(ray, engine.cpus_per_trial),
            num_cpus=engine.cpus_per_trial,
        )
        tmp = job.output.with_name(f".{job.output.name}.tmp")
        rows = 0
        writer: Any = None
        schema: Any = None
        try:
            for table in scored.iter_batches(batch_format="pyarrow", batch_size=None):
                if writer is None:
                    schema = table.schema
                    writer = pq.ParquetWriter(tmp, schema)
                writer.write_table(table.cast(schema) if table.schema != schema else table)
                rows += table.num_rows
                if on_batch is not None:
                    on_batch(table.to_pandas())
            if writer is None:
                writer = pq.ParquetWriter(tmp, pa.schema([]))
        finally:
            if writer is not None:
                writer.close()
        tmp.replace(job.output)
        return rows
    finally:
        if owns:
            ray.shutdown()


def _actors(ray: Any, cpus: float) -> int:
    total = float(ray.cluster_resources().get("CPU", 1.0))
    return max(1, int(total // cpus) - 1)


def bundle_files(folder: Path) -> dict[str, bytes]:
    """Every file of a bundle folder, by relative path (a bundle is a few megabytes)."""
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def prediction_of(scored: pd.DataFrame, manifest: Manifest) -> Prediction:
    """The :class:`Prediction` a scored batch holds (for the prediction log)."""
    proba = None
    if manifest.task != "regression":
        cols = [f"proba_{c}" for c in manifest.classes or []]
        proba = scored[cols].to_numpy(dtype=np.float64)
    return Prediction(values=scored["prediction"].tolist(), proba=proba)


class BatchLogger:
    """Appends each scored batch to the prediction log with the time since the last one."""

    def __init__(
        self, workspace: Path, manifest: Manifest, version: int, key_column: str | None
    ) -> None:
        self.workspace, self.manifest, self.version = workspace, manifest, version
        self.key_column = key_column
        self._last = time.perf_counter()

    def __call__(self, scored: pd.DataFrame) -> None:
        from tabpipe.serving.batch import feature_columns
        from tabpipe.serving.predlog import log_batch

        now = time.perf_counter()
        columns: dict[str, Any] = feature_columns(scored, self.manifest.signature.names)
        if self.key_column is not None and self.key_column in scored:
            columns[self.key_column] = scored[self.key_column].tolist()
        log_batch(
            self.workspace,
            self.manifest,
            self.version,
            columns,
            prediction_of(scored, self.manifest),
            (now - self._last) * 1000,
            key_column=self.key_column,
        )
        self._last = now
