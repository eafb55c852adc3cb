"""Texts a numeric column sets to missing in training are missing at serving too.

Cleaning judges a column numeric when nearly all its values parse (ICD-9 codes like
250.83 next to a few 'V57' and 'E909'); the texts it set to missing become learned
missing markers, so a request holding one is read as training read it, while a text
training never saw is still refused.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tabpipe.data.cleaning import CleaningReport, clean, infer
from tabpipe.data.cleaning.infer import _parse_distinct
from tabpipe.data.rules import DEFAULT_MISSING_MARKERS, ColumnRules, clean_value
from tabpipe.errors import RequestError
from tabpipe.packaging.signature import ColumnSpec, Signature

RAW = Path(__file__).parents[1] / "raw"


def codes_frame(rows: int = 300) -> pd.DataFrame:
    """A text column of numbers with a few repeated non-number codes (about 1.3%)."""
    numbers = [f"{250 + (i % 97) / 100:.2f}" for i in range(rows)]
    numbers[10] = numbers[50] = numbers[90] = "V57"
    numbers[130] = "E909"
    return pd.DataFrame({"diag": numbers, "y": np.arange(rows) % 2 == 0})


def unparseable(report: CleaningReport, column: str) -> list[str]:
    return [
        e.detail
        for e in report.actions
        if e.column == column and e.action == "unparseable_to_missing"
    ]


def test_texts_set_to_missing_become_markers_serving_replays() -> None:
    cleaned, _, report = clean(codes_frame(), "y")
    info = report.column("diag")
    assert info.kind == "numeric" and info.rules is not None
    assert cleaned["diag"].isna().sum() == 4
    rules = info.rules
    assert {"v57", "e909"} <= set(rules.missing_markers)
    assert set(DEFAULT_MISSING_MARKERS) <= set(rules.missing_markers)
    assert math.isnan(clean_value("V57", rules))
    assert math.isnan(clean_value(" v57 ", rules))
    assert math.isnan(clean_value("e909", rules))
    assert clean_value("X99", rules) == "X99"  # never seen: left for the caller to refuse
    assert clean_value("250.83", rules) == 250.83
    [detail] = unparseable(report, "diag")
    assert "'V57'" in detail and "also treated as missing at predict time" in detail


def test_columns_without_stray_text_keep_the_default_markers() -> None:
    frame = codes_frame().assign(diag=lambda f: f["diag"].where(~f["diag"].str[0].isin(["V", "E"])))
    _, _, report = clean(frame, "y")
    rules = report.column("diag").rules
    assert rules is not None and rules.missing_markers == sorted(DEFAULT_MISSING_MARKERS)
    assert unparseable(report, "diag") == []


def test_learned_markers_are_bounded_by_frequency(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(infer, "LEARNED_MARKERS", 2)
    frame = codes_frame(400)
    frame.loc[200:203, "diag"] = ["Z1", "Z1", "z1 ", "Q7"]  # 'Z1' thrice once folded
    _, _, report = clean(frame, "y")
    rules = report.column("diag").rules
    assert rules is not None
    assert set(rules.missing_markers) - set(DEFAULT_MISSING_MARKERS) == {"v57", "z1"}
    assert clean_value("Q7", rules) == "Q7"  # beyond the cap: refused at serving
    [detail] = unparseable(report, "diag")
    assert "the 2 most frequent of 4 distinct texts" in detail
    assert "the other 2 are refused" in detail


def test_arrow_pass_agrees_with_the_serving_rule_on_learned_markers() -> None:
    rules = ColumnRules(kind="numeric", missing_markers=[*DEFAULT_MISSING_MARKERS, "v57", "é1"])
    uniques = [f"{i}.5" for i in range(1200)] + ["V57", " v57 ", "É1", "é1", "X99", "-1", "?"]
    cleaned, ok = _parse_distinct(uniques, rules)  # over 1000 values: the Arrow pass
    want = [clean_value(v, rules) for v in uniques]
    assert [repr(v) for v in cleaned] == [repr(v) for v in want]
    assert ok.tolist() == [isinstance(v, float) for v in want]


def test_model_copy_does_not_keep_a_stale_marker_set() -> None:
    rules = ColumnRules(kind="numeric")
    assert clean_value("V57", rules) == "V57"
    learned = rules.model_copy(update={"missing_markers": [*rules.missing_markers, "v57"]})
    assert math.isnan(clean_value("V57", learned))
    assert clean_value("V57", rules) == "V57"
    assert learned == ColumnRules(kind="numeric", missing_markers=learned.missing_markers)


def test_diabetes_icd9_codes_clean_and_score_alike() -> None:
    """The UCI diabetes data: 'V57' in diag_1 is missing in training and in a request."""
    raw = pd.read_csv(RAW / "diabetic_data-head.csv.gz", nrows=3000)
    raw = raw.drop(columns=["encounter_id", "patient_nbr"])
    cleaned, _, report = clean(raw, "readmitted")
    rules = report.column("diag_1").rules
    assert rules is not None and rules.kind == "numeric" and "v57" in rules.missing_markers
    coded = raw["diag_1"].astype(str).str.match(r"^[VE]\d")
    assert coded.any() and cleaned.loc[coded, "diag_1"].isna().all()
    signature = Signature(columns=[ColumnSpec(name="diag_1", kind="numeric", rules=rules)])
    row = int(np.flatnonzero(coded)[0])
    one = signature.check({"diag_1": [raw["diag_1"].iloc[row]]})
    assert math.isnan(float(one.feeds["diag_1"][0, 0]))
    every = signature.check({"diag_1": raw["diag_1"].tolist()})
    assert np.isnan(every.feeds["diag_1"][coded.to_numpy(), 0]).all()
    with pytest.raises(RequestError, match=r"column 'diag_1', row 1: expected a number, got 'X99'"):
        signature.check({"diag_1": ["250.83", "X99"]})
