"""Artifacts and snapshots on an S3-compatible object store (moto's S3 server over HTTP)."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from support import DATA, free_port
from tabpipe import api
from tabpipe.artifacts import TABLE
from tabpipe.cli import app
from tabpipe.config import SourceSpec, build_spec
from tabpipe.errors import ConfigError, StoreError
from tabpipe.monitoring.logstore import read_log
from tabpipe.registry import Registry
from tabpipe.workspace import Workspace

KEYS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
#: a new filesystem object per workspace: fsspec's instance cache ignores the environment
FRESH = {"skip_instance_cache": True}


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """A real S3 HTTP server (moto in server mode) on a free loopback port."""
    from moto.server import ThreadedMotoServer  # a dev dependency: the real S3 HTTP API

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port())
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Standard AWS environment pointing at the server, and a fresh bucket; its filesystem."""
    import s3fs

    for name, value in {
        **KEYS,
        "AWS_ENDPOINT_URL_S3": s3_endpoint,
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    fs = s3fs.S3FileSystem(skip_instance_cache=True)
    bucket = f"tabpipe-{uuid.uuid4().hex[:12]}"
    fs.mkdir(bucket)
    fs.bucket = bucket
    yield fs


def _open(fs: Any, tmp_path: Path, cache: str = "cache") -> Workspace:
    """A workspace on the bucket with SQLite metadata on a local path; its own cache folder."""
    return Workspace(
        f"s3://{fs.bucket}/team/ws",
        f"sqlite:///{tmp_path / 'metadata.db'}",
        cache_dir=tmp_path / cache,
        storage_options=FRESH,
    )


def _keys(fs: Any, prefix: str) -> list[str]:
    fs.invalidate_cache()
    try:
        return sorted(fs.find(prefix))
    except FileNotFoundError:
        return []


class FailingFilesystem:
    """The real S3 filesystem, except that the ``nth`` call of ``method`` raises mid-upload."""

    def __init__(self, fs: Any, method: str, nth: int, on_failure: Any = None) -> None:
        self._fs, self._method, self._left, self._on_failure = fs, method, nth, on_failure

    def __getattr__(self, name: str) -> Any:
        real = getattr(self._fs, name)
        if name != self._method:
            return real

        def call(*args: Any, **kwargs: Any) -> Any:
            self._left -= 1
            if self._left == 0:
                if self._on_failure is not None:
                    self._on_failure()
                raise ConnectionResetError("connection reset by peer during upload")
            return real(*args, **kwargs)

        return call


def test_object_store_workspace_needs_a_metadata_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TABPIPE_DB_URL", raising=False)
    with pytest.raises(ConfigError, match="TABPIPE_DB_URL"):
        Workspace("s3://bucket/prefix")


def test_missing_credentials_are_a_store_error_that_says_what_to_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    db = f"sqlite:///{tmp_path / 'metadata.db'}"
    with (
        Workspace("s3://bucket/ws", db, cache_dir=tmp_path, storage_options=FRESH) as ws,
        pytest.raises(StoreError, match=r"AWS_ACCESS_KEY_ID.*AWS_ENDPOINT_URL_S3"),
    ):
        ws.ingest(SourceSpec(path=str(DATA / "penguins.csv")), "penguins")


@pytest.mark.slow
def test_snapshot_on_s3_is_read_back_through_a_fresh_cache(s3: Any, tmp_path: Path) -> None:
    penguins = SourceSpec(path=str(DATA / "penguins.csv"))
    with _open(s3, tmp_path) as ws:
        record, frame = ws.ingest(penguins, "penguins")
        assert record.location == f"s3://{s3.bucket}/team/ws/artifacts/table/{record.id}"
        final = f"{s3.bucket}/team/ws/artifacts/table/{record.id}"
        assert [k.rsplit("/", 1)[1] for k in _keys(s3, final)] == [
            ".complete",
            "data.parquet",
            "report.json",
        ]
        assert _keys(s3, f"{s3.bucket}/team/ws/artifacts/.tmp") == []
    with _open(s3, tmp_path, cache="other-machine") as other:
        again = other.snapshots.resolve("penguins@latest")
        pd.testing.assert_frame_equal(other.snapshots.frame(again), frame)
        assert other.snapshots.sql("SELECT count(*) AS n FROM penguins")["n"][0] == 344
        reused, _ = other.ingest(penguins, "penguins")
        assert reused.id == record.id and len(other.snapshots.list()) == 1


@pytest.mark.slow
@pytest.mark.service
def test_two_machines_share_snapshots_through_s3_and_postgresql(
    s3: Any, tmp_path: Path, pg_url: str
) -> None:
    schema = f"tabpipe_s3_{uuid.uuid4().hex[:8]}"
    admin = create_engine(pg_url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    url = f"{pg_url}?options=-csearch_path%3D{schema}"
    where = f"s3://{s3.bucket}/shared"
    try:
        with Workspace(where, url, cache_dir=tmp_path / "a", storage_options=FRESH) as first:
            record, frame = first.ingest(SourceSpec(path=str(DATA / "penguins.csv")), "penguins")
            assert first.meta.engine.dialect.name == "postgresql"
        with Workspace(where, url, cache_dir=tmp_path / "b", storage_options=FRESH) as second:
            found = second.snapshots.resolve("penguins@latest")
            assert found.id == record.id and found.location.startswith(f"{where}/artifacts/")
            pd.testing.assert_frame_equal(second.snapshot(found.id), frame)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("method", "nth"),
    [("put_file", 2), ("copy", 2), ("pipe_file", 1)],
    ids=["upload", "copy-into-place", "marker"],
)
def test_failure_mid_upload_registers_nothing(
    s3: Any, tmp_path: Path, method: str, nth: int
) -> None:
    penguins = SourceSpec(path=str(DATA / "penguins.csv"))
    artifacts = f"{s3.bucket}/team/ws/artifacts"
    seen: list[bool] = []

    def reader_view() -> None:  # another machine looking while the upload is half done
        with _open(s3, tmp_path, cache="reader") as reader:
            seen.append(bool(reader.snapshots.list()))
            seen.extend(reader.artifacts.exists(TABLE.kind, i) for i in _ids(s3, artifacts))

    with _open(s3, tmp_path) as ws:
        assert ws.artifacts.remote is not None
        real = ws.artifacts.remote.fs
        ws.artifacts.remote.fs = FailingFilesystem(real, method, nth, reader_view)
        with pytest.raises(StoreError, match="nothing was registered"):
            ws.ingest(penguins, "penguins")
        assert seen and not any(seen)
        assert ws.snapshots.list() == []
        assert _keys(s3, f"{artifacts}/.tmp") == []  # temporary keys removed
        assert not any(k.endswith(".complete") for k in _keys(s3, artifacts))
        assert list((tmp_path / "cache").rglob("data.parquet")) == []
        ws.artifacts.remote.fs = real  # the next attempt succeeds and registers it
        record, _ = ws.ingest(penguins, "penguins")
    with _open(s3, tmp_path, cache="reader") as reader:
        assert reader.snapshots.resolve("penguins@latest").id == record.id
        assert len(reader.snapshot(record.id)) == 344


def _ids(fs: Any, artifacts: str) -> set[str]:
    return {k.split("/")[-2] for k in _keys(fs, f"{artifacts}/table")}


@pytest.mark.slow
def test_gc_removes_stale_temporary_keys_only(s3: Any, tmp_path: Path) -> None:
    leftover = f"{s3.bucket}/team/ws/artifacts/.tmp/{uuid.uuid4().hex}/data.parquet"
    s3.pipe_file(leftover, b"half an upload")
    with _open(s3, tmp_path) as ws:
        record, _ = ws.ingest(SourceSpec(path=str(DATA / "penguins.csv")), "penguins")
        assert ws.gc(older_than_seconds=3600) == []
        stale = ws.artifacts.staging("killed-writer")  # a local staging folder, two days old
        os.utime(stale, (time.time() - 2 * 86400,) * 2)
        assert ws.gc(older_than_seconds=3600) == [str(stale)] and not stale.exists()
    workspace = f"s3://{s3.bucket}/team/ws"
    env = {"TABPIPE_DB_URL": f"sqlite:///{tmp_path / 'metadata.db'}"}
    result = CliRunner().invoke(app, ["gc", "--older-than", "0", "--workspace", workspace], env=env)
    assert result.exit_code == 0, result.output
    assert leftover.rsplit("/", 1)[0] in result.output
    assert _keys(s3, f"{s3.bucket}/team/ws/artifacts/.tmp") == []
    assert _keys(s3, f"{s3.bucket}/team/ws/artifacts/table/{record.id}")  # artifacts untouched


@pytest.mark.slow
def test_pipeline_run_on_s3_then_predict_and_serve_from_other_caches(
    s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = build_spec(
        {
            "source": {"path": str(DATA / "titanic.csv")},
            "target": "Survived",
            "time_budget": 8,
            "max_trials": 4,
        }
    )
    with _open(s3, tmp_path) as ws:
        summary = api.run(spec, ws, show_progress=False)
        bundle = summary.version.bundle_id
        keys = _keys(s3, f"{s3.bucket}/team/ws/artifacts/bundle/{bundle}")
        assert {k.rsplit("/", 1)[1] for k in keys} >= {".complete", "manifest.json", "model.onnx"}
        assert _keys(s3, f"{s3.bucket}/team/ws/artifacts/.tmp") == []
        rows = pd.read_csv(DATA / "titanic.csv").head(20)
        expected = api.score(rows, summary.version.path)
    # a second machine: same metadata and bucket, an empty cache
    with _open(s3, tmp_path, cache="serving-machine") as other:
        version = Registry(other).resolve(summary.name)
        assert version.path.is_relative_to(tmp_path / "serving-machine")
        pd.testing.assert_frame_equal(api.score(rows, version.path), expected)
        rerun = api.run(spec, other, show_progress=False)  # every stage is a cache hit
        assert rerun.version.bundle_id == bundle
    rows.to_csv(tmp_path / "rows.csv", index=False)
    result = CliRunner().invoke(
        app,
        [
            "predict",
            summary.name,
            str(tmp_path / "rows.csv"),
            "-o",
            str(tmp_path / "scored.csv"),
            "--workspace",
            f"s3://{s3.bucket}/team/ws",
        ],
        env={
            "TABPIPE_DB_URL": f"sqlite:///{tmp_path / 'metadata.db'}",
            "TABPIPE_CACHE_DIR": str(tmp_path / "cli-cache"),
        },
    )
    assert result.exit_code == 0, result.output
    scored = pd.read_csv(tmp_path / "scored.csv")
    assert scored["prediction"].tolist() == expected["prediction"].tolist()
    _serve_from_s3(f"s3://{s3.bucket}/team/ws", tmp_path, monkeypatch, summary.name, rows, expected)


def _serve_from_s3(
    url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    rows: pd.DataFrame,
    expected: pd.DataFrame,
) -> None:
    """A server following the alias on the object store, sharing its log and labels there."""
    from tabpipe.serving.app import create_app
    from tabpipe.serving.settings import ServeSettings

    db_url = f"sqlite:///{tmp_path / 'metadata.db'}"
    settings = ServeSettings(workspace=url, model=name, db_url=db_url, poll_seconds=0)
    monkeypatch.setenv("TABPIPE_CACHE_DIR", str(tmp_path / "server-cache"))
    with TestClient(create_app(settings)) as client:
        deadline = time.monotonic() + 60
        while client.get("/v2/health/ready").status_code != 200:
            assert time.monotonic() < deadline, "the server did not load the bundle"
            time.sleep(0.05)
        records = json.loads(rows.drop(columns=["Survived"]).to_json(orient="records"))
        response = client.post(f"/v1/models/{name}/predict", json=records)
        assert response.status_code == 200, response.text
        body = response.json()
        assert [p["prediction"] for p in body["predictions"]] == expected["prediction"].tolist()
        labels = [{"request_id": body["request_id"], "row": 0, "label": 1}]
        assert client.post("/feedback", json={"labels": labels}).status_code == 200
    assert settings.local_workspace.is_relative_to(tmp_path / "server-cache")
    # the log and the label were shared: another machine's monitoring reads them
    with Workspace(
        url, db_url, cache_dir=tmp_path / "monitoring-machine", storage_options=FRESH
    ) as other:
        assert not (other.root / "predictions").exists()
        other.sync_log(name)
        logged = read_log(other.root, name).frame
    served = logged[logged["source"] == "http"]  # the rest: the CLI's batch scoring
    assert len(served) == len(rows) and set(served["request_id"]) == {body["request_id"]}
    assert (logged["source"] == "batch").sum() == len(rows)
    assert served.set_index("row").loc[0, "label"] == "1"
    assert logged["label"].notna().sum() == 1
