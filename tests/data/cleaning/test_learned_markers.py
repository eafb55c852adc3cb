"""Texts a numeric column sets to missing in training are missing at serving too.

Cleaning judges a column numeric when nearly all its values parse (lab results next to
a few 'pending' and 'Lab error'); the texts it set to missing become learned missing
markers, so a request holding one is read as training read it, while a text training
never saw is still refused. Strays shaped like codes ('V57', 'E909' among ICD-9 codes)
make the column categorical instead.
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
from tabpipe.packaging.signature import ColumnSpec, Signature

RAW = Path(__file__).parents[1] / "raw"


def codes_frame(rows: int = 300) -> pd.DataFrame:
    """A text column of numbers with a few repeated non-number texts (about 1.3%)."""
    numbers = [f"{250 + (i % 97) / 100:.2f}" for i in range(rows)]
    numbers[10] = numbers[50] = numbers[90] = "pending"
    numbers[130] = "Lab error"
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
    assert {"pending", "lab error"} <= set(rules.missing_markers)
    assert set(DEFAULT_MISSING_MARKERS) <= set(rules.missing_markers)
    assert math.isnan(clean_value("pending", rules))
    assert math.isnan(clean_value(" PENDING ", rules))
    assert math.isnan(clean_value("lab error", rules))
    assert clean_value("broken", rules) == "broken"  # never seen: left for the caller to refuse
    assert clean_value("250.83", rules) == 250.83
    [detail] = unparseable(report, "diag")
    assert "'pending'" in detail and "also treated as missing at predict time" in detail


def test_columns_without_stray_text_keep_the_default_markers() -> None:
    frame = codes_frame().assign(diag=lambda f: f["diag"].where(f["diag"].str[0].str.isdigit()))
    _, _, report = clean(frame, "y")
    rules = report.column("diag").rules
    assert rules is not None and rules.missing_markers == sorted(DEFAULT_MISSING_MARKERS)
    assert unparseable(report, "diag") == []


def test_learned_markers_are_bounded_by_frequency(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(infer, "LEARNED_MARKERS", 2)
    frame = codes_frame(400)
    frame.loc[200:203, "diag"] = ["tbd", "TBD", "tbd ", "void"]  # 'tbd' thrice once folded
    _, _, report = clean(frame, "y")
    rules = report.column("diag").rules
    assert rules is not None
    assert set(rules.missing_markers) - set(DEFAULT_MISSING_MARKERS) == {"pending", "tbd"}
    assert clean_value("void", rules) == "void"  # beyond the cap: refused at serving
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


def test_stray_codes_make_a_column_of_codes_categorical() -> None:
    """The UCI diabetes data: diag_1 is ICD-9 codes, nearly all numbers (250.83) with a
    few 'V57' and 'E909'. It is a column of codes: categorical, so a code training never
    saw ('V51') is an unseen category at serving, not a refused number."""
    raw = pd.read_csv(RAW / "diabetic_data-head.csv.gz", nrows=3000)
    raw = raw.drop(columns=["encounter_id", "patient_nbr"])
    assert pd.to_numeric(raw["diag_1"], errors="coerce").notna().mean() > 0.98
    cleaned, _, report = clean(raw, "readmitted")
    info = report.column("diag_1")
    assert info.kind == "categorical"
    coded = raw["diag_1"].astype(str).str.match(r"^[VE]\d")
    assert coded.any() and cleaned.loc[coded, "diag_1"].notna().all()
    signature = Signature(columns=[ColumnSpec(name="diag_1", kind="categorical", rules=info.rules)])
    checked = signature.check({"diag_1": ["V57", "V51", "250.83"]})
    assert checked.feeds["diag_1"].shape == (3, 1)


def test_a_single_code_shaped_stray_is_still_a_stray() -> None:
    frame = codes_frame()
    frame.loc[130, "diag"] = "V57"  # one code-shaped text beside 'pending': a typo, not codes
    _, _, report = clean(frame, "y")
    assert report.column("diag").kind == "numeric"
