"""Many files, one task per file (local engine): the snapshot of reading them all at once."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tabpipe.data.ingest import ingest
from tabpipe.data.sources.spec import FileSource
from tabpipe.engine import LocalEngine
from tabpipe.errors import SourceError
from tabpipe.workspace import Workspace

HERE = Path(__file__).parent


def split(source: Path, folder: Path, parts: int) -> list[Path]:
    """``source`` cut into ``parts`` CSV files of consecutive rows (the raw lines)."""
    header, *lines = source.read_text(encoding="utf-8").splitlines(keepends=True)
    size = -(-len(lines) // parts)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(parts):
        path = folder / f"day-{i:02d}.csv"
        path.write_text(header + "".join(lines[i * size : (i + 1) * size]), encoding="utf-8")
        paths.append(path)
    return paths


@pytest.fixture
def day() -> Path:
    return HERE / "bike_sharing_day.csv"  # the shared dataset's day.csv, byte for byte


def test_a_folder_read_per_file_equals_the_glob_read_at_once(day: Path, tmp_path: Path) -> None:
    split(day, tmp_path / "days", 5)
    (tmp_path / "days" / "notes.md").write_text("not data")  # a folder's other files are skipped
    with Workspace(tmp_path / "ws") as ws:
        at_once, _ = ingest(FileSource(path=str(tmp_path / "days" / "*.csv")), ws.snapshots)
        per_file, report = ingest(
            FileSource(path=str(tmp_path / "days")), ws.snapshots, engine=LocalEngine()
        )
        assert per_file.id == at_once.id  # the same rows, types and order
        assert per_file.rows == len(pd.read_csv(day)) == report.rows
        frame = ws.snapshots.frame(per_file)
    pd.testing.assert_frame_equal(
        frame.drop(columns="dteday"), pd.read_csv(day).drop(columns="dteday")
    )


def test_a_file_whose_types_disagree_is_named(day: Path, tmp_path: Path) -> None:
    paths = split(day, tmp_path / "days", 4)
    frame = pd.read_csv(paths[2]).astype({"temp": object})
    frame.loc[3, "temp"] = "warm"
    frame.to_csv(paths[2], index=False)
    with Workspace(tmp_path / "ws") as ws:
        with pytest.raises(
            SourceError,
            match=r"column 'temp' is double in .*day-00\.csv but string in .*day-02\.csv",
        ):
            ingest(FileSource(path=str(tmp_path / "days")), ws.snapshots, engine=LocalEngine())
        assert ws.snapshots.list() == []  # nothing half-registered
        widened, report = ingest(
            FileSource(path=str(tmp_path / "days"), on_type_change="widen"),
            ws.snapshots,
            engine=LocalEngine(),
        )
        assert widened.rows == len(pd.read_csv(day)) and report.warnings


def test_a_file_that_cannot_be_parsed_is_named(day: Path, tmp_path: Path) -> None:
    paths = split(day, tmp_path / "days", 3)
    with paths[1].open("a", encoding="utf-8") as fh:
        fh.write('999,"2012-13-01,broken\n')
    with Workspace(tmp_path / "ws") as ws:
        with pytest.raises(SourceError, match=r"day-01\.csv.*nothing registered"):
            ingest(FileSource(path=str(tmp_path / "days")), ws.snapshots, engine=LocalEngine())
        assert ws.snapshots.list() == []


def test_a_folder_without_data_files_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with Workspace(tmp_path / "ws") as ws, pytest.raises(SourceError, match="no data file"):
        ingest(FileSource(path=str(tmp_path / "empty")), ws.snapshots, engine=LocalEngine())
