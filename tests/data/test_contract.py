"""The inferred contract, the user's declarations over it, and validation against it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tabpipe.config import ColumnDeclaration, SourceSpec, build_spec
from tabpipe.data.cleaning import clean
from tabpipe.data.contract import DataContract, load_contract
from tabpipe.data.ingest import read_source
from tabpipe.data.validation import (
    ContractViolationError,
    raise_for_errors,
    validate_frame,
    validate_records,
)
from tabpipe.errors import ConfigError, DataError
from tabpipe.stages import TRAINING_STAGES

DATA = Path(__file__).parent


@pytest.fixture(scope="module")
def automobile() -> pd.DataFrame:
    return read_source(SourceSpec(path=str(DATA / "automobile.csv")))


@pytest.fixture(scope="module")
def contract(automobile: pd.DataFrame) -> DataContract:
    _, _, report = clean(automobile, "price")
    assert report.contract is not None
    return report.contract


def test_inferred_contract(contract: DataContract) -> None:
    doors = contract.column("num-of-doors")
    assert doors is not None and doors.logical_type == "categorical" and doors.nullable
    losses = contract.column("normalized-losses")
    assert losses is not None and losses.logical_type == "integer"
    assert losses.minimum == 65 and losses.maximum == 256
    width = contract.column("width")
    assert width is not None and width.logical_type == "numeric" and not width.nullable
    assert contract.column("price").role == "target"  # type: ignore[union-attr]


def test_a_later_snapshot_is_validated(automobile: pd.DataFrame, contract: DataContract) -> None:
    later = automobile.astype({"width": object, "length": object})
    later.loc[0:4, "width"] = "wide"
    later.loc[5, "make"] = "tesla"
    later.loc[6, "length"] = "999"
    later = later.drop(columns=["bore"])
    report = validate_frame(later, contract)
    found = {(v.column, v.rule): v for v in report.violations}
    assert found["bore", "required"].severity == "error"
    assert found["width", "type"].count == 5 and found["width", "type"].examples == ["'wide'"]
    assert found["make", "categories"].severity == "warning"
    assert found["length", "maximum"].severity == "warning"
    assert not report.ok
    with pytest.raises(ContractViolationError, match="bore"):
        raise_for_errors(report)


def test_the_same_snapshot_passes(automobile: pd.DataFrame, contract: DataContract) -> None:
    report = validate_frame(automobile, contract)
    assert report.ok and report.warnings == 0, report.summary()


def test_declarations_override_and_become_errors(automobile: pd.DataFrame) -> None:
    decls = {
        "width": ColumnDeclaration(minimum=60.0, maximum=70.0),
        "fuel-type": ColumnDeclaration(categories=["gas"]),
        "make": ColumnDeclaration(role="exclude", reason="brand is not known in advance"),
    }
    _, _, report = clean(automobile, "price", columns=decls)
    assert report.contract is not None
    width = report.contract.column("width")
    assert width is not None and width.declared == ["maximum", "minimum"]
    assert report.column("make").role == "excluded"
    result = validate_frame(automobile, report.contract.declared_only())
    rules = {(v.column, v.rule, v.severity) for v in result.violations}
    assert ("width", "maximum", "error") in rules
    assert ("fuel-type", "categories", "error") in rules


def test_prediction_request_is_validated(contract: DataContract) -> None:
    report = validate_records({"width": ["64.1", "x"], "make": ["audi", "nobody"]}, contract)
    by = report.by_column()
    assert by["width"][0].rule == "type"
    assert by["make"][0].rule == "categories"
    assert "price" not in by  # the target is not asked of a request


def test_spec_declarations_load_and_bad_keys_fail() -> None:
    spec = build_spec(
        {
            "source": {"path": "x.csv"},
            "target": "y",
            "columns": {"age": {"type": "integer", "minimum": 0}},
            "cleaning": {"outliers": "clip", "missing_markers": ["unknown"]},
        }
    )
    assert spec.columns["age"].minimum == 0 and spec.cleaning.outliers == "clip"
    with pytest.raises(ConfigError, match="outlier"):
        build_spec({"source": {"path": "x"}, "target": "y", "cleaning": {"outlier": "clip"}})


def test_clean_stage_stops_on_a_broken_declaration(tmp_path: Path) -> None:
    frame = pd.DataFrame({"age": [10, 20, -5, 40] * 10, "y": [0, 1] * 20})
    spec = build_spec(
        {"source": {"path": "x.csv"}, "target": "y", "columns": {"age": {"minimum": 0}}}
    )
    stage = next(s for s in TRAINING_STAGES if s.name == "clean")
    with pytest.raises(ContractViolationError, match="below the minimum"):
        stage.fn(spec, frame)


def test_contract_file_round_trip(tmp_path: Path, contract: DataContract) -> None:
    path = tmp_path / "contract.json"
    path.write_text(contract.model_dump_json(), encoding="utf-8")
    assert load_contract(path) == contract
    (tmp_path / "bad.json").write_text("{}", encoding="utf-8")
    with pytest.raises(DataError, match="not a tabpipe data contract"):
        load_contract(tmp_path / "bad.json")
