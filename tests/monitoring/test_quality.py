"""Data-quality shares from the serving flags."""

from __future__ import annotations

import pandas as pd
import pytest

from tabpipe.monitoring.quality import quality_shares


def test_shares_per_kind_and_per_flag() -> None:
    flags = [["unseen:weathersit", "range:temp"], [], None, ["missing:hum"]]
    shares, columns = quality_shares(pd.DataFrame({"flags": flags}))
    assert shares == {
        "unseen_share": 0.25,
        "range_share": 0.25,
        "missing_share": 0.25,
        "any_share": 0.5,
    }
    assert columns == {
        "unseen:weathersit": pytest.approx(0.25),
        "range:temp": pytest.approx(0.25),
        "missing:hum": pytest.approx(0.25),
    }
    assert quality_shares(pd.DataFrame({"x": [1]})) == ({}, {})
