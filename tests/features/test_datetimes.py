"""DatetimeFeatures: conformance, the calendar against pandas, and exact ONNX parity."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import DoubleTensorType
from sklearn.utils.estimator_checks import parametrize_with_checks

from tabpipe.data.dates import epoch_seconds
from tabpipe.features import converters
from tabpipe.features.datetimes import DatetimeFeatures, calendar


@parametrize_with_checks([DatetimeFeatures(), DatetimeFeatures(cyclical=False, elapsed=False)])
def test_sklearn_conformance(estimator, check):
    check(estimator)


def _stamps(n: int, seed: int, *, with_time: bool) -> pd.Series:
    rng = np.random.default_rng(seed)
    low, high = pd.Timestamp("1890-01-01").value, pd.Timestamp("2150-12-31").value
    ns = rng.integers(low, high, n)
    stamps = pd.Series(pd.to_datetime(ns))
    if not with_time:
        stamps = stamps.dt.floor("D")
    return stamps


def test_calendar_matches_pandas_across_centuries_and_leap_days():
    stamps = pd.concat(
        [
            _stamps(5000, 0, with_time=True),
            pd.Series(
                pd.to_datetime(
                    ["2000-02-29", "1900-03-01", "1969-12-31 23:59:59", "1970-01-01"],
                    format="ISO8601",
                )
            ),
        ],
        ignore_index=True,
    )
    parts = calendar(epoch_seconds(stamps))
    assert parts["year"].tolist() == stamps.dt.year.astype(float).tolist()
    assert parts["month"].tolist() == stamps.dt.month.astype(float).tolist()
    assert parts["day"].tolist() == stamps.dt.day.astype(float).tolist()
    assert parts["dayofweek"].tolist() == stamps.dt.day_of_week.astype(float).tolist()
    assert parts["hour"].tolist() == stamps.dt.hour.astype(float).tolist()


def test_outputs_names_and_hour_only_when_training_saw_a_time():
    dates = epoch_seconds(_stamps(200, 1, with_time=False)).reshape(-1, 1)
    timed = epoch_seconds(_stamps(200, 2, with_time=True)).reshape(-1, 1)
    enc = DatetimeFeatures().fit(np.hstack([dates, timed]))
    names = list(enc.get_feature_names_out(["day", "moment"]))
    assert "day_hour" not in names and "moment_hour" in names and "moment_hour_sin" in names
    assert names[:4] == ["day_year", "day_month", "day_day", "day_dayofweek"]
    out = enc.transform(np.hstack([dates, timed]))
    assert out.shape == (200, len(names)) and out.dtype == np.float32
    elapsed = out[:, names.index("day_elapsed_days")]
    assert elapsed.min() == 0.0  # days since the earliest training date
    month_sin, month_cos = (out[:, names.index(f"day_month_{f}")] for f in ("sin", "cos"))
    np.testing.assert_allclose(month_sin**2 + month_cos**2, 1.0, rtol=1e-6)


def test_missing_dates_give_nan_everywhere():
    x = np.array([[0.0], [np.nan], [86_400.0 * 365]])
    out = DatetimeFeatures().fit(x).transform(x)
    assert np.isnan(out[1]).all() and not np.isnan(out[[0, 2]]).any()


@pytest.mark.parametrize(
    ("with_time", "options"),
    [(False, {}), (True, {}), (True, {"cyclical": False, "elapsed": False})],
)
def test_onnx_parity_is_exact(with_time, options):
    converters.register()
    train = epoch_seconds(_stamps(3000, 3, with_time=with_time)).reshape(-1, 1)
    test = epoch_seconds(_stamps(3000, 4, with_time=with_time)).reshape(-1, 1)
    test[::97] = np.nan
    x = np.hstack([train, test[::-1]])
    enc = DatetimeFeatures(**options).fit(x)
    model = convert_sklearn(
        enc, initial_types=[("x", DoubleTensorType([None, 2]))], target_opset=17
    )
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = session.run(None, {"x": np.hstack([test, train])})[0]
    want = enc.transform(np.hstack([test, train]))
    assert got.dtype == np.float32 and got.shape == want.shape
    # bit-identical (NaN where NaN): a tree split anywhere sends a row the same way
    np.testing.assert_array_equal(got, want)
