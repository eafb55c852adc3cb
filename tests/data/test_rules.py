"""The cleaning rules as data, and the one function that applies them at training and serving."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from tabpipe.data.rules import ColumnRules, apply_rules, unit_of
from tabpipe.packaging.signature import ColumnSpec, Signature

YES_NO = ColumnRules(kind="categorical", case_map={"yes": "yes", "no": "no"})
MONEY = ColumnRules(kind="numeric", remove_chars=",$%", sentinels=[-999.0])


def test_request_value_is_cleaned_like_training() -> None:
    out = apply_rules(["YES ", " no", "Maybe", None, "?"], YES_NO)
    assert out.tolist() == ["yes", "no", "Maybe", None, None]


def test_numbers_with_separators_currency_percent_and_sentinels() -> None:
    out = apply_rules(["1,234.5", "$12", "45%", "-999", -999, None, "n/a"], MONEY)
    assert out.dtype == np.float64
    assert out[:3].tolist() == [1234.5, 12.0, 45.0]
    assert all(math.isnan(v) for v in out[3:])


def test_unparseable_number_is_returned_for_the_caller_to_report() -> None:
    out = apply_rules(["12", "twelve"], MONEY)
    assert out.tolist() == [12.0, "twelve"]


def test_units_clipping_and_fill() -> None:
    rules = ColumnRules(kind="numeric", unit="kg", lower=0.0, upper=100.0, fill_number=5.0)
    assert apply_rules(["12 kg", "250kg", None, "-3"], rules).tolist() == [12.0, 100.0, 5.0, 0.0]
    assert unit_of("12.5 kg") == "kg"
    assert unit_of("twelve") is None


def test_boolean_words() -> None:
    rules = ColumnRules(kind="categorical", boolean_map={"yes": "true", "no": "false", "y": "true"})
    assert apply_rules(["Yes", "NO", "y ", True], rules).tolist() == [
        "true",
        "false",
        "true",
        "true",
    ]


def test_large_columns_take_the_factorised_path_with_the_same_result() -> None:
    values = ["YES ", "no", None, "Maybe"] * 1000
    small = [apply_rules(values[i : i + 4], YES_NO).tolist() for i in range(0, 8, 4)]
    big = apply_rules(np.asarray(values, dtype=object), YES_NO).tolist()
    assert big[:8] == small[0] + small[1]


def test_signature_replays_the_rules_on_requests() -> None:
    sig = Signature(
        columns=[
            ColumnSpec(name="answer", kind="categorical", rules=YES_NO),
            ColumnSpec(name="amount", kind="numeric", rules=MONEY),
        ]
    )
    feeds = sig.to_feeds({"answer": ["YES "], "amount": ["$1,000"]})
    assert feeds["answer"][0, 0] == "yes"
    assert feeds["amount"][0, 0] == np.float32(1000.0)


texts = st.one_of(
    st.none(),
    st.sampled_from(["yes", "Yes ", " YES", "no", "?", "NA", "", "1,234", "$5", "7%", "-999"]),
    st.text(max_size=8),
    st.floats(allow_nan=True, allow_infinity=False),
    st.integers(-5000, 5000),
)


@given(st.lists(texts, max_size=30))
def test_rules_are_idempotent(values: list[object]) -> None:
    for rules in (YES_NO, MONEY, ColumnRules(kind="categorical")):
        once = apply_rules(values, rules)
        twice = apply_rules(once, rules)
        assert _same(once, twice)


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    for x, y in zip(a.tolist(), b.tolist(), strict=True):
        if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
            continue
        if x != y:
            return False
    return True
