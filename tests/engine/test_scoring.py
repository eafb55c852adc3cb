"""Batch scoring with Ray Data on the test cluster: the same output as local scoring."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from support import DATA
from tabpipe import api
from tabpipe.cli import app
from tabpipe.engine import EngineSpec
from tabpipe.errors import ConfigError
from tabpipe.monitoring.logstore import read_log
from tabpipe.workspace import Workspace

pytestmark = pytest.mark.slow


def test_ray_data_scoring_matches_local_scoring(ray_cluster, titanic_ws: Path, tmp_path: Path):
    rows = pd.read_csv(DATA / "titanic.csv").drop(columns=["Survived"])
    source = tmp_path / "rows.parquet"
    pd.concat([rows] * 3, ignore_index=True).to_parquet(source, row_group_size=500)
    local_out, ray_out = tmp_path / "local.parquet", tmp_path / "ray.parquet"
    with Workspace(titanic_ws) as ws:
        before = _logged(ws)
        api.predict_file(ws, "titanic", source, local_out)
    result = CliRunner().invoke(
        app,
        [
            "predict", "titanic", str(source), "-o", str(ray_out), "--engine", "ray",
            "--address", ray_cluster.address, "--workspace", str(titanic_ws),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    local, on_ray = pd.read_parquet(local_out), pd.read_parquet(ray_out)
    assert len(on_ray) == 3 * len(rows)
    pd.testing.assert_frame_equal(on_ray, local, check_dtype=False)
    assert not list(tmp_path.glob(".*.tmp"))
    with Workspace(titanic_ws) as ws:
        assert _logged(ws) - before == 2 * len(on_ray)  # both runs reach the prediction log


def test_ray_scoring_wants_a_parquet_output(ray_cluster, titanic_ws: Path, tmp_path: Path):
    engine = EngineSpec(kind="ray", address=ray_cluster.address)
    with Workspace(titanic_ws) as ws, pytest.raises(ConfigError, match=r"\.parquet"):
        api.predict_file_on_ray(
            ws, "titanic", [str(DATA / "x.parquet")], tmp_path / "o.csv", engine
        )


def _logged(ws: Workspace) -> int:
    return len(read_log(ws.root, "titanic", with_labels=False).frame)
