"""MQTT sources against the local Mosquitto broker, with a publisher in the test."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import pandas as pd
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tabpipe.config import MqttSource
from tabpipe.data.sources.mqtt import collect
from tabpipe.errors import SourceError
from tabpipe.workspace import Workspace

pytestmark = pytest.mark.service


def publish(broker: tuple[str, int], topic: str, payloads: list[bytes], delay: float = 0.0) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.connect(*broker)
    client.loop_start()
    try:
        for payload in payloads:
            client.publish(topic, payload, qos=1).wait_for_publish(5)
            if delay:
                time.sleep(delay)
    finally:
        client.loop_stop()
        client.disconnect()


def readings(n: int, start: int = 0) -> list[bytes]:
    return [
        json.dumps(
            {"sensor": f"s{i % 3}", "seq": i, "temp": 20 + i / 10, "meta": {"ok": True}}
        ).encode()
        for i in range(start, start + n)
    ]


def spec_for(broker: tuple[str, int], topic: str, **kwargs: object) -> MqttSource:
    return MqttSource(
        kind="mqtt",
        host=broker[0],
        port=broker[1],
        topics=(f"{topic}/#",),
        client_id=f"tp-test-{uuid.uuid4().hex[:8]}",
        name="sensors",
        **kwargs,  # type: ignore[arg-type]
    )


def later(delay: float, fn: object, *args: object) -> threading.Thread:
    def run() -> None:
        time.sleep(delay)
        fn(*args)  # type: ignore[operator]

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_window_becomes_a_snapshot_bad_payload_quarantined(
    workspace: Workspace, mqtt_broker: tuple[str, int]
) -> None:
    topic = f"tabpipe-test/{uuid.uuid4().hex[:8]}"
    spec = spec_for(
        mqtt_broker, topic, window_seconds=2.0, bad_rows="quarantine", max_bad_fraction=0.2
    )
    thread = later(0.5, publish, mqtt_broker, f"{topic}/line1", [*readings(30), b"\x00not json"])
    results = collect(spec, workspace.snapshots)
    thread.join()
    assert len(results) == 1
    record, report = results[0]
    assert record.rows == 30 and report.bad_rows == 1
    assert set(record.schema) == {"sensor", "seq", "temp", "meta.ok", "topic", "received_at"}
    assert "not JSON" in report.bad_row_samples[0].cause
    assert report.quarantine is not None and "not json" in Path(report.quarantine).read_text()
    frame = workspace.snapshots.frame(record)
    assert sorted(frame["seq"]) == list(range(30))
    assert set(frame["topic"]) == {f"{topic}/line1"}
    assert record.source["window_start"] < record.source["window_end"]


def test_bad_payload_fails_by_default_and_nothing_is_lost(
    workspace: Workspace, mqtt_broker: tuple[str, int]
) -> None:
    topic = f"tabpipe-test/{uuid.uuid4().hex[:8]}"
    spec = spec_for(mqtt_broker, topic, window_seconds=1.5)
    thread = later(0.4, publish, mqtt_broker, topic + "/x", [*readings(5), b"oops"])
    with pytest.raises(SourceError, match=r"topic tabpipe-test/.*/x.*payload is not JSON"):
        collect(spec, workspace.snapshots)
    thread.join()
    assert workspace.snapshots.list() == []
    spooled = list((workspace.artifacts.root / "spool").glob("sensors-*.jsonl"))
    assert sum(len(p.read_text().splitlines()) for p in spooled) == 6  # kept for the next run
    record, report = collect(
        spec.model_copy(
            update={"bad_rows": "quarantine", "max_bad_fraction": 0.5, "window_seconds": 0.5}
        ),
        workspace.snapshots,
    )[0]
    assert record.rows == 5 and report.bad_rows == 1


def test_persistent_session_gets_what_was_published_while_away(
    workspace: Workspace, mqtt_broker: tuple[str, int]
) -> None:
    topic = f"tabpipe-test/{uuid.uuid4().hex[:8]}"
    spec = spec_for(mqtt_broker, topic, window_seconds=0.5)
    assert collect(spec, workspace.snapshots) == []  # subscribes; nothing yet
    publish(mqtt_broker, f"{topic}/a", readings(25))  # the collector is away
    results = collect(spec.model_copy(update={"window_seconds": 1.5}), workspace.snapshots)
    assert sum(r.rows for r, _ in results) == 25


@pytest.mark.slow
def test_follow_flushes_on_sigterm_and_recovers_after_kill(
    workspace: Workspace, mqtt_broker: tuple[str, int], tmp_path: Path
) -> None:
    topic = f"tabpipe-test/{uuid.uuid4().hex[:8]}"
    spec = tmp_path / "mqtt.yaml"
    spec.write_text(
        f"kind: mqtt\nhost: {mqtt_broker[0]}\nport: {mqtt_broker[1]}\ntopics: ['{topic}/#']\n"
        f"client_id: tp-follow-{uuid.uuid4().hex[:6]}\nwindow_seconds: 300\nname: plant\n",
        encoding="utf-8",
    )
    command = [str(Path(sys.executable).with_name("tabpipe")), "ingest", str(spec), "--follow"]
    env = {**os.environ, "TABPIPE_WORKSPACE": str(workspace.root)}
    spool = workspace.artifacts.root / "spool"

    def spooled(marker: str = "") -> int:
        return sum(
            sum(marker in line for line in p.read_text().splitlines())
            for p in spool.glob("plant-*.jsonl")
        )

    def start_and_publish(start: int, probe: str) -> subprocess.Popen[str]:
        """Start the collector; publish probes until one arrives (it has subscribed)."""
        proc = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        deadline = time.monotonic() + 20
        while spooled(f"{topic}/{probe}") == 0 and time.monotonic() < deadline:
            publish(mqtt_broker, f"{topic}/{probe}", readings(1, start))
            time.sleep(0.3)
            start += 1
        return proc

    # 1. killed hard: what it had received stays in the spool.
    proc = start_and_publish(0, "probe1")
    publish(mqtt_broker, f"{topic}/a", readings(10, 100))
    deadline = time.monotonic() + 10
    while spooled(f"{topic}/a") < 10 and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    killed = spooled()
    assert killed >= 11 and workspace.snapshots.list() == []
    # 2. restarted: the spool becomes a snapshot first; then a clean stop flushes the window.
    proc = start_and_publish(1000, "probe2")
    publish(mqtt_broker, f"{topic}/b", readings(7, 200))
    deadline = time.monotonic() + 10
    while spooled(f"{topic}/b") < 7 and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "flushing the current window" in err
    records = workspace.snapshots.list("plant")
    assert len(records) == 2, out
    assert records[0].rows == killed
    assert records[1].parent_id == records[0].id
    frame = pd.concat([workspace.snapshots.frame(r) for r in records])
    assert set(range(100, 110)) | set(range(200, 207)) <= set(frame["seq"])
    assert spooled() == 0
