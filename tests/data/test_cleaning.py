"""Cleaning on real messy datasets and on bad input: every decision in the ledger."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tabpipe.config import CleaningSpec, ColumnDeclaration, SourceSpec
from tabpipe.data.cleaning import REASON_COLUMN, ROW_COLUMN, CleaningReport, clean
from tabpipe.data.cleaning.infer import _parse_distinct
from tabpipe.data.ingest import read_source
from tabpipe.data.rules import ColumnRules, clean_value
from tabpipe.errors import SchemaError

DATA = Path(__file__).parent


def read(name: str) -> pd.DataFrame:
    return read_source(SourceSpec(path=str(DATA / name)))


def entries(report: CleaningReport, column: str, action: str) -> list[int]:
    return [e.rows for e in report.actions if e.column == column and e.action == action]


def test_adult_census_question_marks_and_padding() -> None:
    cleaned, removed, report = clean(read("adult_census.csv"), "income")
    assert entries(report, "workclass", "marker_to_missing") == [95]
    assert cleaned["workclass"].isna().sum() == 95
    assert entries(report, "sex", "strip_whitespace") == [1500]
    assert set(cleaned["sex"].dropna()) == {"Male", "Female"}
    assert report.classes == ["<=50K", ">50K"]
    assert removed.empty and report.rows_out == 1500


def test_automobile_question_marks_become_missing_numbers() -> None:
    cleaned, _, report = clean(read("automobile.csv"), "price")
    assert report.task == "regression"
    info = report.column("normalized-losses")
    assert info.kind == "numeric" and info.role == "feature" and info.missing == 37
    assert cleaned["horsepower"].dtype == np.float64
    assert report.contract is not None
    assert report.contract.column("num-of-doors").categories == ["four", "two"]  # type: ignore[union-attr]


def test_horse_colic_missing_target_is_set_aside_and_listed() -> None:
    raw = read("horse_colic.csv")
    cleaned, removed, report = clean(raw, "outcome")
    assert len(removed) == 1 and removed[REASON_COLUMN].tolist() == ["missing target"]
    assert len(cleaned) + len(removed) == len(raw)
    value = raw.iloc[int(removed[ROW_COLUMN][0])]["outcome"]
    assert pd.isna(value) or value == "?"  # ingestion may already read '?' as missing
    assert sum(e.rows_removed for e in report.actions) == 1
    assert report.column("nasogastric_reflux_ph").missing == 246


def test_telco_blank_total_charges_and_boolean_words() -> None:
    cleaned, _, report = clean(read("telco_churn.csv"), "Churn")
    assert report.column("TotalCharges").kind == "numeric"
    assert cleaned["TotalCharges"].isna().sum() == 4
    assert report.column("customerID").kind == "identifier"
    assert report.column("Partner").logical_type == "boolean"
    assert set(cleaned["Partner"]) == {"true", "false"}
    assert report.classes == ["No", "Yes"]  # target labels stay the user's words


def test_bank_unknown_is_kept_unless_declared_missing() -> None:
    frame = read("bank_marketing.csv")
    cleaned, _, _ = clean(frame, "y")
    assert (cleaned["job"] == "unknown").sum() > 0
    declared, _, report = clean(frame, "y", spec=CleaningSpec(missing_markers=["unknown"]))
    assert (declared["job"] == "unknown").sum() == 0
    assert entries(report, "job", "marker_to_missing") == [(frame["job"] == "unknown").sum()]
    strong = [f.column for f in report.findings if f.kind == "strong_predictor"]
    assert strong == ["duration"]  # the known leak: flagged for review, not dropped


def test_bike_sharing_derived_target_parts_are_leakage_suspects() -> None:
    _, _, report = clean(read("bike_sharing_day.csv"), "cnt")
    for name in ("casual", "registered"):
        assert report.column(name).role == "excluded"
        assert "leakage" in (report.column(name).reason or "")
    assert report.column("instant").kind == "identifier"
    assert report.column("dteday").logical_type == "datetime"
    assert report.column("dteday").role == "feature"  # expanded by the features stage
    _kept, _, overridden = clean(
        read("bike_sharing_day.csv"), "cnt", columns={"casual": ColumnDeclaration(role="feature")}
    )
    assert overridden.column("casual").role == "feature"


def test_case_variants_fold_to_the_most_frequent_spelling() -> None:
    frame = pd.DataFrame(
        {"answer": ["yes"] * 5 + ["Yes ", "YES", "no", "No", "maybe"], "y": [0, 1] * 5}
    )
    cleaned, _, report = clean(frame, "y", spec=CleaningSpec())
    assert cleaned["answer"].tolist()[5:] == ["yes", "yes", "no", "no", "maybe"]
    assert entries(report, "answer", "fold_case_variants") == [3]


def test_mixed_formats_currency_percent_units_dates_and_sentinels() -> None:
    n = 40
    frame = pd.DataFrame(
        {
            "price": ["$1,200", "$950", "1,000", "$80"] * (n // 4),
            "share": ["12%", "7.5%", "100%", "0%"] * (n // 4),
            "weight": ["12 kg", "8.5kg", "10 kg", "9 kg"] * (n // 4),
            "when": ["2024-01-05", "05/02/2024", "2024-03-01", "17.04.2024"] * (n // 4),
            "score": [3.0, -999.0, 4.0, 5.0] * (n // 4),
            "y": [0, 1] * (n // 2),
        }
    )
    cleaned, _, report = clean(frame, "y")
    assert cleaned["price"].tolist()[:4] == [1200.0, 950.0, 1000.0, 80.0]
    assert cleaned["share"].tolist()[:4] == [12.0, 7.5, 100.0, 0.0]
    assert cleaned["weight"].tolist()[:4] == [12.0, 8.5, 10.0, 9.0]
    assert cleaned["score"].isna().sum() == n // 4
    assert report.column("when").logical_type == "datetime"
    assert "mixed date formats" in next(e.detail for e in report.actions if e.column == "when")
    assert pd.api.types.is_datetime64_any_dtype(cleaned["when"])


def test_policies_drop_duplicates_outliers_and_impute() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=200)
    x[:3] = [50.0, -40.0, 60.0]
    frame = pd.DataFrame({"x": x, "c": ["a", "b", None, "a"] * 50, "y": [0, 1] * 100})
    frame = pd.concat([frame, frame.iloc[[10, 11]]], ignore_index=True)
    spec = CleaningSpec(duplicates="drop", outliers="drop", impute_categorical="mode")
    cleaned, removed, report = clean(frame, "y", spec=spec)
    assert sorted(removed[REASON_COLUMN].unique()) == [
        "exact duplicate of an earlier row",
        "outlier in 'x'",
    ]
    assert len(cleaned) + len(removed) == len(frame)
    assert sum(e.rows_removed for e in report.actions) == len(removed)
    assert cleaned["c"].isna().sum() == 0
    clipped, _, _ = clean(frame, "y", spec=CleaningSpec(outliers="clip"))
    assert clipped["x"].max() < 50


def test_missing_share_threshold_and_near_constant() -> None:
    n = 300
    frame = pd.DataFrame(
        {
            "mostly_empty": [1.0] + [None] * (n - 1),
            "almost_same": ["a"] * (n - 1) + ["b"],
            "ok": np.arange(n) % 7,
            "y": [0, 1] * (n // 2),
        }
    )
    _, _, report = clean(frame, "y")
    assert "drop_missing_share" in (report.column("mostly_empty").reason or "")
    assert "near-constant" in (report.column("almost_same").reason or "")


def test_near_constant_numbers_share_is_exact() -> None:
    n = 1000
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {  # 996 zeros (99.6%) and 4 other values; 990 sevens (99.0%) and 10 others
            "mostly_zero": np.r_[np.zeros(n - 4), rng.normal(5, 1, 4)],
            "mostly_seven": np.r_[np.full(n - 10, 7.0), rng.normal(5, 1, 10)],
            "y": [0, 1] * (n // 2),
        }
    )
    _, _, report = clean(frame, "y")
    assert "one value in 99.6% of rows" in (report.column("mostly_zero").reason or "")
    assert report.column("mostly_seven").role == "feature"


def test_conflicting_duplicates_are_reported() -> None:
    frame = pd.DataFrame({"x": [1, 1, 2, 3] * 5, "y": [0, 1, 0, 1] * 5})
    _, _, report = clean(frame, "y")
    assert report.conflicting_duplicates == 10


@pytest.mark.parametrize(
    ("frame", "target", "message"),
    [
        (pd.DataFrame({"a": [None, None], "y": [None, None]}), "y", "no values"),
        (pd.DataFrame({"a": [1, 2, 3], "y": ["x", "x", "x"]}), "y", "single value"),
        (pd.DataFrame({"a": [1, 2], "y": [0, 1]}), "z", "not found"),
        (pd.DataFrame({"a": [None] * 4, "y": [0, 1, 0, 1]}), "y", "no usable feature"),
        (pd.DataFrame(columns=["a", "y"]), "y", "no rows"),
    ],
)
def test_bad_input_gives_clear_messages(frame: pd.DataFrame, target: str, message: str) -> None:
    with pytest.raises(SchemaError, match=message):
        clean(frame, target)


def test_odd_but_valid_input_does_not_crash() -> None:
    frame = pd.DataFrame(
        {
            "all_null": [None] * 4,
            "mixed": [1, "two", 3.5, None],
            "unicode": ["naïve ☃", "日本語", "ß" * 5000, "😀"],
            "bad_dates": ["2024-01-01", "not a date", "2024-13-45", None],
            "y": [1.5, float("nan"), 2.5, 3.5],
        }
    )
    cleaned, removed, report = clean(frame, "y")
    assert len(cleaned) == 3 and len(removed) == 1
    assert report.column("all_null").reason == "every value is missing"
    single, _, one = clean(pd.DataFrame({"a": [1], "b": ["x"]}), None)
    assert len(single) == 1 and not one.has_target


@pytest.mark.slow
def test_ten_thousand_columns() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        rng.integers(0, 5, size=(20, 10_000)), columns=[f"c{i}" for i in range(10_000)]
    )
    frame["y"] = [0, 1] * 10
    cleaned, _, report = clean(frame, "y")
    assert cleaned.shape == (20, 10_001)
    assert len(report.columns) == 10_001


def test_distinct_texts_parse_to_the_same_numbers_as_the_serving_rule() -> None:
    rng = np.random.default_rng(3)
    tricky = ["-0", "+.5", "5.", "1e5", "1E-3", "1_000", "inf", "NaN", "?", "N/A", "", " ", "-1"]
    tricky += ["abc", "12a", "\u00a012", "1\u200b", "٣", "--", "1,2,3", "$", "0x10", "1e400"]
    tricky += [" -7.25e+2 ", "123456789012345678901234567890", "0.1", "$-5", "5$"]
    values = [float(v) for v in rng.normal(0, 1e6, 1500)]
    texts = [*tricky, *(repr(v) for v in values), *(f"${v:,.2f}" for v in values)]
    texts += [f"{v:.6e}" for v in values[:500]]
    uniques = list(dict.fromkeys(texts))
    for remove in ("", ",$"):
        rules = ColumnRules(
            kind="numeric", missing_markers=["", "?", "n/a", "-1"], remove_chars=remove
        )
        cleaned, ok = _parse_distinct(uniques, rules)
        want = [clean_value(v, rules) for v in uniques]
        assert ok.tolist() == [isinstance(v, float) for v in want]
        got = np.array([v if isinstance(v, float) else np.inf for v in cleaned])
        expected = np.array([v if isinstance(v, float) else np.inf for v in want])
        np.testing.assert_array_equal(got, expected)
        assert np.array_equal(np.signbit(got), np.signbit(expected))
        assert [v for v in cleaned if not isinstance(v, float)] == [
            v for v in want if not isinstance(v, float)
        ]


def test_changing_the_cleaned_table_leaves_the_input_alone() -> None:
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"x": rng.normal(size=200), "n": np.arange(200), "y": [0, 1] * 100})
    before = frame.copy()
    cleaned, _, _ = clean(frame, "y")
    cleaned.loc[0, "x"] = 1e9
    cleaned.loc[1, "n"] = -5
    pd.testing.assert_frame_equal(frame, before)


def test_regression_target_on_a_table_larger_than_the_leakage_sample() -> None:
    rng = np.random.default_rng(8)
    n = 60_000  # above the 50,000 rows leakage is scored on
    a, b = rng.normal(size=n), rng.normal(size=n)
    frame = pd.DataFrame({"a": a, "b": b, "noise": rng.normal(size=n), "y": a + b})
    _, _, report = clean(frame, "y")
    assert report.task == "regression"
    assert {report.column("a").role, report.column("b").role} == {"excluded"}
    assert "equals the target" in (report.column("a").reason or "")
    assert report.column("noise").role == "feature"


def test_duplicates_are_found_across_row_blocks() -> None:
    rng = np.random.default_rng(9)
    n = 300_000  # hashed in blocks of 262,144 rows on threads
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "c": rng.choice(["a", "b", "c"], n),
            "y": rng.choice(["p", "q"], n),
        }
    )
    copies = [5, 17, 123_456]
    frame.iloc[[n - 1, n - 2, n - 3]] = frame.iloc[copies].to_numpy()  # repeats, far apart
    frame.loc[n - 4, ["x", "c"]] = frame.loc[42, ["x", "c"]].to_list()
    frame.loc[n - 4, "y"] = "q" if frame.loc[42, "y"] == "p" else "p"  # same features, other y
    _, removed, report = clean(frame, "y", spec=CleaningSpec(duplicates="drop"))
    assert report.duplicate_rows == 3 and report.conflicting_duplicates == 2
    assert sorted(removed[ROW_COLUMN].tolist()) == [n - 3, n - 2, n - 1]


def test_repeated_keys_match_pandas_on_many_keys() -> None:
    from tabpipe.data.cleaning.checks import repeated

    rng = np.random.default_rng(10)
    keys = rng.integers(0, 2**63, 400_000, dtype=np.int64).view(np.uint64)
    keys[rng.integers(0, keys.size, 500)] = keys[rng.integers(0, keys.size, 500)]
    expected = pd.Series(keys).duplicated(keep=False).to_numpy()
    assert expected.sum() > 0
    np.testing.assert_array_equal(repeated(keys), expected)
    few = keys[:1000]  # below the counting pass: straight to the hash table
    np.testing.assert_array_equal(repeated(few), pd.Series(few).duplicated(keep=False).to_numpy())


def test_auc_counts_ties_and_missing_scores_like_the_rank_sum() -> None:
    from tabpipe.data.cleaning.checks import auc

    rng = np.random.default_rng(12)
    for _ in range(20):
        n = int(rng.integers(2, 3000))
        scores = rng.integers(0, 6, n).astype(np.float64)
        scores[rng.random(n) < 0.1] = np.nan
        labels = rng.integers(0, 2, n)
        ranks = pd.Series(np.nan_to_num(scores, nan=-np.inf)).rank().to_numpy()
        pos = labels == 1
        n_pos, n_neg = int(pos.sum()), int((~pos).sum())
        expected = (
            0.5
            if not n_pos or not n_neg
            else float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
        )
        assert auc(scores, labels) == expected
