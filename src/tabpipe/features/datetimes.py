# ruff: noqa: N803, N806 - scikit-learn names the feature matrix X
"""Datetime expansion: calendar parts, cyclical encodings and elapsed time.

Input is float64 seconds since 1970-01-01 UTC per column (see
:mod:`tabpipe.data.dates`; ONNX has no datetime type). The calendar is computed
from the day number with floor arithmetic only (H. Hinnant's ``civil_from_days``),
so the ONNX converter in :mod:`tabpipe.features.converters` repeats exactly the
same float64 operations and the two agree to the last bit before the cast to
float32 (sines and cosines, which differ in the last bits between libm and
onnxruntime, are rounded to a 1e-6 grid first). A missing date (NaN) gives NaN in
every output.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from tabpipe.data.dates import SECONDS_PER_DAY
from tabpipe.features.encoders import input_names

#: The outputs per column; the ``hour`` ones only when training saw a time of day.
DATE_PARTS = ("year", "month", "day", "dayofweek")
CYCLES = ("month_sin", "month_cos", "dayofweek_sin", "dayofweek_cos")
HOUR_PARTS = ("hour", "hour_sin", "hour_cos")
TAU = 2.0 * np.pi
#: Sines and cosines are rounded to this grid: libm and onnxruntime differ in the last
#: bits (sin(pi) is 1.2e-16 in numpy and 0 in onnxruntime), and a tree split between
#: two such values would send a row different ways in the two runtimes.
CYCLE_GRID = 1e6


def calendar(seconds: np.ndarray) -> dict[str, np.ndarray]:
    """Year, month, day, day of week (Monday 0), hour and hour of day as a fraction."""
    f = np.floor
    days = f(seconds / SECONDS_PER_DAY)
    second_of_day = seconds - days * SECONDS_PER_DAY
    z = days + 719468.0
    era = f(z / 146097.0)
    doe = z - era * 146097.0
    yoe = f((doe - f(doe / 1460.0) + f(doe / 36524.0) - f(doe / 146096.0)) / 365.0)
    doy = doe - (365.0 * yoe + f(yoe / 4.0) - f(yoe / 100.0))
    mp = f((5.0 * doy + 2.0) / 153.0)
    day = doy - f((153.0 * mp + 2.0) / 5.0) + 1.0
    with np.errstate(invalid="ignore"):
        month = mp + 3.0 - 12.0 * (mp >= 10.0)
        year = yoe + era * 400.0 + (month <= 2.0)
    shifted = days + 3.0
    return {
        "year": year,
        "month": month,
        "day": day,
        "dayofweek": shifted - 7.0 * f(shifted / 7.0),
        "hour": f(second_of_day / 3600.0),
        "hour_fraction": second_of_day / 3600.0,
    }


class DatetimeFeatures(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Expand each epoch-seconds column into calendar parts, cycles and elapsed days.

    Per column: year, month, day, day of week; sine and cosine of the month and of
    the day of week; with ``hour`` (when any training value has a time of day) the
    hour and the sine and cosine of the time of day; with ``elapsed`` the days since
    the earliest training date (``reference_``).
    """

    def __init__(self, cyclical: bool = True, elapsed: bool = True) -> None:
        self.cyclical = cyclical
        self.elapsed = elapsed

    def fit(self, X: Any, y: Any = None) -> DatetimeFeatures:
        X = validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan", reset=True)
        present = ~np.isnan(X)
        self.reference_ = np.asarray(
            [
                float(np.min(X[present[:, j], j])) if present[:, j].any() else 0.0
                for j in range(X.shape[1])
            ]
        )
        with np.errstate(invalid="ignore"):
            clock = np.where(present, np.mod(X, SECONDS_PER_DAY), 0.0)
        self.has_time_ = [bool(np.any(clock[:, j] != 0.0)) for j in range(X.shape[1])]
        return self

    def outputs(self, j: int) -> list[str]:
        """The output names of column ``j``, in order."""
        names = list(DATE_PARTS)
        if self.has_time_[j]:
            names.append("hour")
        if self.cyclical:
            names += CYCLES
            if self.has_time_[j]:
                names += ["hour_sin", "hour_cos"]
        if self.elapsed:
            names.append("elapsed_days")
        return names

    def transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "reference_")
        X = validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan", reset=False)
        blocks = []
        for j in range(X.shape[1]):
            values = expand(X[:, j], self.outputs(j), float(self.reference_[j]))
            blocks.append(np.column_stack(values))
        return np.hstack(blocks).astype(np.float32)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "reference_")
        names = input_features if input_features is not None else input_names(self)
        out = [f"{n}_{part}" for j, n in enumerate(names) for part in self.outputs(j)]
        return np.asarray(out, dtype=object)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.transformer_tags.preserves_dtype = []  # always float32 out
        return tags


def expand(seconds: np.ndarray, outputs: list[str], reference: float) -> list[np.ndarray]:
    """The named outputs of one column, in float64."""
    parts = calendar(seconds)
    cycles = {
        "month": (parts["month"] - 1.0) / 12.0,
        "dayofweek": parts["dayofweek"] / 7.0,
        "hour": parts["hour_fraction"] / 24.0,
    }
    out = []
    for name in outputs:
        if name in parts:
            out.append(parts[name])
        elif name == "elapsed_days":
            out.append((seconds - reference) / SECONDS_PER_DAY)
        else:
            base, fn = name.rsplit("_", 1)
            angle = TAU * cycles[base]
            wave = np.sin(angle) if fn == "sin" else np.cos(angle)
            out.append(np.rint(wave * CYCLE_GRID) / CYCLE_GRID)
    return out
