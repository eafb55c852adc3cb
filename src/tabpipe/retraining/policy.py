"""Policies: which findings alert, which retrain, and the loop that runs them on a schedule.

Each policy of ``monitoring.policies`` names a trigger and an action:

- ``drift``, ``performance``, ``estimated_performance``: a finding of that kind
  in the latest monitoring result;
- ``data_quality``: in the decision window, the share of rows flagged by the
  server (unseen categories, out-of-range values, missing values) above
  ``max_share`` for one of the policy's ``flags``;
- ``labels``: at least ``min_labels`` labelled rows the champion was not trained on;
- ``schedule``: the champion is older than ``every``.

Every triggered policy writes an alert (stored, logged, posted to the webhook);
a triggered ``retrain`` policy then runs one champion/challenger retraining.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pandas as pd
from pydantic import BaseModel, Field
from sqlalchemy import select

from tabpipe import metadata as md
from tabpipe.config import PipelineSpec
from tabpipe.errors import TabpipeError
from tabpipe.monitoring.alerts import Alert, raise_alert
from tabpipe.monitoring.monitor import (
    Finding,
    MonitorResult,
    champion_spec,
    monitor,
    quality_finding,
)
from tabpipe.monitoring.spec import PolicySpec, parse_duration
from tabpipe.registry import CHAMPION, Registry
from tabpipe.retraining.retrain import RetrainDecision, labelled_rows, retrain, trained_until
from tabpipe.workspace import Workspace

log = logging.getLogger("tabpipe.retraining")


class Triggered(BaseModel):
    policy: PolicySpec
    finding: Finding


class PolicyOutcome(BaseModel):
    result: MonitorResult
    triggered: list[Triggered] = Field(default_factory=list)
    decision: RetrainDecision | None = None
    error: str | None = None


def _champion_since(ws: Workspace, name: str, version: int) -> datetime:
    e = md.alias_events
    row = ws.meta.one(
        select(e.c.at)
        .where(e.c.name == name, e.c.alias == CHAMPION, e.c.version == version)
        .order_by(e.c.id.desc())
        .limit(1)
    )
    at = row["at"] if row else datetime.now(UTC)
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def evaluate(
    ws: Workspace, name: str, result: MonitorResult, spec: PipelineSpec
) -> list[Triggered]:
    """The policies that fire for this monitoring result."""
    out: list[Triggered] = []
    for policy in spec.monitoring.policies:
        if policy.when in {"drift", "performance", "estimated_performance"}:
            out.extend(
                Triggered(policy=policy, finding=f)
                for f in result.findings
                if f.kind == policy.when
            )
        elif policy.when == "data_quality":
            finding = quality_finding(result, policy)
            if finding is not None:
                out.append(Triggered(policy=policy, finding=finding))
        elif policy.when == "labels":
            rows = labelled_rows(ws, name)
            cutoff = trained_until(ws, name, result.version)
            if cutoff is not None and not rows.empty:
                rows = rows[rows["ts"] > pd.Timestamp(cutoff)]
            if len(rows) >= policy.min_labels:
                finding = Finding(
                    kind="labels",
                    window="all",
                    message=f"{len(rows)} new labelled rows (policy: {policy.min_labels})",
                    details={"new_labels": len(rows)},
                )
                out.append(Triggered(policy=policy, finding=finding))
        elif policy.when == "schedule":
            since = _champion_since(ws, name, result.version)
            age = datetime.now(UTC) - since
            if age >= parse_duration(policy.every or "1d"):
                finding = Finding(
                    kind="schedule",
                    window="all",
                    message=f"champion v{result.version} has served since {since:%Y-%m-%d %H:%M}"
                    f" (policy: retrain every {policy.every})",
                    details={"age_seconds": age.total_seconds()},
                )
                out.append(Triggered(policy=policy, finding=finding))
    return out


def alert_on(
    ws: Workspace, name: str, result: MonitorResult, spec: PipelineSpec
) -> list[Triggered]:
    """Evaluate the spec's policies on a monitoring result and raise an alert for each hit."""
    triggered = evaluate(ws, name, result, spec)
    for t in triggered:
        raise_alert(
            ws,
            Alert(
                name=name,
                version=result.version,
                kind=t.finding.kind,
                window=t.finding.window,
                message=t.finding.message,
                details=t.finding.details,
                action=t.policy.then,
            ),
            spec.monitoring.webhook,
        )
    return triggered


def run_policies(
    ws: Workspace, name: str, *, spec: PipelineSpec | None = None, actor: str = "tabpipe watch"
) -> PolicyOutcome:
    """Monitor once, alert on every triggered policy, retrain once if one asks for it."""
    champion = Registry(ws).resolve(name, CHAMPION)
    spec = spec or champion_spec(ws, champion)
    result = monitor(ws, name, spec=spec.monitoring)
    triggered = alert_on(ws, name, result, spec)
    outcome = PolicyOutcome(result=result, triggered=triggered)
    wants = [t for t in triggered if t.policy.then == "retrain"]
    if wants:
        reason = "; ".join(sorted({t.finding.kind for t in wants}))
        try:
            outcome.decision = retrain(ws, name, trigger=reason, actor=actor, spec=spec)
        except TabpipeError as exc:  # a failed retraining is reported; the watch goes on
            outcome.error = str(exc)
            log.warning("retraining %s was due (%s) but could not run: %s", name, reason, exc)
    return outcome


def watch(
    ws: Workspace,
    name: str,
    *,
    every: float,
    iterations: int | None = None,
    on_outcome: Callable[[PolicyOutcome], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Run the policies every ``every`` seconds (``iterations`` times, or until stopped)."""
    done = 0
    while iterations is None or done < iterations:
        outcome = run_policies(ws, name)
        if on_outcome is not None:
            on_outcome(outcome)
        done += 1
        if iterations is None or done < iterations:
            sleep(every)
    return done


__all__ = ["PolicyOutcome", "Triggered", "evaluate", "run_policies", "watch"]
