"""MQTT sensor streams through paho-mqtt: JSON messages buffered into time windows.

Each window becomes one snapshot (its parent is the previous window's).
Delivery is at-least-once:

- the client keeps a persistent session (fixed client id, clean_session off)
  and subscribes with QoS 1, so the broker keeps what is published while the
  collector is away and sends it on reconnect;
- every message is appended to a spool file in the workspace *before* it is
  acknowledged (paho acknowledges when the message callback returns), and
  the spool is removed only after its window's snapshot is registered. A
  collector killed halfway finds the spool on its next start and ingests it.

A clean stop (SIGINT/SIGTERM in ``tabpipe ingest --follow``) flushes the
current window. A payload that is not JSON is a bad row: counted, sampled,
quarantined with ``bad_rows: quarantine``, or an error with ``fail``.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tabpipe.data.snapshots import IngestReport, SnapshotRecord, SnapshotStore
from tabpipe.data.sources.files import check_budget
from tabpipe.data.sources.records import RecordWriter
from tabpipe.data.sources.spec import MqttSource
from tabpipe.errors import SourceError

Result = tuple[SnapshotRecord, IngestReport]


class _Spool:
    """Append-only files of received messages; a window's file is deleted once registered."""

    def __init__(self, folder: Path, name: str) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.lock = threading.Lock()
        self.count = 0
        self.current = self._fresh()

    def _fresh(self) -> Path:
        return self.folder / f"{self.name}-{time.time_ns()}-{uuid.uuid4().hex[:6]}.jsonl"

    def leftovers(self) -> list[Path]:
        return sorted(p for p in self.folder.glob(f"{self.name}-*.jsonl") if p != self.current)

    def append(self, topic: str, payload: bytes) -> None:
        line = json.dumps(
            {
                "topic": topic,
                "received_at": datetime.now(UTC).isoformat(),
                "payload": payload.decode("utf-8", errors="replace"),
            }
        )
        with self.lock, self.current.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())
            self.count += 1

    def rotate(self) -> tuple[Path, int]:
        """Close the current file (the window) and start a new one."""
        with self.lock:
            closed, count = self.current, self.count
            self.current, self.count = self._fresh(), 0
        return closed, count


class Collector:
    """Subscribes, spools, and writes a snapshot per window."""

    def __init__(self, spec: MqttSource, store: SnapshotStore, name: str) -> None:
        self.spec = spec
        self.store = store
        self.name = name
        self.where = f"mqtt {spec.host}:{spec.port} {', '.join(spec.topics)}"
        self.spool = _Spool(store.artifacts.root / "spool", name)
        self.connected = threading.Event()
        self.failure: str | None = None
        client_id = spec.client_id or f"tabpipe-{name}"
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=False,
            protocol=mqtt.MQTTv311,
        )
        if spec.username_env:
            self.client.username_pw_set(
                os.environ.get(spec.username_env, ""),
                os.environ.get(spec.password_env, "") if spec.password_env else None,
            )
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            self.failure = f"the broker refused the connection: {reason}"
            return
        topics: list[tuple[str, int]] = [(t, int(self.spec.qos)) for t in self.spec.topics]
        client.subscribe(topics)
        self.connected.set()

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        self.spool.append(message.topic, bytes(message.payload))

    def start(self, timeout: float = 10.0) -> None:
        try:
            self.client.connect(self.spec.host, self.spec.port, keepalive=30)
        except OSError as exc:
            raise SourceError(
                f"{self.where}: cannot connect to the broker: {exc}. Check that it runs and "
                "that host and port are right."
            ) from exc
        self.client.loop_start()
        if not self.connected.wait(timeout):
            self.client.loop_stop()
            raise SourceError(f"{self.where}: no answer from the broker within {timeout} s")
        if self.failure:
            raise SourceError(f"{self.where}: {self.failure}")

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def flush(self, files: list[Path], started: datetime) -> Result | None:
        """Write the messages of ``files`` as one snapshot; remove the files once registered."""
        files = [f for f in files if f.exists()]
        if not any(f.stat().st_size for f in files):
            for f in files:
                f.unlink(missing_ok=True)
            return None
        ended = datetime.now(UTC)
        source = {
            **self.spec.describe(),
            "window_start": started.isoformat(),
            "window_end": ended.isoformat(),
        }
        report = IngestReport(name=self.name, source=source)
        begun = time.perf_counter()
        previous = self.store.latest(self.name)
        with self.store.staging() as staging:
            writer = RecordWriter(staging, keep_bad=self.spec.bad_rows == "quarantine")
            for path in files:
                self._read_spool(path, writer)
            writer.close()
            if writer.rows == 0 and staging.bad_rows == 0:
                return None
            check_budget(
                self.where, self.spec.bad_rows, self.spec.max_bad_fraction, staging, writer.rows
            )
            if writer.rows == 0:  # only bad messages: they are in the quarantine file
                raise SourceError(f"{self.where}: every message of the window was bad")
            record = self.store.commit(staging, report, parent_id=previous.id if previous else None)
        for f in files:
            f.unlink(missing_ok=True)
        report.seconds = time.perf_counter() - begun
        return record, report

    def _read_spool(self, path: Path, writer: RecordWriter) -> None:
        with path.open(encoding="utf-8") as fh:
            for number, line in enumerate(fh, start=1):
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:  # a line cut by a crash mid-write
                    writer.staging.warnings.append(f"{path.name}: line {number} was cut short")
                    continue
                position = f"topic {entry['topic']}, received {entry['received_at']}"
                try:
                    payload = json.loads(entry["payload"])
                except json.JSONDecodeError as exc:
                    writer.staging.bad(
                        position,
                        f"payload is not JSON: {exc.msg}",
                        entry["payload"],
                        keep=writer.keep_bad,
                    )
                    continue
                for item in payload if isinstance(payload, list) else [payload]:
                    writer.add(self._with_context(item, entry), position)

    def _with_context(self, item: Any, entry: dict[str, str]) -> Any:
        if not isinstance(item, dict):
            return item
        row = dict(item)
        if self.spec.topic_column:
            row[self.spec.topic_column] = entry["topic"]
        if self.spec.time_column:
            row[self.spec.time_column] = datetime.fromisoformat(entry["received_at"])
        return row


def collect(
    spec: MqttSource,
    store: SnapshotStore,
    *,
    name: str | None = None,
    follow: bool = False,
    stop: threading.Event | None = None,
    on_snapshot: Callable[[SnapshotRecord, IngestReport], None] | None = None,
) -> list[Result]:
    """Collect windows until ``stop`` is set (``follow``) or for one window; flush on stop.

    Messages spooled by an earlier collector that did not finish are
    ingested first, as their own snapshot.
    """
    collector = Collector(spec, store, name or spec.stem)
    stop = stop or threading.Event()
    results: list[Result] = []

    def flushed(result: Result | None) -> None:
        if result is not None:
            results.append(result)
            if on_snapshot is not None:
                on_snapshot(*result)

    leftovers = collector.spool.leftovers()
    if leftovers:
        flushed(collector.flush(leftovers, datetime.now(UTC)))
    collector.start()
    clean = False
    try:
        while True:
            started = datetime.now(UTC)
            deadline = time.monotonic() + spec.window_seconds
            while not stop.is_set() and time.monotonic() < deadline:
                stop.wait(min(0.2, max(0.0, deadline - time.monotonic())))
            closed, _count = collector.spool.rotate()
            flushed(collector.flush([closed], started))
            if stop.is_set() or not follow:
                break
        clean = True
    finally:
        collector.stop()
    # Messages that arrived between the last window and the disconnect.
    closed, _ = collector.spool.rotate()
    if clean and closed.exists() and closed.stat().st_size:
        flushed(collector.flush([closed], datetime.now(UTC)))
    return results


__all__ = ["Collector", "collect"]
