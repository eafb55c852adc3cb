"""Local batch scoring streams a file batch by batch: the same rows as scoring it whole."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from support import DATA
from tabpipe import api
from tabpipe.config import SourceSpec
from tabpipe.data.ingest import read_source
from tabpipe.errors import RequestError
from tabpipe.monitoring.logstore import read_log
from tabpipe.registry import Registry
from tabpipe.serving.batch import score_file
from tabpipe.serving.runtime import load_predictor
from tabpipe.workspace import Workspace


def _logged(ws: Workspace) -> int:
    return len(read_log(ws.root, "titanic", with_labels=False).frame)


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_batches_give_the_rows_of_the_whole_file(
    titanic_ws: Path, tmp_path: Path, suffix: str
) -> None:
    source = DATA / "titanic.csv"
    whole = read_source(SourceSpec(path=str(source)))  # the file in memory, in one check
    with Workspace(titanic_ws) as ws:
        expected = api.score(whole, Registry(ws).resolve("titanic").path)
        before = _logged(ws)
        rows = api.score_file(ws, "titanic", source, tmp_path / f"out{suffix}", batch_rows=100)
        assert _logged(ws) - before == rows == len(whole)  # every batch is logged
    out = tmp_path / f"out{suffix}"
    got = pd.read_parquet(out) if suffix == ".parquet" else pd.read_csv(out)
    if suffix == ".csv":
        expected = pd.read_csv(_as_csv(expected, tmp_path / "expected.csv"))
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_parquet_file_streams_as_its_csv_does(titanic_ws: Path, tmp_path: Path) -> None:
    source = tmp_path / "rows.parquet"
    read_source(SourceSpec(path=str(DATA / "titanic.csv"))).to_parquet(source, row_group_size=128)
    with Workspace(titanic_ws) as ws:
        from_csv = api.predict_file(ws, "titanic", DATA / "titanic.csv", tmp_path / "a.parquet")
        from_parquet = api.predict_file(ws, "titanic", source, tmp_path / "b.parquet")
    pd.testing.assert_frame_equal(from_parquet, from_csv)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "b.parquet"), from_csv)


def test_a_bad_value_names_its_row_in_the_file_and_writes_nothing(
    titanic_ws: Path, tmp_path: Path
) -> None:
    frame = pd.read_csv(DATA / "titanic.csv").astype({"Age": object})
    frame.loc[250, "Age"] = "old"
    source = tmp_path / "bad.csv"
    frame.to_csv(source, index=False)
    output = tmp_path / "out.parquet"
    with Workspace(titanic_ws) as ws:
        predictor = load_predictor(Registry(ws).resolve("titanic").path, "onnx")
    with pytest.raises(RequestError, match=r"column 'Age', row 250: expected a number, got 'old'"):
        score_file(predictor, source, output, batch_rows=100)
    assert not output.exists() and not list(tmp_path.glob(".*.tmp"))


def _as_csv(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path
