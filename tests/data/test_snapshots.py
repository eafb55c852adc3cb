"""Snapshots: ids, references, diff, SQL, atomic registration, use as a pipeline source."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest

from tabpipe.config import FileSource, SnapshotRef, build_spec
from tabpipe.data.snapshots import describe_parquet
from tabpipe.errors import NotFoundError, SourceError
from tabpipe.workspace import Workspace

HERE = Path(__file__).parent
CHURN = HERE.parents[1] / "examples" / "data" / "churn.csv"


def test_record_schema_counts_and_source(workspace: Workspace) -> None:
    record, frame = workspace.ingest(FileSource(path=str(CHURN)))
    assert (record.rows, record.columns) == frame.shape == (7043, 21)
    assert record.name == "churn"
    assert record.source["kind"] == "file" and record.source["path"] == str(CHURN)
    assert record.schema["tenure"] == "BIGINT" and record.schema["Churn"] == "VARCHAR"
    assert set(frame["Churn"]) == {"Yes", "No"}  # words stay words, not booleans
    assert (record.path / "report.json").exists() and record.data.exists()


def test_id_depends_on_values_and_order(workspace: Workspace, tmp_path: Path) -> None:
    base = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    variants = {
        "same": base,
        "value": base.assign(a=[1, 2, 4]),
        "order": base.iloc[[1, 0, 2]],
        "name": base.rename(columns={"b": "c"}),
        "type": base.assign(a=[1.0, 2.0, 3.0]),
    }
    ids = {}
    for key, frame in variants.items():
        path = tmp_path / f"{key}.parquet"
        frame.to_parquet(path, index=False)
        ids[key] = describe_parquet(path)[0]
    assert len(set(ids.values())) == len(ids)
    base.to_parquet(tmp_path / "again.parquet", index=False, row_group_size=1)
    assert describe_parquet(tmp_path / "again.parquet")[0] == ids["same"]  # layout-independent


def test_references_latest_nth_prefix(workspace: Workspace, tmp_path: Path) -> None:
    first = tmp_path / "v1" / "customers.csv"
    second = tmp_path / "v2" / "customers.csv"
    for path, rows in ((first, 3), (second, 5)):
        path.parent.mkdir()
        pd.DataFrame({"id": range(rows)}).to_csv(path, index=False)
    one, _ = workspace.ingest_report(FileSource(path=str(first)))
    two, _ = workspace.ingest_report(FileSource(path=str(second)))
    store = workspace.snapshots
    assert store.resolve("customers@latest").id == two.id
    assert store.resolve("customers@1").id == one.id
    assert store.resolve(two.id[:8]).id == two.id
    with pytest.raises(NotFoundError, match=r"versions 1..2"):
        store.resolve("customers@3")
    with pytest.raises(NotFoundError, match="known names: customers"):
        store.resolve("orders@latest")
    diff = store.diff(one, two)
    assert (diff.rows_old, diff.rows_new, diff.row_change) == (3, 5, 2)
    assert diff.added == diff.removed == [] and diff.type_changes == {}


def test_diff_schema_changes(workspace: Workspace, tmp_path: Path) -> None:
    old = tmp_path / "old" / "t.csv"
    new = tmp_path / "new" / "t.csv"
    old.parent.mkdir()
    new.parent.mkdir()
    old.write_text("a,b,c\n1,2,x\n", encoding="utf-8")
    new.write_text("a,b,d\n1,2.5,y\n2,3,z\n", encoding="utf-8")
    r1, _ = workspace.ingest_report(FileSource(path=str(old)))
    r2, _ = workspace.ingest_report(FileSource(path=str(new)))
    diff = workspace.snapshots.diff(r1, r2)
    assert diff.added == ["d"] and diff.removed == ["c"]
    assert diff.type_changes == {"b": ("BIGINT", "DOUBLE")}


def test_sql_over_snapshots(workspace: Workspace) -> None:
    workspace.ingest_report(FileSource(path=str(HERE / "titanic.csv")))
    result = workspace.snapshots.sql(
        "select Sex, count(*) as n from titanic group by Sex order by Sex"
    )
    assert result.to_dict("list") == {"Sex": ["female", "male"], "n": [314, 577]}
    with pytest.raises(SourceError, match="tables available: titanic"):
        workspace.snapshots.sql("select * from nope")


def test_leftover_staging_and_incomplete_folder_are_never_registered(
    workspace: Workspace,
) -> None:
    # What a killed ingest leaves: a staging folder, and a table folder without .complete.
    dead, recent = (
        workspace.artifacts.tmp / "snapshot-dead",
        workspace.artifacts.tmp / "snapshot-live",
    )
    dead.mkdir()
    recent.mkdir()
    os.utime(dead, (time.time() - 2 * 86400, time.time() - 2 * 86400))
    record, _ = workspace.ingest_report(FileSource(path=str(HERE / "penguins.csv")))
    data = record.path
    (data / ".complete").unlink()
    shutil.copy(data / "data.parquet", data / "half.parquet")
    # The metadata row exists but the artifact is incomplete: re-ingest repairs it.
    again, report = workspace.ingest_report(FileSource(path=str(HERE / "penguins.csv")))
    assert again.id == record.id and (data / ".complete").exists()
    assert not (data / "half.parquet").exists()
    assert [r.id for r in workspace.snapshots.list()] == [record.id]
    assert not report.reused
    assert not dead.exists() and recent.exists()  # a day-old staging folder is cleaned up


def test_snapshot_reference_as_pipeline_source(workspace: Workspace) -> None:
    record, frame = workspace.ingest(FileSource(path=str(HERE / "penguins.csv")))
    spec = build_spec({"source": "penguins@latest", "target": "species"})
    assert isinstance(spec.source, SnapshotRef)
    assert spec.model_name == "penguins"
    again, same = workspace.ingest(spec.source)
    assert again.id == record.id
    pd.testing.assert_frame_equal(same, frame)
    by_id = build_spec({"source": record.id, "target": "species"})
    assert workspace.ingest(by_id.source)[0].id == record.id
