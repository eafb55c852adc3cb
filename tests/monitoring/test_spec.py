"""The monitoring and retraining sections of the spec: defaults, validation, messages."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tabpipe.config import build_spec
from tabpipe.errors import ConfigError
from tabpipe.monitoring.spec import parse_duration

BASE = {"source": {"path": "x.csv"}, "target": "y"}


def test_defaults_hold_policies_and_a_row_window() -> None:
    spec = build_spec(BASE)
    assert spec.monitoring.window.rows == 500
    assert {p.when for p in spec.monitoring.policies} == {
        "drift",
        "performance",
        "estimated_performance",
    }
    assert spec.retraining.window == "growing"


def test_bad_sections_name_the_key_and_the_choices() -> None:
    with pytest.raises(ConfigError, match=r"valid keys here: .*min_rows"):
        build_spec({**BASE, "monitoring": {"min_row": 5}})
    with pytest.raises(ConfigError, match="either"):
        build_spec({**BASE, "monitoring": {"window": {"rows": 5, "every": "1d"}}})
    with pytest.raises(ConfigError, match="needs 'every'"):
        build_spec({**BASE, "monitoring": {"policies": [{"when": "schedule"}]}})
    with pytest.raises(ConfigError, match=r"monitoring\.policies\.0\.when"):
        build_spec({**BASE, "monitoring": {"policies": [{"when": "sometimes"}]}})
    with pytest.raises(ConfigError, match=r"retraining\.window"):
        build_spec({**BASE, "retraining": {"window": "rolling"}})


def test_durations() -> None:
    assert parse_duration("90s") == timedelta(seconds=90)
    assert parse_duration("1.5h") == timedelta(minutes=90)
    assert parse_duration("2w") == timedelta(days=14)
    with pytest.raises(ValueError, match="30s, 15m"):
        parse_duration("soon")
