"""Alerts: stored in the metadata store, logged, and optionally posted to a webhook.

A webhook that fails never stops monitoring: the failure is recorded in the
alert's ``delivered`` column and logged.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
from pydantic import BaseModel
from sqlalchemy import insert, select

from tabpipe import metadata as md
from tabpipe.workspace import Workspace

log = logging.getLogger("tabpipe.alerts")


class Alert(BaseModel):
    name: str
    version: int | None
    kind: str
    window: str | None
    message: str
    details: dict[str, Any]
    action: str = "alert"


def raise_alert(ws: Workspace, alert: Alert, webhook: str | None = None) -> str | None:
    """Store, log and (optionally) post one alert; returns the delivery status.

    The same alert (model, version, kind, window) raised again by a later
    monitoring run of the same data is not stored or posted twice
    (returns ``"duplicate"``).
    """
    a = md.alerts
    seen = ws.meta.one(
        select(a.c.id).where(
            a.c.name == alert.name,
            a.c.version == alert.version,
            a.c.kind == alert.kind,
            a.c.window_label == alert.window,
        )
    )
    if seen is not None:
        return "duplicate"
    delivered = None
    if webhook:
        delivered = _post(webhook, alert)
    log.warning("tabpipe alert [%s] %s: %s", alert.kind, alert.name, alert.message)
    with ws.meta.begin() as conn:
        conn.execute(
            insert(md.alerts).values(
                name=alert.name,
                version=alert.version,
                kind=alert.kind,
                window_label=alert.window,
                message=alert.message,
                details=alert.details,
                action=alert.action,
                delivered=delivered,
                at=md.utcnow(),
            )
        )
    return delivered


def _post(url: str, alert: Alert) -> str:
    try:
        response = httpx.post(url, json=alert.model_dump(mode="json"), timeout=5.0)
        return f"HTTP {response.status_code}"
    except httpx.HTTPError as exc:
        log.error("webhook %s failed for alert %s: %s", url, alert.kind, exc)
        return f"failed: {type(exc).__name__}: {exc}"[:200]


def list_alerts(ws: Workspace, name: str, limit: int = 100) -> list[dict[str, Any]]:
    a = md.alerts
    rows = ws.meta.all(select(a).where(a.c.name == name).order_by(a.c.id.desc()).limit(limit))
    return list(reversed(rows))


__all__ = ["Alert", "list_alerts", "raise_alert"]
