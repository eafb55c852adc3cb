from __future__ import annotations

from pathlib import Path

import pytest

from tabpipe.config import build_spec, load_spec
from tabpipe.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pipeline.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_load_resolves_source_relative_to_the_spec(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, "source: data/x.csv\ntarget: y\ntime_budget: 5\n"))
    assert spec.source.path == str((tmp_path / "data" / "x.csv").resolve())
    assert spec.model_name == "x"
    assert spec.time_budget == 5


def test_unknown_key_names_the_key_and_lists_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_spec(write(tmp_path, "source: x.csv\ntarget: y\ntime_budgt: 5\n"))
    message = str(info.value)
    assert "unknown key 'time_budgt'" in message
    assert "time_budget" in message and "target" in message


def test_unknown_nested_key_lists_the_nested_choices(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_spec(write(tmp_path, "source: x.csv\ntarget: y\nsplit: {tests: 0.2}\n"))
    assert "split.tests" in str(info.value)
    assert "test_size" in str(info.value)


def test_bad_task_lists_choices() -> None:
    with pytest.raises(ConfigError) as info:
        build_spec({"source": {"path": "x.csv"}, "target": "y", "task": "clustering"})
    assert "'binary'" in str(info.value) and "'regression'" in str(info.value)


def test_metric_must_fit_the_task() -> None:
    with pytest.raises(ConfigError) as info:
        build_spec(
            {"source": {"path": "x.csv"}, "target": "y", "task": "regression", "metric": "roc_auc"}
        )
    assert "rmse" in str(info.value)


def test_unknown_metric_lists_metrics() -> None:
    with pytest.raises(ConfigError, match="valid metrics"):
        build_spec({"source": {"path": "x.csv"}, "target": "y", "metric": "auc"})


def test_missing_target_is_named() -> None:
    with pytest.raises(ConfigError, match="missing required key 'target'"):
        build_spec({"source": {"path": "x.csv"}})


def test_not_yaml_mapping(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="mapping"):
        load_spec(write(tmp_path, "- a\n- b\n"))


def test_fingerprint_is_stable_and_sensitive() -> None:
    a = build_spec({"source": {"path": "x.csv"}, "target": "y"})
    b = build_spec({"source": {"path": "x.csv"}, "target": "y"})
    c = build_spec({"source": {"path": "x.csv"}, "target": "y", "seed": 1})
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()
