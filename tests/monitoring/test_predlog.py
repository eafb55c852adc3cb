"""The prediction log: batched in the background, never in the way, durable, prunable."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from monitoring.bikes import Served, records
from tabpipe.monitoring.logstore import read_log
from tabpipe.packaging.bundle import read_manifest
from tabpipe.registry import Registry
from tabpipe.serving.predlog import LogSettings, PredictionLog, log_folder, prune, write_part
from tabpipe.serving.runtime import load_predictor
from tabpipe.workspace import Workspace


def _scored(served: Served, rows: int) -> tuple[object, object, object, dict[str, list[object]]]:
    with Workspace(served.root) as ws:
        version = Registry(ws).resolve(served.name)
    predictor = load_predictor(version.path)
    frame = served.frame.iloc[:rows]
    columns = {c: frame[c].tolist() for c in frame.columns}
    feeds = predictor.manifest.signature.to_feeds(columns)
    return version, predictor.manifest, (feeds, predictor.predict(feeds)), columns


def test_http_traffic_is_logged_with_inputs_outputs_keys_and_flags(fresh: Served) -> None:
    rows = records(fresh.frame.iloc[360:380])
    rows[0]["temp"] = 5.0  # far outside the training range
    rows[1]["weathersit"] = "snowstorm"  # a category never seen in training
    with fresh.client() as client:
        r = client.post("/invocations", json={"dataframe_records": rows})
        assert r.status_code == 200
        rid = r.headers["x-request-id"]
        bad = client.post("/invocations", json={"dataframe_records": [{"temp": "hot"}]})
        assert bad.status_code == 400
        oip = client.post(
            "/v2/models/bike/infer",
            json={
                "id": "req-42",
                "inputs": [
                    {"name": c, "data": [v]} for c, v in records(fresh.frame.iloc[:1])[0].items()
                ],
            },
        )
        assert oip.status_code == 200
    # the lifespan shutdown flushed everything
    frame = read_log(fresh.root, fresh.name).frame
    ok = frame[frame["status"] == "ok"]
    assert len(ok) == 21 and (frame["status"] == "error").sum() == 1
    mine = ok[ok["request_id"] == rid].sort_values("row")
    assert mine["row"].tolist() == list(range(20))
    assert mine["key"].tolist() == fresh.frame["dteday"].iloc[360:380].tolist()
    assert "range:temp" in list(mine.iloc[0]["flags"])
    assert "unseen:weathersit" in list(mine.iloc[1]["flags"])
    assert mine.iloc[1]["in_weathersit"] == "snowstorm"
    assert (mine["latency_ms"] > 0).all()
    assert ok[ok["request_id"] == "req-42"]["prediction"].notna().all()
    assert "missing required column" in frame.loc[frame["status"] == "error", "error"].iloc[0]


def test_a_full_queue_drops_and_counts_without_blocking(fresh: Served, tmp_path: Path) -> None:
    version, manifest, (feeds, prediction), _ = _scored(fresh, 5)
    log = PredictionLog(tmp_path, fresh.name, LogSettings(queue_size=3, flush_seconds=30))
    log._thread.join(0)  # the writer runs; it only writes after flush_seconds or flush_rows
    started = time.perf_counter()
    for i in range(200):
        log.record(f"r{i}", version.version, manifest, feeds, prediction, time.perf_counter())  # type: ignore[attr-defined,arg-type]
    assert time.perf_counter() - started < 1.0
    log.close()
    assert log.stats.dropped > 0
    assert log.stats.recorded + log.stats.dropped == 200 * 5
    assert log.stats.written_rows == log.stats.recorded


def test_close_flushes_and_parts_are_atomic(fresh: Served, tmp_path: Path) -> None:
    version, manifest, (feeds, prediction), _ = _scored(fresh, 7)
    log = PredictionLog(tmp_path, fresh.name, LogSettings(flush_seconds=60, flush_rows=10**6))
    for i in range(3):
        log.record(f"r{i}", version.version, manifest, feeds, prediction, time.perf_counter())  # type: ignore[attr-defined,arg-type]
    log.close()
    parts = list(tmp_path.glob("part-*.parquet"))
    assert len(parts) == 1
    assert not list(tmp_path.glob(".tmp-*"))
    assert log.stats.written_rows == 21


def test_corrupt_part_is_skipped_and_reported(fresh: Served) -> None:
    with fresh.client() as client:
        client.post("/invocations", json={"dataframe_records": records(fresh.frame.iloc[:4])})
    folder = log_folder(fresh.root, fresh.name)
    (folder / "part-20990101T000000000000-deadbeef.parquet").write_bytes(b"PAR1 not parquet")
    read = read_log(fresh.root, fresh.name)
    assert len(read.frame) == 4
    assert len(read.skipped) == 1 and "deadbeef" in read.skipped[0].path


def test_retention_prunes_old_parts(tmp_path: Path) -> None:
    table = pa.table({"x": [1]})
    old = write_part(tmp_path, table)
    aged = tmp_path / old.name.replace(old.name.split("-")[1], "20200101T000000000000")
    old.rename(aged)
    recent = write_part(tmp_path, table)
    removed = prune(tmp_path, retention_days=30)
    assert removed == [aged]
    assert recent.exists() and not aged.exists()
    assert prune(tmp_path, None) == []
    later = datetime.now(UTC) + timedelta(days=31)
    assert prune(tmp_path, 30, now=later) == [recent]


def test_batch_scoring_logs_too(fresh: Served, tmp_path: Path) -> None:
    from tabpipe import api

    source = tmp_path / "batch.csv"
    fresh.frame.iloc[400:450].drop(columns=["cnt"]).to_csv(source, index=False)
    with Workspace(fresh.root) as ws:
        scored = api.predict_file(ws, fresh.name, source, tmp_path / "out.csv", key_column="dteday")
    frame = read_log(fresh.root, fresh.name).frame
    assert len(frame) == len(scored) == 50
    assert set(frame["source"]) == {"batch"}
    assert frame["key"].tolist() == fresh.frame["dteday"].iloc[400:450].tolist()
    manifest = read_manifest(Registry(Workspace(fresh.root)).resolve(fresh.name).path)
    assert frame["prediction"].tolist() == pytest.approx(scored["prediction"].tolist())
    assert manifest.name == fresh.name


def test_disabled_log_writes_nothing(fresh: Served) -> None:
    with fresh.client(enabled=False) as client:
        r = client.post("/invocations", json={"dataframe_records": records(fresh.frame.iloc[:3])})
        assert r.status_code == 200
    assert not list(log_folder(fresh.root, fresh.name).glob("part-*"))


def test_a_part_built_in_slices_equals_one_built_at_once_with_flags_per_row(
    fresh: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tabpipe.serving import predlog

    version, manifest, (feeds, prediction), _ = _scored(fresh, 3)
    odd = {**feeds, "temp": feeds["temp"].copy()}
    odd["temp"][1, 0] = 5.0  # out of the training range in row 1
    given = [["contract:minimum:hum"], [], ["contract:a:x", "contract:b:y"]]

    def record(i: int, f: Any, flags: Any) -> Any:
        v: Any = version
        return predlog._Record(
            float(i), f"r{i}", v.version, manifest, f, prediction, 1.0, None, "http", None, 3, flags
        )  # type: ignore[arg-type]

    records = [record(i, *pair) for i, pair in enumerate([(feeds, None), (odd, given)] * 5)]
    records.insert(4, predlog._Record(9.0, "bad", 1, None, None, None, 1.0, None, "http", "boom"))
    whole = predlog.build_table(fresh.name, records, None)
    monkeypatch.setattr(predlog, "SLICE_RECORDS", 3)
    pauses = []
    real_pause = predlog._pause

    def counted_pause() -> None:
        pauses.append(1)
        real_pause()

    monkeypatch.setattr(predlog, "_pause", counted_pause)
    sliced = predlog.build_table(fresh.name, records, None, yield_gil=True)
    # the writer hands the GIL back after every column of every slice, not once a slice
    slices = math.ceil(len(records) / 3)
    assert len(pauses) >= slices * len(manifest.signature.columns)  # type: ignore[attr-defined]
    assert sliced.schema == whole.schema and sliced.num_rows == whole.num_rows == 31

    def rows(table: pa.Table) -> list[dict[str, object]]:
        return sorted(table.to_pylist(), key=lambda r: (r["request_id"], r["row"]))

    assert rows(sliced) == rows(whole)
    odd_rows = [r for r in rows(whole) if r["request_id"] == "r1"]
    assert [r["row"] for r in odd_rows] == [0, 1, 2]
    assert odd_rows[0]["flags"][0] == "contract:minimum:hum"  # request-path flags come first
    assert "range:temp" in odd_rows[1]["flags"]
    assert not any(f.startswith("contract:") for f in odd_rows[1]["flags"])
    assert odd_rows[2]["flags"][:2] == ["contract:a:x", "contract:b:y"]
    plain = [r for r in rows(whole) if r["request_id"] == "r0"]
    assert all(
        not any(f.startswith(("contract:", "range:temp")) for f in r["flags"]) for r in plain
    )


def test_batch_flags_are_each_rows_flags_in_column_order(fresh: Served, tmp_path: Path) -> None:
    from tabpipe.serving.predlog import log_batch

    version, manifest, (feeds, prediction), columns = _scored(fresh, 300)
    specs = manifest.signature.columns
    numeric = next(s for s in specs if s.kind == "numeric" and s.minimum is not None)
    feeds[numeric.name][::3] = float("nan")  # missing on every third row
    feeds[numeric.name][1::7] = numeric.maximum + 1  # out of range on others
    part = log_batch(tmp_path, manifest, version.version, columns, prediction, 1.0, feeds=feeds)
    assert part is not None
    logged = pq.read_table(part).column("flags").to_pylist()
    expected: list[list[str]] = [[] for _ in range(300)]
    for spec in specs:  # the rule, row by row
        for i, value in enumerate(feeds[spec.name].reshape(-1)):
            if spec.kind in ("numeric", "datetime"):
                x = float(value)
                ranged = spec.minimum is not None and spec.maximum is not None
                if math.isnan(x):
                    expected[i].append(f"missing:{spec.name}")
                elif ranged and not spec.minimum <= x <= spec.maximum:  # type: ignore[operator]
                    expected[i].append(f"range:{spec.name}")
            elif str(value) == "":
                expected[i].append(f"missing:{spec.name}")
            elif spec.categories and str(value) not in spec.categories:
                expected[i].append(f"unseen:{spec.name}")
    assert logged == expected
    assert any(f"missing:{numeric.name}" in f for f in logged)
    assert any(f"range:{numeric.name}" in f for f in logged)


def test_the_writer_frees_a_written_part_s_records(fresh: Served, tmp_path: Path) -> None:
    from tabpipe.serving import predlog

    version, manifest, (feeds, prediction), _ = _scored(fresh, 2)
    v: Any = version
    records = [
        predlog._Record(
            float(i), f"r{i}", v.version, manifest, feeds, prediction, 1.0, None, "http", None, 2
        )  # type: ignore[arg-type]
        for i in range(3 * predlog.SLICE_RECORDS + 5)
    ]
    plog = PredictionLog(tmp_path / "log", fresh.name)
    try:
        plog._write(records)
        assert records == []  # emptied a slice at a time, not dropped at once by the caller
        assert plog.stats.parts == 1 and plog.stats.written_rows == 2 * (3 * 256 + 5)
        assert pq.read_table(next((tmp_path / "log").glob("part-*.parquet"))).num_rows == 1546
    finally:
        plog.close()
