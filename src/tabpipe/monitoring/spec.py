"""The ``monitoring:`` and ``retraining:`` sections of the pipeline spec.

Example::

    monitoring:
      window: {rows: 200}          # or {every: "1d"}
      time_column: dteday          # windows on the data's own time (default: logging time)
      min_rows: 100                # a smaller window says so instead of alarming
      alpha: 0.05                  # false discovery rate (Benjamini-Hochberg)
      effect: {numeric: 0.1, categorical: 0.1, missing: 0.05, prediction: 0.1}
      performance_drop: 0.1        # relative loss against the bundle's test score
      webhook: null                # a URL that receives each alert as JSON
      policies:
        - {when: drift, then: alert}
        - {when: performance, then: retrain}
        - {when: labels, min_labels: 500, then: retrain}
        - {when: schedule, every: "30d", then: retrain}
        - {when: data_quality, max_share: 0.05, then: alert}
    retraining:
      window: growing              # or sliding (keep the newest max_rows rows)
      max_rows: 100000
      holdout_rows: 200            # most recent labelled rows both models are judged on
      margin: 0.01                 # the challenger must win by this relative margin
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """``"30s"``, ``"15m"``, ``"6h"``, ``"1d"``, ``"2w"`` to a timedelta."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"duration {text!r} must look like 30s, 15m, 6h, 1d or 2w")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WindowSpec(_Spec):
    """Consecutive windows of the log: a fixed number of rows, or a time span."""

    rows: int | None = Field(None, ge=1)
    every: str | None = None

    @field_validator("every")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> WindowSpec:
        if (self.rows is None) == (self.every is None):
            raise ValueError("a window is either {rows: N} or {every: DURATION}, not both")
        return self


class EffectSpec(_Spec):
    """Effect-size thresholds: an alarm needs the effect above these AND significance."""

    numeric: float = Field(0.1, gt=0, description="Wasserstein distance / reference std.")
    categorical: float = Field(0.1, gt=0, description="Jensen-Shannon distance (base 2).")
    missing: float = Field(0.05, gt=0, description="Absolute change in the missing share.")
    prediction: float = Field(0.1, gt=0, description="As numeric/categorical, on predictions.")
    psi: float = Field(0.2, gt=0, description="PSI above this is shown as large (not decisive).")


Trigger = Literal[
    "drift", "performance", "estimated_performance", "schedule", "labels", "data_quality"
]
Action = Literal["alert", "retrain"]
QualityFlag = Literal["unseen", "range", "missing"]


class PolicySpec(_Spec):
    when: Trigger
    then: Action = "alert"
    min_labels: int = Field(500, ge=1, description="For 'labels': new labelled rows needed.")
    every: str | None = Field(None, description="For 'schedule': how often, e.g. 7d.")
    max_share: float = Field(
        0.05, gt=0, lt=1, description="For 'data_quality': the share of flagged rows allowed."
    )
    flags: tuple[QualityFlag, ...] = Field(
        ("unseen", "range", "missing"),
        min_length=1,
        description="For 'data_quality': which serving flags count.",
    )

    @model_validator(mode="after")
    def _schedule_needs_every(self) -> PolicySpec:
        if self.when == "schedule":
            if self.every is None:
                raise ValueError("a 'schedule' policy needs 'every', e.g. every: 7d")
            parse_duration(self.every)
        return self


class MonitoringSpec(_Spec):
    window: WindowSpec = WindowSpec(rows=500)
    time_column: str | None = Field(
        None,
        min_length=1,
        description="Cut windows on this column's time (a feature, or the logged user key) "
        "instead of the time a prediction was logged; ISO 8601 text or Unix seconds.",
    )
    min_rows: int = Field(100, ge=10)
    min_labels: int = Field(30, ge=5, description="Labelled rows a window needs for a metric.")
    alpha: float = Field(0.05, gt=0, lt=1)
    effect: EffectSpec = EffectSpec()
    performance_drop: float = Field(0.1, gt=0, description="Relative loss that alarms.")
    bootstrap: int = Field(200, ge=20, le=5000, description="Resamples for intervals.")
    webhook: str | None = None
    policies: tuple[PolicySpec, ...] = (
        PolicySpec(when="drift", then="alert"),
        PolicySpec(when="performance", then="alert"),
        PolicySpec(when="estimated_performance", then="alert"),
    )


class RetrainingSpec(_Spec):
    window: Literal["growing", "sliding"] = "growing"
    max_rows: int = Field(100_000, ge=10, description="For 'sliding': rows kept, newest first.")
    holdout_rows: int = Field(200, ge=10)
    margin: float = Field(0.01, ge=0, description="Relative improvement the challenger needs.")
    time_budget: float | None = Field(None, gt=0, description="Default: the spec's budget.")


__all__ = [
    "EffectSpec",
    "MonitoringSpec",
    "PolicySpec",
    "QualityFlag",
    "RetrainingSpec",
    "WindowSpec",
    "parse_duration",
]
