"""Many files ingested one Ray task per file on the test cluster: the local engine's snapshot."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from data.test_sources_many import HERE, split
from tabpipe.cli import app
from tabpipe.data.ingest import ingest
from tabpipe.data.sources.spec import FileSource
from tabpipe.engine import EngineSpec, LocalEngine, open_engine
from tabpipe.errors import SourceError
from tabpipe.workspace import Workspace

pytestmark = pytest.mark.slow


def test_ray_ingest_gives_the_local_snapshot(ray_cluster, tmp_path: Path) -> None:
    split(HERE / "bike_sharing_day.csv", tmp_path / "days", 6)
    with Workspace(tmp_path / "ws") as ws:
        local, _ = ingest(
            FileSource(path=str(tmp_path / "days")), ws.snapshots, engine=LocalEngine()
        )
    result = CliRunner().invoke(
        app,
        [
            "ingest", str(tmp_path / "days"), "--engine", "ray", "--address",
            ray_cluster.address, "--workspace", str(tmp_path / "ws"),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    printed = " ".join(result.output.split())
    assert f"snapshot {local.id} " in printed
    assert "existing (identical data)" in printed  # the same id: the same snapshot
    with Workspace(tmp_path / "ws") as ws:
        assert len(ws.snapshots.list()) == 1


def test_a_bad_file_on_ray_is_named_and_nothing_registered(ray_cluster, tmp_path: Path) -> None:
    paths = split(HERE / "bike_sharing_day.csv", tmp_path / "days", 3)
    with paths[2].open("a", encoding="utf-8") as fh:
        fh.write('999,"2012-13-01,broken\n')
    engine = EngineSpec(kind="ray", address=ray_cluster.address)
    with Workspace(tmp_path / "ws") as ws, open_engine(engine) as on_ray:
        with pytest.raises(SourceError, match=r"day-02\.csv.*nothing registered"):
            ingest(FileSource(path=str(tmp_path / "days")), ws.snapshots, engine=on_ray)
        assert ws.snapshots.list() == []
