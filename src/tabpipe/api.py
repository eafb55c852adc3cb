"""The library's front door: run a pipeline, score a file, find a report."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from sqlalchemy import desc, select

from tabpipe import metadata as md
from tabpipe.artifacts import HTML, json_codec
from tabpipe.config import PipelineSpec
from tabpipe.engine import EngineSpec
from tabpipe.errors import NotFoundError
from tabpipe.modeling.select import Leaderboard
from tabpipe.packaging.bundle import Manifest, read_manifest
from tabpipe.pipeline import Runner
from tabpipe.registry import CHAMPION, ModelVersion, Registry
from tabpipe.serving.batch import BATCH_ROWS, ScoredBatch, score_frame
from tabpipe.serving.batch import score_file as run_scoring
from tabpipe.serving.runtime import Runtime, load_predictor
from tabpipe.stages import TRAINING_STAGES
from tabpipe.workspace import Workspace


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    name: str
    version: ModelVersion
    leaderboard: Leaderboard
    report: Path
    resumed: bool
    cached_stages: list[str]


def run(
    spec: PipelineSpec,
    workspace: Workspace,
    *,
    show_progress: bool = True,
    console: Console | None = None,
    promote: bool = True,
) -> RunSummary:
    """Run the whole pipeline for ``spec``; register the bundle and make it champion.

    With ``promote=False`` the new version is registered but the champion alias
    stays where it is (retraining promotes only a challenger that wins).
    """
    runner = Runner(workspace, TRAINING_STAGES, console=console, show_progress=show_progress)
    run_id, resumed = runner.start_run(spec)
    try:
        started = time.perf_counter()
        snapshot, frame = workspace.ingest(spec.source)
        runner.record(
            run_id,
            "ingest",
            inputs={"source": spec.source.describe()},
            outputs={"snapshot": snapshot.id},
            duration=time.perf_counter() - started,
            cached=False,
        )
        result = runner.run(
            spec,
            seed_ids={"snapshot": snapshot.id},
            seed_objects={"snapshot": frame},
            run_id=run_id,
            resumed=resumed,
        )
        manifest: Manifest = read_manifest(workspace.bundle_path(result.ids["bundle"]))
        registry = Registry(workspace)
        version = registry.register(
            spec.model_name,
            task=manifest.task,
            target=manifest.target,
            bundle_id=result.ids["bundle"],
            run_id=manifest.lineage.run_id,
            metrics={
                "metric": manifest.metric,
                "validation": manifest.validation_score,
                "test": manifest.test_metrics,
                "family": manifest.family,
            },
        )
        if promote:
            _promote_if_new(registry, version, run_id)
        runner.record(
            run_id,
            "register",
            inputs={"bundle": result.ids["bundle"]},
            outputs={"version": version.version},
            duration=0.0,
            cached=False,
        )
        board = workspace.artifacts.get(json_codec(Leaderboard), result.ids["leaderboard"])
        outputs = {**result.ids, "version": version.version}
        runner.finish(run_id, "done", outputs=outputs)
    except KeyboardInterrupt:
        runner.finish(run_id, "interrupted", error="interrupted by the user")
        raise
    except Exception as exc:
        runner.finish(run_id, "failed", error=f"{type(exc).__name__}: {exc}")
        raise
    report = workspace.artifacts.path(HTML.kind, result.ids["report"]) / "content.html"
    return RunSummary(
        run_id=run_id,
        name=spec.model_name,
        version=version,
        leaderboard=board,
        report=report,
        resumed=resumed,
        cached_stages=result.cached,
    )


def _promote_if_new(registry: Registry, version: ModelVersion, run_id: str) -> None:
    try:
        current = registry.resolve(version.name, CHAMPION).version
    except NotFoundError:
        current = None
    if current != version.version:
        registry.promote(
            version.name, version.version, actor="tabpipe run", reason=f"trained by run {run_id}"
        )


def score(frame: pd.DataFrame, bundle: Path, runtime: Runtime = "onnx") -> pd.DataFrame:
    """Input columns, then ``prediction``, then ``proba_<class>`` per class for classifiers."""
    return score_frame(load_predictor(bundle, runtime), frame).frame


def score_file(
    workspace: Workspace,
    name: str,
    source: Path,
    output: Path,
    *,
    alias: str = CHAMPION,
    runtime: Runtime = "onnx",
    key_column: str | None = None,
    batch_rows: int = BATCH_ROWS,
) -> int:
    """Batch scoring of a CSV or Parquet file of any size; returns the row count.

    The file is read, checked, scored and written ``batch_rows`` rows at a time, so
    memory stays bounded; the output (Parquet or CSV, by its suffix) is written under
    a temporary name and renamed when complete. Every batch goes to the prediction
    log too (source ``batch``), with ``key_column`` as the user key that late labels
    can refer to.
    """
    return _score(workspace, name, source, output, alias, runtime, key_column, batch_rows)


def predict_file(
    workspace: Workspace,
    name: str,
    source: Path,
    output: Path,
    *,
    alias: str = CHAMPION,
    runtime: Runtime = "onnx",
    key_column: str | None = None,
) -> pd.DataFrame:
    """:func:`score_file`, returning the scored rows too (for files that fit in memory)."""
    frames: list[pd.DataFrame] = []
    _score(workspace, name, source, output, alias, runtime, key_column, BATCH_ROWS, frames)
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def _score(
    workspace: Workspace,
    name: str,
    source: Path,
    output: Path,
    alias: str,
    runtime: Runtime,
    key_column: str | None,
    batch_rows: int,
    frames: list[pd.DataFrame] | None = None,
) -> int:
    """Score ``source`` into ``output`` batch by batch, logging each batch (and keeping
    its rows in ``frames`` when given)."""
    version = Registry(workspace).resolve(name, alias)
    predictor = load_predictor(version.path, runtime)
    logger = _BatchLog(workspace.root, predictor.manifest, version.version, key_column)

    def on_batch(batch: ScoredBatch) -> None:
        logger(batch)
        if frames is not None:
            frames.append(batch.frame)

    rows = run_scoring(predictor, source, output, on_batch=on_batch, batch_rows=batch_rows)
    workspace.sync_log(name)  # an object-store workspace shares the logged rows
    return rows


@dataclass(frozen=True)
class _BatchLog:
    """Writes each scored batch to the prediction log (its feeds are already checked)."""

    workspace: Path
    manifest: Manifest
    version: int
    key_column: str | None

    def __call__(self, batch: ScoredBatch) -> None:
        from tabpipe.serving.predlog import log_batch

        key = self.key_column
        keys = {key: batch.frame[key].tolist()} if key and key in batch.frame else {}
        log_batch(
            self.workspace,
            self.manifest,
            self.version,
            keys,
            batch.prediction,
            batch.elapsed_ms,
            key_column=key,
            feeds=batch.checked.feeds,
        )


def predict_file_on_ray(
    workspace: Workspace,
    name: str,
    sources: list[str],
    output: Path,
    engine: EngineSpec,
    *,
    alias: str = CHAMPION,
    runtime: Runtime = "onnx",
    key_column: str | None = None,
) -> int:
    """Batch scoring of large Parquet files on a Ray cluster with Ray Data; returns the rows.

    The output (Parquet) holds the same rows and columns as :func:`predict_file`
    writes; every batch goes to the prediction log too.
    """
    from tabpipe.engine.scoring import BatchLogger, ScoringJob, score_parquet

    version = Registry(workspace).resolve(name, alias)
    manifest = read_manifest(version.path)
    job = ScoringJob(inputs=sources, bundle=version.path, output=output, runtime=runtime)
    logger = BatchLogger(workspace.root, manifest, version.version, key_column)
    return score_parquet(job, engine, on_batch=logger)


def report_path(workspace: Workspace, name: str) -> Path:
    """The run report of the run that produced the champion (else the latest done run)."""
    registry = Registry(workspace)
    version = registry.resolve(name, CHAMPION)
    row = workspace.meta.one(select(md.runs).where(md.runs.c.id == version.run_id))
    if row is None or not row.get("outputs"):
        row = workspace.meta.one(
            select(md.runs)
            .where(md.runs.c.model_name == name, md.runs.c.status == "done")
            .order_by(desc(md.runs.c.finished_at))
            .limit(1)
        )
    if row is None or not row.get("outputs"):
        raise NotFoundError(f"model {name!r} has no finished run with a report")
    outputs: dict[str, Any] = row["outputs"]
    return workspace.artifacts.fetch(HTML.kind, outputs["report"]) / "content.html"


def leaderboard(workspace: Workspace, name: str) -> Leaderboard:
    """The leaderboard of the run that produced the champion (else the latest done run)."""
    registry = Registry(workspace)
    try:
        run_id: str | None = registry.resolve(name, CHAMPION).run_id
    except NotFoundError:
        run_id = None
    row = None
    if run_id is not None:
        row = workspace.meta.one(select(md.runs).where(md.runs.c.id == run_id))
    if row is None or not row.get("outputs"):
        row = workspace.meta.one(
            select(md.runs)
            .where(md.runs.c.model_name == name, md.runs.c.status == "done")
            .order_by(desc(md.runs.c.finished_at))
            .limit(1)
        )
    if row is None or not row.get("outputs") or "leaderboard" not in row["outputs"]:
        raise NotFoundError(
            f"model {name!r} has no finished run with a leaderboard; train it with `tabpipe run`"
        )
    board: Leaderboard = workspace.artifacts.get(
        json_codec(Leaderboard), row["outputs"]["leaderboard"]
    )
    return board
