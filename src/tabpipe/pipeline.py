"""The runner: executes stages in order, caches them by input ids, resumes interrupted runs.

A stage is a plain function of objects; the runner loads its inputs from the
workspace, calls it, and stores its outputs under ids derived from the stage's
cache key (stage name, version, parameters and input ids). A stage whose key
already has complete outputs is skipped, which is also how an interrupted run
resumes.
"""

from __future__ import annotations

import hashlib
import json
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from sqlalchemy import desc, insert, select, update

from tabpipe import metadata as md
from tabpipe.artifacts import Codec
from tabpipe.config import PipelineSpec
from tabpipe.workspace import Workspace


def _no_params(_: PipelineSpec) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class Stage:
    """A pure function plus the names of what it reads and writes."""

    name: str
    fn: Callable[..., tuple[Any, ...]]
    inputs: tuple[str, ...]
    outputs: tuple[tuple[str, Codec[Any]], ...]
    params: Callable[[PipelineSpec], dict[str, Any]] = _no_params
    context: tuple[str, ...] = ()
    version: int = 1


@dataclass
class RunResult:
    run_id: str
    resumed: bool
    ids: dict[str, str]
    objects: dict[str, Any] = field(default_factory=dict)
    cached: list[str] = field(default_factory=list)


def cache_key(stage: Stage, params: dict[str, Any], input_ids: dict[str, str]) -> str:
    payload = json.dumps(
        {"stage": stage.name, "version": stage.version, "params": params, "inputs": input_ids},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


class Runner:
    """Runs a list of stages for a spec in a workspace."""

    def __init__(
        self,
        workspace: Workspace,
        stages: list[Stage],
        *,
        console: Console | None = None,
        show_progress: bool = True,
    ) -> None:
        self.ws = workspace
        self.stages = stages
        self.console = console or Console(stderr=True)
        self.show_progress = show_progress

    def start_run(self, spec: PipelineSpec) -> tuple[str, bool]:
        """Resume the latest unfinished run of this exact spec, or start a new one."""
        fingerprint = spec.fingerprint()
        r = md.runs
        previous = self.ws.meta.one(
            select(r).where(r.c.spec_hash == fingerprint).order_by(desc(r.c.started_at)).limit(1)
        )
        if previous is not None and previous["status"] in {"running", "interrupted", "failed"}:
            with self.ws.meta.begin() as conn:
                conn.execute(
                    update(r).where(r.c.id == previous["id"]).values(status="running", error=None)
                )
            return str(previous["id"]), True
        run_id = uuid.uuid4().hex[:16]
        with self.ws.meta.begin() as conn:
            conn.execute(
                insert(r).values(
                    id=run_id,
                    model_name=spec.model_name,
                    spec=spec.model_dump(mode="json"),
                    spec_hash=fingerprint,
                    status="running",
                    started_at=md.utcnow(),
                )
            )
        return run_id, False

    def run(
        self,
        spec: PipelineSpec,
        *,
        seed_ids: dict[str, str],
        seed_objects: dict[str, Any],
        run_id: str,
        resumed: bool,
    ) -> RunResult:
        """Execute every stage after the given seed artifacts (e.g. the snapshot)."""
        result = RunResult(
            run_id=run_id, resumed=resumed, ids=dict(seed_ids), objects=dict(seed_objects)
        )
        context = {"run_id": run_id, "spec_hash": spec.fingerprint(), **seed_ids}
        with self._progress(len(self.stages)) as advance:
            for stage in self.stages:
                advance(stage.name, "running")
                cached = self._run_stage(stage, spec, result, context)
                if cached:
                    result.cached.append(stage.name)
                advance(stage.name, "cached" if cached else "done")
        return result

    def finish(
        self,
        run_id: str,
        status: str,
        *,
        error: str | None = None,
        outputs: dict[str, Any] | None = None,
    ) -> None:
        with self.ws.meta.begin() as conn:
            conn.execute(
                update(md.runs)
                .where(md.runs.c.id == run_id)
                .values(status=status, error=error, outputs=outputs, finished_at=md.utcnow())
            )

    def record(
        self,
        run_id: str,
        stage: str,
        *,
        inputs: dict[str, Any],
        outputs: dict[str, Any],
        duration: float,
        cached: bool,
        key: str = "",
    ) -> None:
        """Record a stage that ran outside the pure-stage loop (ingest, register)."""
        with self.ws.meta.begin() as conn:
            conn.execute(
                insert(md.stage_runs).values(
                    run_id=run_id,
                    stage=stage,
                    cache_key=key or stage,
                    status="done",
                    cached=int(cached),
                    inputs=inputs,
                    outputs=outputs,
                    started_at=md.utcnow(),
                    duration_s=duration,
                )
            )

    def _run_stage(
        self, stage: Stage, spec: PipelineSpec, result: RunResult, context: dict[str, str]
    ) -> bool:
        params = stage.params(spec)
        input_ids = {name: result.ids[name] for name in stage.inputs}
        key = cache_key(stage, params, input_ids)
        output_ids = {
            name: hashlib.sha256(f"{key}:{name}".encode()).hexdigest()[:32]
            for name, _ in stage.outputs
        }
        started = time.perf_counter()
        if all(
            self.ws.artifacts.exists(codec.kind, output_ids[name]) for name, codec in stage.outputs
        ):
            result.ids.update(output_ids)
            self.record(
                result.run_id,
                stage.name,
                inputs=input_ids,
                outputs=output_ids,
                duration=time.perf_counter() - started,
                cached=True,
                key=key,
            )
            return True
        kwargs = {name: self._load(name, result) for name in stage.inputs}
        kwargs.update({name: context[name] for name in stage.context})
        try:
            outputs = stage.fn(spec=spec, **kwargs)
        except Exception as exc:
            with self.ws.meta.begin() as conn:
                conn.execute(
                    insert(md.stage_runs).values(
                        run_id=result.run_id,
                        stage=stage.name,
                        cache_key=key,
                        status="failed",
                        cached=0,
                        inputs=input_ids,
                        outputs=None,
                        started_at=md.utcnow(),
                        duration_s=time.perf_counter() - started,
                        error="".join(traceback.format_exception_only(exc)).strip(),
                    )
                )
            raise
        for (name, codec), obj in zip(stage.outputs, outputs, strict=True):
            self.ws.artifacts.put(codec, output_ids[name], obj)
            result.objects[name] = obj
        result.ids.update(output_ids)
        self.record(
            result.run_id,
            stage.name,
            inputs=input_ids,
            outputs=output_ids,
            duration=time.perf_counter() - started,
            cached=False,
            key=key,
        )
        return False

    def _load(self, name: str, result: RunResult) -> Any:
        if name in result.objects:
            return result.objects[name]
        for stage in self.stages:
            for out, codec in stage.outputs:
                if out == name:
                    obj = self.ws.artifacts.get(codec, result.ids[name])
                    result.objects[name] = obj
                    return obj
        raise KeyError(f"no stage produces {name!r}")

    @contextmanager
    def _progress(self, total: int) -> Iterator[Callable[[str, str], None]]:
        if not self.show_progress:
            yield lambda _name, _state: None
            return
        progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
        )
        with progress:
            task = progress.add_task("pipeline", total=total)

            def advance(name: str, state: str) -> None:
                if state == "running":
                    progress.update(task, description=f"{name}: running")
                else:
                    progress.advance(task)
                    progress.update(task, description=f"{name}: {state}")

            yield advance
