"""Windows on the event time: which column, how it reads, what is set aside."""

from __future__ import annotations

import pandas as pd
import pytest

from monitoring.bikes import Served
from tabpipe.errors import MonitoringError
from tabpipe.monitoring.spec import MonitoringSpec
from tabpipe.monitoring.windows import EVENT_TIME, assign_windows, event_time
from tabpipe.packaging.bundle import Manifest, read_manifest
from tabpipe.registry import Registry
from tabpipe.workspace import Workspace


@pytest.fixture
def manifest(bike_model: Served) -> Manifest:
    with Workspace(bike_model.root) as ws:
        return read_manifest(Registry(ws).resolve(bike_model.name).path)


def test_a_feature_can_be_the_event_time(manifest: Manifest) -> None:
    """A numeric feature holds Unix seconds; windows of one 'day' follow it."""
    log = pd.DataFrame(
        {
            "status": ["ok", "ok", "ok", "error"],
            "request_id": ["a", "b", "c", "d"],
            "row": [0, 0, 0, 0],
            "in_temp": [86400.0 * 2, 0.0, float("nan"), float("nan")],
        }
    )
    frame, notes = event_time(log, "temp", manifest)
    assert frame["request_id"].tolist() == ["b", "a"]
    assert frame[EVENT_TIME].iloc[1] == pd.Timestamp("1970-01-03", tz="UTC")
    assert "1 logged rows have no readable 'temp'" in notes[0] and "request c" in notes[0]
    assert "1 rejected requests" in notes[1]


def test_the_user_key_is_the_event_time_only_under_its_own_name(manifest: Manifest) -> None:
    log = pd.DataFrame(
        {
            "status": ["ok", "ok"],
            "request_id": ["a", "b"],
            "row": [0, 1],
            "key": ["2012-03-02", "2012-03-01T12:00:00Z"],
            "key_name": ["dteday", "dteday"],
        }
    )
    frame, notes = event_time(log, "dteday", manifest)
    assert frame["request_id"].tolist() == ["b", "a"] and notes == []
    spec = MonitoringSpec(window={"every": "12h"}, time_column="dteday")
    assert assign_windows(frame, spec, EVENT_TIME).tolist() == [0, 1]
    with pytest.raises(MonitoringError, match="neither a feature of bike"):
        event_time(log.assign(key_name="instant"), "dteday", manifest)
