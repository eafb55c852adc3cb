"""Champion/challenger retraining.

1. Labelled rows come from the prediction log joined with the feedback.
2. The most recent ``holdout_rows`` of them are set aside: both models are
   judged on exactly these rows, and the challenger never trains on them.
3. The training set is the champion's reference snapshot plus the labelled
   rows the champion has not been trained on yet (growing), or the newest
   ``max_rows`` of that union (sliding).
4. The pipeline runs with the champion's spec (same stages, same search), the
   new version is registered as ``challenger`` without touching the champion.
5. The challenger is promoted only if it beats the champion by ``margin``
   (relative) on the holdout; otherwise the champion stays and the reason is
   recorded. Either way a ``retrain_events`` row says what happened and why.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel
from rich.console import Console
from sqlalchemy import insert, select

from tabpipe import metadata as md
from tabpipe.config import PipelineSpec, SourceSpec
from tabpipe.errors import MonitoringError
from tabpipe.modeling import metrics as mx
from tabpipe.monitoring import performance as perf
from tabpipe.monitoring.logstore import read_log
from tabpipe.monitoring.monitor import champion_spec
from tabpipe.packaging.bundle import Manifest, read_manifest
from tabpipe.registry import CHAMPION, ModelVersion, Registry
from tabpipe.serving.predlog import INPUT_PREFIX
from tabpipe.workspace import Workspace

CHALLENGER = "challenger"


class RetrainDecision(BaseModel):
    name: str
    champion: int
    challenger: int | None
    promoted: bool
    reason: str
    trigger: str
    metric: str
    champion_score: perf.Estimate | None = None
    challenger_score: perf.Estimate | None = None
    improvement: float | None = None
    holdout_rows: int = 0
    training_rows: int = 0
    new_rows: int = 0
    trained_until: datetime | None = None


def labelled_rows(ws: Workspace, name: str) -> pd.DataFrame:
    """Every logged row with a label, oldest first, one row per prediction."""
    ws.sync_log(name)  # an object-store workspace: every machine's parts
    frame = read_log(ws.root, name).frame
    if frame.empty:
        return frame
    frame = frame[(frame["status"] == "ok") & frame["label"].notna()]
    return frame.drop_duplicates(["request_id", "row"]).sort_values("ts").reset_index(drop=True)


def trained_until(ws: Workspace, name: str, version: int) -> datetime | None:
    """The time of the newest labelled row that ``version`` was trained on."""
    r = md.retrain_events
    row = ws.meta.one(
        select(r)
        .where(r.c.name == name, r.c.challenger == version)
        .order_by(r.c.id.desc())
        .limit(1)
    )
    if row is None or not row["details"].get("trained_until"):
        return None
    return pd.Timestamp(row["details"]["trained_until"]).to_pydatetime()


def as_source_rows(rows: pd.DataFrame, columns: pd.Index, target: str, dtypes: Any) -> pd.DataFrame:
    """Logged rows back in the snapshot's columns and types (label as the target)."""
    out = pd.DataFrame(index=rows.index)
    for col in columns:
        if col == target:
            values = rows["label"]
        elif INPUT_PREFIX + col in rows:
            values = rows[INPUT_PREFIX + col]
        else:
            out[col] = pd.Series([None] * len(rows), index=rows.index, dtype=object)
            continue
        if pd.api.types.is_numeric_dtype(dtypes[col]):
            out[col] = pd.to_numeric(values, errors="coerce")
        else:
            out[col] = values.astype(object).where(values.notna(), None)
    return out


def build_training_set(
    snapshot: pd.DataFrame, new_rows: pd.DataFrame, target: str, window: str, max_rows: int
) -> pd.DataFrame:
    new = as_source_rows(new_rows, snapshot.columns, target, snapshot.dtypes)
    combined = pd.concat([snapshot, new], ignore_index=True)
    if window == "sliding" and len(combined) > max_rows:
        combined = combined.iloc[-max_rows:]
    return combined.reset_index(drop=True)


def _score(
    version: ModelVersion, manifest: Manifest, holdout: pd.DataFrame, resamples: int
) -> perf.Estimate:
    from tabpipe.api import score

    frame = pd.DataFrame(
        {
            c: holdout[INPUT_PREFIX + c]
            for c in manifest.signature.names
            if INPUT_PREFIX + c in holdout
        }
    )
    missing = [c for c in manifest.signature.names if c not in frame]
    if missing:
        raise MonitoringError(
            f"version {version.version} needs column(s) {', '.join(missing)} that the logged "
            "rows do not hold; it cannot be judged on the same window"
        )
    scored = score(frame, version.path)
    y: np.ndarray
    output: np.ndarray
    if manifest.task == "regression":
        y = holdout["label"].astype(float).to_numpy()
        output = scored["prediction"].to_numpy(float)
    else:
        index = {str(c): i for i, c in enumerate(manifest.classes or [])}
        y = holdout["label"].map(index).to_numpy()
        output = scored[[f"proba_{c}" for c in manifest.classes or []]].to_numpy(float)
        if np.isnan(y.astype(float)).any():
            raise MonitoringError("a holdout label is not a class of the champion")
    return perf.measured(manifest.metric, y, output, resamples=resamples)


def retrain(
    ws: Workspace,
    name: str,
    *,
    trigger: str = "manual",
    actor: str = "tabpipe retrain",
    spec: PipelineSpec | None = None,
    show_progress: bool = False,
    console: Console | None = None,
) -> RetrainDecision:
    """Train a challenger on reference + new labels; promote it only if it wins."""
    from tabpipe import api

    registry = Registry(ws)
    champion = registry.resolve(name, CHAMPION)
    manifest = read_manifest(champion.path)
    spec = spec or champion_spec(ws, champion)
    policy = spec.retraining
    rows = labelled_rows(ws, name)
    needed = policy.holdout_rows + spec.monitoring.min_labels
    if len(rows) < needed:
        raise MonitoringError(
            f"model {name!r} has {len(rows)} labelled predictions; retraining needs at least "
            f"{needed} ({policy.holdout_rows} holdout_rows to judge on + "
            f"{spec.monitoring.min_labels} min_labels to learn from). Post labels with "
            "`tabpipe feedback FILE` or POST /feedback"
        )
    holdout = rows.iloc[-policy.holdout_rows :]
    learn = rows.iloc[: -policy.holdout_rows]
    cutoff = trained_until(ws, name, champion.version)
    if cutoff is not None:
        learn = learn[learn["ts"] > pd.Timestamp(cutoff)]
    snapshot = ws.snapshot(manifest.lineage.snapshot_id)
    training = build_training_set(snapshot, learn, manifest.target, policy.window, policy.max_rows)
    until = learn["ts"].max().to_pydatetime() if len(learn) else cutoff
    source = _write_training_set(ws, name, training)
    new_spec = spec.model_copy(
        update={
            "name": spec.model_name,
            "source": SourceSpec(path=str(source), format="parquet"),
            "time_budget": policy.time_budget or spec.time_budget,
        }
    )
    summary = api.run(new_spec, ws, show_progress=show_progress, console=console, promote=False)
    challenger = summary.version
    decision = RetrainDecision(
        name=name,
        champion=champion.version,
        challenger=challenger.version,
        promoted=False,
        reason="",
        trigger=trigger,
        metric=manifest.metric,
        holdout_rows=len(holdout),
        training_rows=len(training),
        new_rows=len(learn),
        trained_until=until,
    )
    if challenger.version == champion.version:
        decision.reason = "the pipeline produced the champion's own bundle again (same data)"
        return _record(ws, decision)
    registry.set_alias(
        name, CHALLENGER, challenger.version, actor=actor, reason=f"retrained ({trigger})"
    )
    resamples = spec.monitoring.bootstrap
    decision.champion_score = _score(champion, manifest, holdout, resamples)
    decision.challenger_score = _score(
        challenger, read_manifest(challenger.path), holdout, resamples
    )
    improvement = -perf.relative_drop(
        manifest.metric, decision.champion_score.value, decision.challenger_score.value
    )
    decision.improvement = improvement
    champ, chall = decision.champion_score.value, decision.challenger_score.value
    versus = (
        f"{manifest.metric} on the newest {len(holdout)} labelled rows: challenger "
        f"v{challenger.version} {chall:.4g} vs champion v{champion.version} {champ:.4g} "
        f"({improvement:+.1%}; margin {policy.margin:.1%})"
    )
    if improvement >= policy.margin and mx.better(manifest.metric, chall, champ):
        registry.promote(name, challenger.version, actor=actor, reason=f"won: {versus}")
        decision.promoted = True
        decision.reason = f"promoted: {versus}"
    else:
        decision.reason = f"kept the champion: {versus}"
    return _record(ws, decision)


def _write_training_set(ws: Workspace, name: str, frame: pd.DataFrame) -> Path:
    folder = ws.root / "retraining" / name
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    final = folder / f"train-{stamp}.parquet"
    tmp = folder / f".{final.name}.tmp"
    frame.to_parquet(tmp, index=False)
    tmp.replace(final)
    return final


def _record(ws: Workspace, decision: RetrainDecision) -> RetrainDecision:
    details = decision.model_dump(mode="json")
    with ws.meta.begin() as conn:
        conn.execute(
            insert(md.retrain_events).values(
                name=decision.name,
                champion=decision.champion,
                challenger=decision.challenger,
                promoted=int(decision.promoted),
                reason=decision.reason,
                trigger=decision.trigger,
                details=details,
                at=md.utcnow(),
            )
        )
    return decision


def retrain_history(ws: Workspace, name: str) -> list[dict[str, Any]]:
    r = md.retrain_events
    return ws.meta.all(select(r).where(r.c.name == name).order_by(r.c.id))


__all__ = [
    "CHALLENGER",
    "RetrainDecision",
    "build_training_set",
    "labelled_rows",
    "retrain",
    "retrain_history",
]
