"""Dates as epoch seconds: the request path agrees with the training path."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from tabpipe.data.dates import epoch_seconds, to_epoch_seconds


@pytest.mark.parametrize(
    ("value", "formats", "want"),
    [
        ("2011-01-01", (), "2011-01-01"),
        ("31/12/2012", ("%d/%m/%Y",), "2012-12-31"),
        ("12/31/2012", ("%m/%d/%Y",), "2012-12-31"),
        ("2012-06-01 13:45:10", (), "2012-06-01 13:45:10"),
        ("2012-06-01T15:45:10+02:00", (), "2012-06-01 13:45:10"),
        (dt.date(1960, 2, 29), (), "1960-02-29"),
        (dt.datetime(2020, 1, 1, 12, tzinfo=dt.UTC), (), "2020-01-01 12:00"),
        (np.datetime64("2030-05-05T05:05"), (), "2030-05-05 05:05"),
        (pd.Timestamp("2001-09-09 01:46:40"), (), "2001-09-09 01:46:40"),
    ],
)
def test_values_become_the_seconds_pandas_gives(value: object, formats: tuple[str, ...], want: str):
    assert to_epoch_seconds(value, formats) == pd.Timestamp(want).timestamp()


def test_formats_seen_in_training_decide_an_ambiguous_date():
    day_first = to_epoch_seconds("03/04/2012", ("%d/%m/%Y",))
    month_first = to_epoch_seconds("03/04/2012", ("%m/%d/%Y",))
    assert day_first == pd.Timestamp("2012-04-03").timestamp()
    assert month_first == pd.Timestamp("2012-03-04").timestamp()


def test_missing_numbers_and_refusals():
    assert math.isnan(to_epoch_seconds(None))
    assert math.isnan(to_epoch_seconds("  NA ", markers={"na"}))
    assert math.isnan(to_epoch_seconds(pd.NaT))
    assert to_epoch_seconds(86_400) == 86_400.0  # a number is already epoch seconds
    with pytest.raises(ValueError, match="cannot read 'tomorrow' as a date"):
        to_epoch_seconds("tomorrow")
    with pytest.raises(ValueError, match="boolean"):
        to_epoch_seconds(True)
    with pytest.raises(ValueError, match="list"):
        to_epoch_seconds([2012, 1, 1])


def test_training_columns_naive_aware_and_missing():
    naive = pd.Series(pd.to_datetime(["2011-01-01", None, "1969-07-20 20:17:40"], format="ISO8601"))
    out = epoch_seconds(naive)
    assert out[0] == 1293840000.0 and math.isnan(out[1]) and out[2] == -14182940.0
    aware = naive.dt.tz_localize("Europe/Paris")
    assert epoch_seconds(aware)[0] == 1293840000.0 - 3600.0
    assert epoch_seconds(pd.Series(["2011-01-01", "junk"]))[0] == 1293840000.0
