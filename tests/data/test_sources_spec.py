"""Source specs: short forms, kinds, secrets kept out, relative paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from tabpipe.config import (
    FileSource,
    HttpSource,
    MqttSource,
    SnapshotRef,
    SqlSource,
    build_spec,
    load_spec,
)
from tabpipe.errors import ConfigError


def test_short_forms() -> None:
    assert isinstance(build_spec({"source": "a/b.csv", "target": "y"}).source, FileSource)
    assert isinstance(build_spec({"source": {"path": "b.csv"}, "target": "y"}).source, FileSource)
    assert isinstance(build_spec({"source": "cust@latest", "target": "y"}).source, SnapshotRef)
    assert isinstance(build_spec({"source": "cust@2", "target": "y"}).source, SnapshotRef)
    assert build_spec({"source": "data/customers.csv.gz", "target": "y"}).model_name == "customers"


def test_each_kind_from_yaml(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    sources = {
        "file": "source: {kind: file, path: data/x.csv, csv: {delimiter: ';'}}",
        "sql": "source: {kind: sql, url: 'postgresql+psycopg://app@db/sales', table: orders, watermark: updated_at}",
        "http": "source: {kind: http, url: 'http://api/items', records_path: data, pagination: {style: cursor}}",
        "mqtt": "source: {kind: mqtt, topics: [plant/+/temp], window_seconds: 5}",
    }
    kinds = {"file": FileSource, "sql": SqlSource, "http": HttpSource, "mqtt": MqttSource}
    for kind, text in sources.items():
        path = tmp_path / f"{kind}.yaml"
        path.write_text(f"{text}\ntarget: y\n", encoding="utf-8")
        spec = load_spec(path)
        assert isinstance(spec.source, kinds[kind])
    file_spec = load_spec(tmp_path / "file.yaml").source
    assert isinstance(file_spec, FileSource)
    assert file_spec.path == str(tmp_path / "data" / "x.csv")  # relative to the spec's folder


def test_password_in_url_is_refused_and_never_echoed() -> None:
    with pytest.raises(ConfigError) as info:
        build_spec(
            {
                "source": {"kind": "sql", "url": "postgresql://app:hunter2@db/x", "table": "t"},
                "target": "y",
            }
        )
    assert "password_env" in str(info.value)
    assert "hunter2" not in str(info.value)
    # An environment reference in the URL is fine, and describe() shows no secret.
    spec = SqlSource(kind="sql", url="postgresql://app:${PW}@db/x", table="t")
    assert "${PW}" not in str(spec.describe()) and "***" in spec.describe()["url"]


def test_invalid_choices_are_named() -> None:
    with pytest.raises(ConfigError, match="give exactly one of 'table' or 'query'"):
        build_spec(
            {
                "source": {"kind": "sql", "url": "sqlite://", "table": "t", "query": "select 1"},
                "target": "y",
            }
        )
    with pytest.raises(ConfigError, match="header 'Authorization' is secret"):
        build_spec(
            {
                "source": {"kind": "http", "url": "http://x", "headers": {"Authorization": "t"}},
                "target": "y",
            }
        )
    with pytest.raises(ConfigError, match="unsupported encoding"):
        build_spec({"source": {"path": "x.csv", "csv": {"encoding": "cp1252"}}, "target": "y"})
