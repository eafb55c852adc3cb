"""Drift statistics on real data: exact against scipy, decisions that do not cry wolf."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from tabpipe.monitoring.drift import (
    Reference,
    benjamini_hochberg,
    categorical_reference,
    categorical_test,
    drift_tests,
    ks_wasserstein,
    missing_test,
    numeric_reference,
    numeric_test,
)
from tabpipe.monitoring.spec import EffectSpec

DATA = Path(__file__).parents[1] / "data"


def _ames() -> pd.DataFrame:
    return pd.read_csv(DATA / "ames.csv")


def _kinds(frame: pd.DataFrame) -> dict[str, str]:
    return {
        c: "numeric" if pd.api.types.is_numeric_dtype(frame[c]) else "categorical"
        for c in frame.columns
        if c != "Id"
    }


def _prepared(frame: pd.DataFrame, kinds: dict[str, str]) -> pd.DataFrame:
    out = frame[list(kinds)].copy()
    for c, k in kinds.items():
        out[c] = out[c].astype(float) if k == "numeric" else out[c].fillna("").astype(str)
    return out


def test_ks_and_wasserstein_match_scipy_on_real_columns() -> None:
    ames = _ames()
    a = ames["SalePrice"].to_numpy(float)
    b = ames["GrLivArea"].to_numpy(float) * 100
    for x, y in ((a[:700], a[700:]), (a, b), (np.round(a, -4), np.round(a[:900] * 1.1, -4))):
        d, w = ks_wasserstein(np.sort(x), np.sort(y))
        assert d == pytest.approx(stats.ks_2samp(x, y).statistic)
        assert w == pytest.approx(stats.wasserstein_distance(x, y))


def test_large_samples_of_unequal_size_stay_close_to_scipy() -> None:
    rng = np.random.default_rng(1)
    ames = _ames()["SalePrice"].to_numpy(float)
    x = rng.choice(ames, 150_000) + rng.normal(0, 1000, 150_000)
    y = rng.choice(ames, 90_000) * 1.05
    d, w = ks_wasserstein(np.sort(x), np.sort(y))
    assert d == pytest.approx(stats.ks_2samp(x, y).statistic, abs=1e-12)
    assert w == pytest.approx(stats.wasserstein_distance(x, y), rel=1e-3)
    test = numeric_test("price", numeric_reference(x), y, 0.1)
    assert test.p_value == pytest.approx(stats.ks_2samp(x, y, method="asymp").pvalue, rel=0.2)


def test_benjamini_hochberg_matches_the_textbook_procedure() -> None:
    p = np.array([0.01, 0.04, 0.03, 0.005, 0.2, 0.5])
    adjusted = benjamini_hochberg(p)
    expected = stats.false_discovery_control(p, method="bh")
    np.testing.assert_allclose(adjusted, expected)


def test_random_halves_of_real_data_raise_no_alarm() -> None:
    """The false-alarm test: 80 columns of one population split in two."""
    ames = _ames()
    kinds = _kinds(ames)
    frame = _prepared(ames, kinds)
    alarms = 0
    raw_hits = 0
    for seed in range(5):
        shuffled = frame.sample(frac=1.0, random_state=seed)
        ref, cur = shuffled.iloc[:730], shuffled.iloc[730:]
        tests = drift_tests(Reference.build(ref, kinds), cur, EffectSpec(), 0.05)  # type: ignore[arg-type]
        alarms += sum(t.alarm for t in tests)
        raw_hits += sum(t.p_value < 0.05 for t in tests)
        assert len({t.feature for t in tests}) == len(kinds)
    assert alarms == 0
    assert raw_hits > alarms  # uncorrected p-values alone would have flagged some


def test_a_real_shift_alarms_with_both_significance_and_effect() -> None:
    ames = _ames()
    kinds = _kinds(ames)
    frame = _prepared(ames, kinds)
    old = frame[frame["YearBuilt"] < 1980]
    new = frame[frame["YearBuilt"] >= 1980]
    tests = drift_tests(Reference.build(old, kinds), new, EffectSpec(), 0.05)  # type: ignore[arg-type]
    by_name = {t.feature: t for t in tests if t.kind != "missing"}
    assert by_name["YearBuilt"].alarm
    assert by_name["SalePrice"].alarm
    for t in tests:
        assert t.alarm == (t.p_adjusted < 0.05 and t.effect >= t.threshold)
    # significant but small: flagged as significant, not alarmed
    assert any(t.significant and not t.alarm for t in tests)


def test_big_data_needs_an_effect_not_only_a_p_value() -> None:
    rng = np.random.default_rng(3)
    ref = rng.normal(0, 1, 400_000)
    cur = rng.normal(0.02, 1, 400_000)  # a tiny shift: p tiny, effect tiny
    test = numeric_test("x", numeric_reference(ref), cur, 0.1)
    assert test.p_value < 1e-6
    kinds = {"x": "numeric"}
    decided = drift_tests(
        Reference.build(pd.DataFrame({"x": ref}), kinds),  # type: ignore[arg-type]
        pd.DataFrame({"x": cur}),
        EffectSpec(),
        0.05,
    )
    assert decided[0].significant and not decided[0].alarm


def test_categorical_unseen_share_psi_and_js() -> None:
    titanic = pd.read_csv(DATA / "titanic.csv")
    embarked = titanic["Embarked"].fillna("").astype(str)
    ref = categorical_reference(embarked.iloc[:400])
    shifted = pd.Series(["S"] * 200 + ["X"] * 100 + ["Q"] * 10)
    test = categorical_test("Embarked", ref, shifted, 0.1)
    assert test.unseen_share == pytest.approx(100 / 310)
    assert test.effect > 0.3 and test.psi is not None and test.psi > 0.2
    same = categorical_test("Embarked", ref, embarked.iloc[400:], 0.1)
    assert same.unseen_share == 0.0 and same.effect < 0.1


def test_missing_share_change_is_its_own_test() -> None:
    titanic = pd.read_csv(DATA / "titanic.csv")
    age = titanic["Age"].to_numpy(float)
    ref = numeric_reference(age[:500])
    cur = age[500:].copy()
    cur[:150] = np.nan
    test = missing_test("Age", ref, int(np.isnan(cur).sum()), len(cur), 0.05)
    assert test.kind == "missing" and test.effect > 0.2 and test.p_value < 1e-6
    kinds = {"Age": "numeric"}
    decided = drift_tests(
        Reference.build(pd.DataFrame({"Age": age[:500]}), kinds),  # type: ignore[arg-type]
        pd.DataFrame({"Age": cur}),
        EffectSpec(),
        0.05,
    )
    assert [t.kind for t in decided if t.alarm] == ["missing"]
