"""The profile's numbers against plain pandas, and its cross-column views."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tabpipe.config import SourceSpec
from tabpipe.data.cleaning import clean
from tabpipe.data.ingest import read_source
from tabpipe.eda.profile import Profile, histogram, profile

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
