"""File sources: the shared datasets in their raw forms, other formats, bad input."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import fsspec
import pandas as pd
import pyarrow as pa
import pytest

from tabpipe.config import FileSource
from tabpipe.data.sources.spec import CsvOptions
from tabpipe.errors import SourceError
from tabpipe.workspace import Workspace

HERE = Path(__file__).parent
#: The first lines of three raw files of the shared datasets, byte for byte (their quirks:
#: ", " separators with "?" markers and no header; ";" with quotes and CRLF; gzip).
RAW = HERE / "raw"
ADULT_COLUMNS = [
    "age",
    "workclass",
    "fnlwgt",
    "education",
    "education_num",
    "marital_status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "capital_gain",
    "capital_loss",
    "hours_per_week",
    "native_country",
    "income",
]


def table_dirs(ws: Workspace) -> list[Path]:
    folder = ws.artifacts.root / "table"
    return sorted(folder.iterdir()) if folder.exists() else []


def test_adult_census_comma_space_no_header_question_marks(workspace: Workspace) -> None:
    source = FileSource(
        path=str(RAW / "adult-train-head.csv"),
        csv=CsvOptions(columns=tuple(ADULT_COLUMNS)),
        name="adult",
    )
    record, report = workspace.ingest_report(source)
    assert (record.rows, record.columns) == (3000, 15)
    frame = workspace.snapshots.frame(record)
    # ', ' separator detected: no leading spaces; '?' is a missing value.
    assert frame["workclass"].isna().sum() == 192
    assert frame["occupation"].isna().sum() == 192
    assert not frame["workclass"].dropna().str.startswith(" ").any()
    assert set(frame["income"]) == {"<=50K", ">50K"}
    assert record.schema["age"] == "BIGINT"
    assert report.bad_rows == 0


def test_bank_marketing_semicolon_quoted_crlf(workspace: Workspace) -> None:
    path = RAW / "bank-additional-head.csv"
    record, _ = workspace.ingest_report(FileSource(path=str(path)))
    assert (record.rows, record.columns) == (1200, 21)
    assert record.schema["emp.var.rate"] == "DOUBLE"
    frame = workspace.snapshots.frame(record)
    assert set(frame["y"]) == {"yes", "no"}  # no quotes left, no booleans made up


def test_gzip_and_zstd_give_the_same_id_as_plain(workspace: Workspace, tmp_path: Path) -> None:
    plain = tmp_path / "titanic.csv"
    shutil.copy(HERE / "titanic.csv", plain)
    gz = tmp_path / "titanic.csv.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    zst = tmp_path / "titanic.csv.zst"
    with pa.CompressedOutputStream(str(zst), "zstd") as out:
        out.write(plain.read_bytes())
    ids = {workspace.ingest_report(FileSource(path=str(p)))[0].id for p in (plain, gz, zst)}
    assert len(ids) == 1
    assert len(table_dirs(workspace)) == 1  # identical data: one copy


def test_diabetes_csv_gz(workspace: Workspace) -> None:
    path = RAW / "diabetic_data-head.csv.gz"
    record, _ = workspace.ingest_report(FileSource(path=str(path)))
    assert record.rows == 4000
    assert record.schema["encounter_id"] == "BIGINT"


def test_same_rows_in_other_formats_share_the_id(workspace: Workspace, tmp_path: Path) -> None:
    frame = pd.read_csv(HERE / "penguins.csv").dropna().reset_index(drop=True)
    frame["flipper_length_mm"] = frame["flipper_length_mm"].astype("int64")
    frame["body_mass_g"] = frame["body_mass_g"].astype("int64")
    frame.to_csv(tmp_path / "p.csv", index=False)
    frame.to_csv(tmp_path / "p.tsv", sep="\t", index=False)
    frame.to_parquet(tmp_path / "p.parquet", index=False)
    frame.to_json(tmp_path / "p.jsonl", orient="records", lines=True)
    frame.to_json(tmp_path / "p.json", orient="records")
    frame.to_excel(tmp_path / "p.xlsx", index=False)
    records = {
        suffix: workspace.ingest_report(FileSource(path=str(tmp_path / f"p.{suffix}")))[0]
        for suffix in ("csv", "tsv", "parquet", "jsonl", "json", "xlsx")
    }
    assert {r.rows for r in records.values()} == {len(frame)}
    assert len({r.id for r in records.values()}) == 1, {k: r.schema for k, r in records.items()}


def test_glob_of_files_concatenates_in_name_order(workspace: Workspace, tmp_path: Path) -> None:
    frame = pd.read_csv(HERE / "titanic.csv")
    for i, part in enumerate((frame.iloc[:300], frame.iloc[300:600], frame.iloc[600:])):
        part.to_csv(tmp_path / f"part-{i}.csv", index=False)
    record, _ = workspace.ingest_report(FileSource(path=str(tmp_path / "part-*.csv")))
    assert record.rows == len(frame)
    got = workspace.snapshots.frame(record)
    assert got["PassengerId"].tolist() == frame["PassengerId"].tolist()


def test_type_change_between_files_fails_or_widens(workspace: Workspace, tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("id,value\n1,10\n2,20\n", encoding="utf-8")
    (tmp_path / "b.csv").write_text("id,value\n3,ten\n4,twenty\n", encoding="utf-8")
    pattern = str(tmp_path / "*.csv")
    with pytest.raises(
        SourceError, match=r"column 'value' is BIGINT in .*a\.csv but VARCHAR in .*b\.csv"
    ):
        workspace.ingest_report(FileSource(path=pattern))
    assert workspace.snapshots.list() == []
    record, report = workspace.ingest_report(FileSource(path=pattern, on_type_change="widen"))
    assert record.schema["value"] == "VARCHAR" and record.rows == 4
    assert any("widened" in w and "'value'" in w for w in report.warnings)


def write_malformed(path: Path) -> None:
    lines = ["a,b,c"] + [f"{i},{i * 2},x{i}" for i in range(40)]
    lines.insert(5, "99,98")  # too few fields
    lines.insert(9, "97,96,w,extra")  # too many fields
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_malformed_rows_fail_with_position_and_cause(workspace: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    write_malformed(path)
    with pytest.raises(SourceError) as info:
        workspace.ingest_report(FileSource(path=str(path)))
    message = str(info.value)
    assert "2 bad row(s)" in message and "line 6" in message and "MISSING COLUMNS" in message
    assert "bad_rows: quarantine" in message
    assert workspace.snapshots.list() == []
    assert list(workspace.artifacts.tmp.iterdir()) == []  # staging removed


def test_malformed_rows_quarantined_and_counted(workspace: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    write_malformed(path)
    record, report = workspace.ingest_report(FileSource(path=str(path), bad_rows="quarantine"))
    assert record.rows == 40
    assert report.bad_rows == 2
    assert [s.raw for s in report.bad_row_samples] == ["99,98", "97,96,w,extra"]
    assert report.quarantine is not None
    quarantined = pd.read_json(report.quarantine, lines=True)
    assert quarantined["raw"].tolist() == ["99,98", "97,96,w,extra"]


def test_error_budget_exceeded_registers_nothing(workspace: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    write_malformed(path)
    source = FileSource(path=str(path), bad_rows="quarantine", max_bad_fraction=0.01)
    with pytest.raises(SourceError, match="exceed the error budget"):
        workspace.ingest_report(source)
    assert workspace.snapshots.list() == [] and table_dirs(workspace) == []


def test_mixed_encodings(workspace: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    head = "".join(f"{i},caf\u00e9 {i}\n" for i in range(30)).encode("utf-8")
    path.write_bytes(b"id,name\n" + head + b"30,na\xefve\n")  # one latin-1 line
    with pytest.raises(SourceError, match=r"line 32.*INVALID ENCODING"):
        workspace.ingest_report(FileSource(path=str(path)))
    record, report = workspace.ingest_report(FileSource(path=str(path), bad_rows="quarantine"))
    assert record.rows == 30 and report.bad_rows == 1
    latin = tmp_path / "latin.csv"
    latin.write_bytes("id,name\n1,caf\u00e9\n2,na\u00efve\n".encode("latin-1"))
    record, report = workspace.ingest_report(FileSource(path=str(latin)))
    assert workspace.snapshots.frame(record)["name"].tolist() == ["caf\u00e9", "na\u00efve"]
    assert any("latin-1" in w for w in report.warnings)


def test_declared_options(workspace: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "odd.txt"
    path.write_text("# exported\nx|y\n1|-\n2|b\n", encoding="utf-8")
    source = FileSource(
        path=str(path),
        format="csv",
        csv=CsvOptions(delimiter="|", skip_rows=1, header=True, na_values=("-",)),
    )
    frame = workspace.snapshots.frame(workspace.ingest_report(source)[0])
    assert frame.columns.tolist() == ["x", "y"]
    assert frame["y"].isna().tolist() == [True, False]


def test_jsonl_bad_lines_and_nested_objects(workspace: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(
        '{"id": 1, "geo": {"lat": 1.5, "lon": 2.5}}\n{oops\n{"id": 2, "geo": {"lat": 3.5}}\n',
        encoding="utf-8",
    )
    with pytest.raises(SourceError, match="line 2: not JSON"):
        workspace.ingest_report(FileSource(path=str(path)))
    record, report = workspace.ingest_report(
        FileSource(path=str(path), bad_rows="quarantine", max_bad_fraction=0.5)
    )
    assert record.rows == 2 and report.bad_rows == 1
    assert set(record.schema) == {"id", "geo.lat", "geo.lon"}


def test_fsspec_url(workspace: Workspace) -> None:
    fs = fsspec.filesystem("memory")
    fs.pipe("/tabpipe-test/titanic.csv", (HERE / "titanic.csv").read_bytes())
    record, _ = workspace.ingest_report(FileSource(path="memory://tabpipe-test/titanic.csv"))
    local, _ = workspace.ingest_report(FileSource(path=str(HERE / "titanic.csv")))
    assert record.id == local.id and record.rows == 891


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (None, "no such file"),
        (b"", "the file is empty"),
        (b"a,b\n", "holds a header but no data rows"),
    ],
)
def test_missing_empty_and_header_only(
    workspace: Workspace, tmp_path: Path, content: bytes | None, match: str
) -> None:
    path = tmp_path / "x.csv"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SourceError, match=match):
        workspace.ingest_report(FileSource(path=str(path)))
    assert workspace.snapshots.list() == []
