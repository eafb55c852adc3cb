"""The profile's numbers against plain pandas, and its cross-column views."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tabpipe.config import CleaningSpec, SourceSpec
from tabpipe.data.cleaning import clean
from tabpipe.data.cleaning.core import clean_table
from tabpipe.data.ingest import read_source
from tabpipe.eda.explore import explore
from tabpipe.eda.profile import SAMPLE, Profile, histogram, profile

DATA = Path(__file__).parents[1] / "data"


@pytest.fixture(scope="module")
def titanic() -> tuple[pd.DataFrame, Profile]:
    cleaned, _, report = clean(read_source(SourceSpec(path=str(DATA / "titanic.csv"))), "Survived")
    half = len(cleaned) // 2
    return cleaned, profile(cleaned, report, train=cleaned[:half], test=cleaned[half:])


def test_column_statistics_match_pandas(titanic: tuple[pd.DataFrame, Profile]) -> None:
    cleaned, prof = titanic
    age = next(c for c in prof.columns if c.name == "Age")
    assert age.count == cleaned["Age"].notna().sum()
    assert age.mean == pytest.approx(cleaned["Age"].mean())
    assert age.std == pytest.approx(cleaned["Age"].std())
    assert age.histogram is not None and sum(age.histogram.counts) == age.count
    sex = next(c for c in prof.columns if c.name == "Sex")
    assert sex.top is not None and dict(zip(sex.top.values, sex.top.counts, strict=True)) == (
        cleaned["Sex"].value_counts().to_dict()
    )
    assert prof.missing_cells == cleaned.isna().sum().sum()
    ages = cleaned["Age"].dropna()
    z = (ages - ages.mean()) / ages.std()
    assert age.skew == pytest.approx(float((z**3).mean()))
    assert [age.q25, age.q50, age.q75] == pytest.approx(ages.quantile([0.25, 0.5, 0.75]).tolist())
    assert age.min == f"{ages.min():.6g}" and age.max == f"{ages.max():.6g}"


def test_cross_column_views(titanic: tuple[pd.DataFrame, Profile]) -> None:
    _, prof = titanic
    assert prof.pearson is not None and "Fare" in prof.pearson.columns
    assert prof.cramers_v is not None and prof.cramers_v.columns[:2] == ["Sex", "Cabin"]
    assert prof.missing_patterns[0].columns == ["Cabin"]
    views = {v.feature: v for v in prof.target_views}
    assert views["Sex"].kind == "share" and set(views["Sex"].series) == {"0", "1"}
    assert views["Fare"].kind == "box"
    assert {s.column for s in prof.shifts} >= {"Age", "Sex"}
    assert all(s.psi >= 0 for s in prof.shifts)


def test_shift_finds_a_real_difference() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"x": rng.normal(size=400), "c": rng.choice(["a", "b"], 400), "y": [0, 1] * 200}
    )
    cleaned, _, report = clean(frame, "y")
    shifted = cleaned.assign(x=cleaned["x"] + 3)
    prof = profile(cleaned, report, train=cleaned, test=shifted)
    assert prof.shifts[0].column == "x" and prof.shifts[0].psi > 1
    assert any(f.kind == "train_test_shift" and f.column == "x" for f in prof.findings)


def test_histogram_of_small_integers_has_one_bar_per_value() -> None:
    hist = histogram(np.array([1.0, 2.0, 2.0, 3.0, np.nan]))
    assert hist is not None and hist.counts == [1, 2, 1]
    assert histogram(np.array([np.nan])) is None


def test_large_table_counts_are_exact_and_the_report_names_its_samples() -> None:
    n = SAMPLE + 10_000
    rng = np.random.default_rng(1)
    x = rng.normal(size=n)
    x[rng.random(n) < 0.1] = np.nan
    frame = pd.DataFrame(
        {
            "x": x,
            "c": rng.choice(["a", "b", "c", None], n),
            "y": rng.choice(["p", "q"], n),
        }
    )
    result = explore(frame, "y")
    prof = result.profile
    cols = {c.name: c for c in prof.columns}
    assert cols["x"].count == int(np.isfinite(x).sum()) and prof.rows == n
    assert cols["x"].distinct == len(np.unique(x[np.isfinite(x)]))
    assert cols["c"].distinct == 3 and cols["c"].count == frame["c"].notna().sum()
    assert prof.sample_rows == SAMPLE and prof.distinct_sample is None
    assert prof.shift_rows == (n - n // 5, n // 5)
    assert f"a seeded sample of {SAMPLE:,} of {n:,} rows" in result.html
    assert f"Computed on {n - n // 5:,} training and {n // 5:,} test rows" in result.html


@pytest.mark.parametrize(
    "spec",
    [
        CleaningSpec(),
        CleaningSpec(outliers="clip", impute_numeric="median"),
        CleaningSpec(duplicates="drop", outliers="drop"),
    ],
)
def test_statistics_computed_while_cleaning_are_the_profile_s_own(spec: CleaningSpec) -> None:
    rng = np.random.default_rng(4)
    n = 120_000  # threads and bracketed quantiles
    x = rng.lognormal(3, 1, n)
    x[rng.random(n) < 0.05] = np.nan
    frame = pd.DataFrame(
        {
            "x": x,
            "k": rng.integers(0, 40, n),
            "s": np.where(rng.random(n) < 0.01, -999.0, rng.normal(100, 15, n)),
            "c": rng.choice(["a", "b", "c"], n),
            "y": np.where(rng.random(n) < 0.01, None, rng.choice(["p", "q"], n)),
        }
    )
    frame.iloc[-50:] = frame.iloc[:50].to_numpy()  # duplicates
    result = clean_table(frame, "y", spec=spec)
    shared = profile(result.rows, result.report, summaries=result.summaries)
    own = profile(result.rows, result.report)
    assert shared.columns == own.columns
    changed = {e.column for e in result.report.actions if e.action in ("clip_outliers", "impute")}
    assert not changed & set(result.summaries)  # clipped or filled: summarised again
    if result.report.rows_out < len(frame) - int(frame["y"].isna().sum()):
        assert result.summaries == {}  # rows left after cleaning summarised them
    else:
        assert {"x", "k", "s"} - changed <= set(result.summaries)
