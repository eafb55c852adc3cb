"""Read-only views of a workspace for the web app: typed rows, no HTML."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import desc, select

from tabpipe import metadata as md
from tabpipe.artifacts import HTML, TABLE, json_codec
from tabpipe.data.cleaning import CleaningReport
from tabpipe.errors import NotFoundError, StoreError
from tabpipe.modeling.select import Leaderboard
from tabpipe.modeling.train import TrainReport
from tabpipe.registry import Registry
from tabpipe.workspace import Workspace


@dataclass(frozen=True)
class StageRow:
    stage: str
    status: str
    cached: bool
    duration_s: float | None
    error: str | None
    started_at: datetime


@dataclass(frozen=True)
class RunView:
    id: str
    model_name: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    error: str | None
    outputs: dict[str, Any]
    spec: dict[str, Any]
    stages: list[StageRow] = field(default_factory=list)

    @property
    def duration_s(self) -> float | None:
        if self.finished_at is None:
            return None
        return (_aware(self.finished_at) - _aware(self.started_at)).total_seconds()


@dataclass(frozen=True)
class SnapshotView:
    id: str
    name: str
    rows: int
    columns: int
    created_at: datetime
    source: dict[str, Any]
    schema: dict[str, str]
    runs: list[str]
    versions: list[tuple[str, int]]


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=md.utcnow().tzinfo)


def runs(ws: Workspace, *, model: str | None = None, limit: int = 200) -> list[RunView]:
    query = select(md.runs).order_by(desc(md.runs.c.started_at)).limit(limit)
    if model is not None:
        query = query.where(md.runs.c.model_name == model)
    return [_run(r) for r in ws.meta.all(query)]


def run(ws: Workspace, run_id: str) -> RunView:
    row = ws.meta.one(select(md.runs).where(md.runs.c.id == run_id))
    if row is None:
        raise NotFoundError(f"no run with id {run_id!r}")
    stages = ws.meta.all(
        select(md.stage_runs).where(md.stage_runs.c.run_id == run_id).order_by(md.stage_runs.c.id)
    )
    view = _run(row)
    view.stages.extend(
        StageRow(
            stage=s["stage"],
            status=s["status"],
            cached=bool(s["cached"]),
            duration_s=s["duration_s"],
            error=s["error"],
            started_at=s["started_at"],
        )
        for s in stages
    )
    return view


def _run(row: dict[str, Any]) -> RunView:
    return RunView(
        id=row["id"],
        model_name=row["model_name"],
        status=row["status"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        error=row["error"],
        outputs=dict(row["outputs"] or {}),
        spec=dict(row["spec"] or {}),
    )


def artifact(ws: Workspace, view: RunView, name: str, model: type[Any]) -> Any | None:
    """A JSON artifact of a run, or None when the run did not get that far."""
    artifact_id = view.outputs.get(name) or _stage_output(ws, view.id, name)
    if artifact_id is None:
        return None
    try:
        return ws.artifacts.get(json_codec(model), artifact_id)
    except StoreError:
        return None


def _stage_output(ws: Workspace, run_id: str, name: str) -> str | None:
    rows = ws.meta.all(
        select(md.stage_runs.c.outputs).where(
            md.stage_runs.c.run_id == run_id, md.stage_runs.c.status == "done"
        )
    )
    for row in rows:
        outputs = row["outputs"] or {}
        if name in outputs:
            return str(outputs[name])
    return None


def leaderboard(ws: Workspace, view: RunView) -> Leaderboard | None:
    board: Leaderboard | None = artifact(ws, view, "leaderboard", Leaderboard)
    return board


def training(ws: Workspace, view: RunView) -> TrainReport | None:
    report: TrainReport | None = artifact(ws, view, "training", TrainReport)
    return report


def cleaning(ws: Workspace, view: RunView) -> CleaningReport | None:
    report: CleaningReport | None = artifact(ws, view, "cleaning", CleaningReport)
    return report


def html_artifact(ws: Workspace, view: RunView, name: str) -> Path | None:
    artifact_id = view.outputs.get(name) or _stage_output(ws, view.id, name)
    if artifact_id is None:
        return None
    if not ws.artifacts.exists(HTML.kind, artifact_id):
        return None
    return ws.artifacts.fetch(HTML.kind, artifact_id) / "content.html"


def snapshots(ws: Workspace) -> list[SnapshotView]:
    rows = ws.meta.all(select(md.snapshots).order_by(desc(md.snapshots.c.created_at)))
    readers = _readers(ws)
    return [_snapshot(ws, r, readers.get(r["id"], [])) for r in rows]


def snapshot(ws: Workspace, snapshot_id: str) -> SnapshotView:
    row = ws.meta.one(select(md.snapshots).where(md.snapshots.c.id == snapshot_id))
    if row is None:
        raise NotFoundError(f"no snapshot with id {snapshot_id!r}")
    return _snapshot(ws, row, _readers(ws).get(snapshot_id, []))


def snapshot_head(ws: Workspace, snapshot_id: str, rows: int = 20) -> pd.DataFrame:
    return ws.artifacts.get(TABLE, snapshot_id).head(rows)


def _readers(ws: Workspace) -> dict[str, list[str]]:
    """Snapshot id to the ids of the runs whose ingest produced it (one query)."""
    ingests = ws.meta.all(
        select(md.stage_runs.c.run_id, md.stage_runs.c.outputs).where(
            md.stage_runs.c.stage == "ingest"
        )
    )
    readers: dict[str, set[str]] = {}
    for r in ingests:
        snapshot_id = (r["outputs"] or {}).get("snapshot")
        if snapshot_id:
            readers.setdefault(str(snapshot_id), set()).add(str(r["run_id"]))
    return {k: sorted(v) for k, v in readers.items()}


def _snapshot(ws: Workspace, row: dict[str, Any], run_ids: list[str]) -> SnapshotView:
    versions = (
        [
            (v["name"], int(v["version"]))
            for v in ws.meta.all(
                select(md.model_versions).where(md.model_versions.c.run_id.in_(run_ids))
            )
        ]
        if run_ids
        else []
    )
    return SnapshotView(
        id=row["id"],
        name=row["name"],
        rows=row["rows"],
        columns=row["columns"],
        created_at=row["created_at"],
        source=dict(row["source"] or {}),
        schema=dict(row["schema"] or {}),
        runs=run_ids,
        versions=versions,
    )


@dataclass(frozen=True)
class VersionView:
    version: int
    created_at: datetime
    run_id: str
    bundle_id: str
    metrics: dict[str, Any]
    aliases: list[str]


def model(
    ws: Workspace, name: str
) -> tuple[dict[str, Any], list[VersionView], list[dict[str, Any]]]:
    registry = Registry(ws)
    info = next((m for m in registry.models() if m["name"] == name), None)
    if info is None:
        raise NotFoundError(f"no model named {name!r}")
    alias_rows = ws.meta.all(select(md.aliases).where(md.aliases.c.name == name))
    by_version: dict[int, list[str]] = {}
    for a in alias_rows:
        by_version.setdefault(int(a["version"]), []).append(a["alias"])
    created = {
        int(v["version"]): v["created_at"]
        for v in ws.meta.all(select(md.model_versions).where(md.model_versions.c.name == name))
    }
    versions = [
        VersionView(
            version=v.version,
            created_at=created[v.version],
            run_id=v.run_id,
            bundle_id=v.bundle_id,
            metrics=v.metrics,
            aliases=sorted(by_version.get(v.version, [])),
        )
        for v in registry.versions(name)
    ]
    return info, versions[::-1], registry.history(name)[::-1]


def monitoring(ws: Workspace, name: str) -> dict[str, Any]:
    """Whether predictions were logged, the alerts and the retraining decisions of a model."""
    from tabpipe.monitoring.alerts import list_alerts
    from tabpipe.monitoring.logstore import read_log

    ws.sync_log(name)
    logged = not read_log(ws.root, name).frame.empty
    events = ws.meta.all(
        select(md.retrain_events)
        .where(md.retrain_events.c.name == name)
        .order_by(desc(md.retrain_events.c.id))
    )
    return {"logged": logged, "alerts": list_alerts(ws, name)[::-1], "decisions": events}
