from __future__ import annotations

import uuid
from pathlib import Path

import pandas as pd
from sqlalchemy import text

from support import DATA, train
from tabpipe import api
from tabpipe.config import SourceSpec, build_spec
from tabpipe.registry import Registry
from tabpipe.workspace import Workspace


def test_sqlite_metadata_uses_wal(tmp_path: Path) -> None:
    with Workspace(tmp_path) as ws, ws.meta.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"


def test_identical_data_gives_the_same_snapshot(tmp_path: Path) -> None:
    copy = tmp_path / "copy.csv"
    copy.write_bytes((DATA / "penguins.csv").read_bytes())
    with Workspace(tmp_path / "ws") as ws:
        first, _ = ws.ingest(SourceSpec(path=str(DATA / "penguins.csv")), "penguins")
        second, frame = ws.ingest(SourceSpec(path=str(copy)), "penguins")
        assert first.id == second.id
        assert len(frame) == first.rows == 344
        pd.testing.assert_frame_equal(ws.snapshot(first.id), frame)


def test_pipeline_on_postgresql_metadata(tmp_path: Path, pg_url: str) -> None:
    """The same code runs with the metadata store on the local PostgreSQL."""
    schema = f"tabpipe_test_{uuid.uuid4().hex[:8]}"
    from sqlalchemy import create_engine

    admin = create_engine(pg_url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    url = f"{pg_url}?options=-csearch_path%3D{schema}"
    try:
        with Workspace(tmp_path, url) as ws:
            summary = api.run(
                build_spec(
                    {
                        "source": {"path": str(DATA / "penguins.csv")},
                        "target": "species",
                        "time_budget": 5,
                    }
                ),
                ws,
                show_progress=False,
            )
            assert ws.meta.engine.dialect.name == "postgresql"
            registry = Registry(ws)
            assert registry.resolve("penguins").version == summary.version.version == 1
            assert [m["name"] for m in registry.models()] == ["penguins"]
            scored = api.score(pd.read_csv(DATA / "penguins.csv").head(5), summary.version.path)
            assert set(scored["prediction"]) <= {"Adelie", "Chinstrap", "Gentoo"}
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def test_retraining_same_spec_reuses_the_version(tmp_path: Path) -> None:
    first = train(tmp_path, DATA / "penguins.csv", "species", time_budget=5)
    second = train(tmp_path, DATA / "penguins.csv", "species", time_budget=5)
    assert second.version.version == first.version.version == 1
    assert "train" in second.cached_stages
