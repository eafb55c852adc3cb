"""Properties of cleaning: idempotent, no row lost without a ledger entry, replay == training."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tabpipe.config import CleaningSpec
from tabpipe.data.cleaning import ROW_COLUMN, clean
from tabpipe.errors import SchemaError
from tabpipe.features.builder import plan_features
from tabpipe.features.frame import to_model_frame
from tabpipe.packaging.build import signature_of

WORDS = st.sampled_from(["yes", "Yes ", " YES", "no", "No", "?", "NA", "", "maybe", None])
AMOUNTS = st.one_of(
    st.none(),
    st.sampled_from(["1,234", "$5", "?", "-999", " 12 ", "n/a"]),
    st.integers(-100, 100).map(str),
    st.floats(-1e6, 1e6, allow_nan=False).map(lambda v: f"{v:.3f}"),
)
LABELS = st.sampled_from(["a", "b", "B ", None])
POLICIES = st.builds(
    CleaningSpec,
    duplicates=st.sampled_from(["report", "drop"]),
    conflicting_duplicates=st.sampled_from(["report", "drop"]),
    outliers=st.sampled_from(["flag", "drop", "clip"]),
    impute_numeric=st.sampled_from(["model", "median", "constant"]),
    impute_categorical=st.sampled_from(["model", "mode", "constant"]),
)


@st.composite
def frames(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(2, 60))
    return pd.DataFrame(
        {
            "answer": draw(st.lists(WORDS, min_size=n, max_size=n)),
            "amount": draw(st.lists(AMOUNTS, min_size=n, max_size=n)),
            "count": draw(st.lists(st.integers(0, 20), min_size=n, max_size=n)),
            "y": draw(st.lists(LABELS, min_size=n, max_size=n)),
        }
    )


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.slow
@SETTINGS
@given(frames(), POLICIES)
def test_rows_never_change_without_a_ledger_entry(frame: pd.DataFrame, spec: CleaningSpec) -> None:
    try:
        cleaned, removed, report = clean(frame, "y", spec=spec)
    except SchemaError:
        return
    assert len(cleaned) + len(removed) == len(frame) == report.rows_in
    assert sum(e.rows_removed for e in report.actions) == len(removed)
    assert sorted(removed[ROW_COLUMN]) == sorted(set(removed[ROW_COLUMN]))


@pytest.mark.slow
@SETTINGS
@given(frames())
def test_cleaning_is_idempotent(frame: pd.DataFrame) -> None:
    try:
        cleaned, _, report = clean(frame, "y")
    except SchemaError:
        return
    again, removed, second = clean(cleaned, "y")
    assert removed.empty
    pd.testing.assert_frame_equal(again, cleaned, check_dtype=False)
    assert [c.role for c in second.columns] == [c.role for c in report.columns]


@pytest.mark.slow
@SETTINGS
@given(frames(), POLICIES)
def test_serving_replay_equals_training_transform(frame: pd.DataFrame, spec: CleaningSpec) -> None:
    try:
        cleaned, removed, report = clean(frame, "y", spec=spec)
    except SchemaError:
        return
    plan = plan_features(report)
    kept = frame.drop(index=removed[ROW_COLUMN].tolist()).reset_index(drop=True)
    trained = to_model_frame(cleaned, plan)
    feeds = signature_of(report, plan).to_feeds({c: kept[c].tolist() for c in plan.columns})
    for name in plan.numeric:
        np.testing.assert_array_equal(feeds[name].reshape(-1), trained[name].to_numpy())
    for name in plan.categorical:
        assert feeds[name].reshape(-1).tolist() == trained[name].tolist()
