"""Signature.check: strict casting, counting and refusal at the edge."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from tabpipe.data.cleaning import clean
from tabpipe.errors import PayloadTooLargeError, RequestError
from tabpipe.packaging.signature import (
    MEMO_SIZE,
    SCALAR_ROWS,
    ColumnSpec,
    Signature,
    category_text,
)


def signature(**kw: object) -> Signature:
    return Signature(
        columns=[
            ColumnSpec(name="age", kind="numeric", minimum=0.0, maximum=80.0, median=28.0),
            ColumnSpec(name="sex", kind="categorical", categories=["female", "male"]),
            ColumnSpec(name="fare", kind="numeric", required=False, nullable=True),
        ],
        **kw,
    )


def test_feeds_are_float32_and_text_columns() -> None:
    checked = signature().check({"age": [22, "31.5", None], "sex": ["male", " female", None]})
    assert checked.rows == 3
    assert checked.feeds["age"].dtype == np.float32
    assert checked.feeds["age"].shape == (3, 1)
    assert checked.feeds["age"][1, 0] == pytest.approx(31.5)
    assert math.isnan(float(checked.feeds["age"][2, 0]))
    assert checked.feeds["sex"].reshape(-1).tolist() == ["male", "female", ""]
    # the optional column left out is fed as missing
    assert np.isnan(checked.feeds["fare"]).all()
    assert checked.warnings() == []


def test_numpy_columns_take_the_fast_path() -> None:
    checked = signature().check({"age": np.array([1, 2], dtype=np.int64), "sex": ["male", "male"]})
    assert checked.feeds["age"].reshape(-1).tolist() == [1.0, 2.0]


@pytest.mark.parametrize(
    ("data", "field", "text"),
    [
        ({"sex": ["male"]}, "age", "missing required column"),
        ({"age": ["twelve"], "sex": ["male"]}, "age", "expected a number, got 'twelve'"),
        ({"age": [True], "sex": ["male"]}, "age", "boolean"),
        ({"age": [{"x": 1}], "sex": ["male"]}, "age", "expected a number"),
        ({"age": [math.inf], "sex": ["male"]}, "age", "not a finite number"),
        ({"age": [1e300], "sex": ["male"]}, "age", "32-bit float"),
        ({"age": [1.0], "sex": [["male"]]}, "sex", "one category value"),
    ],
)
def test_refusals_name_the_field(data: dict[str, list[object]], field: str, text: str) -> None:
    with pytest.raises(RequestError, match=text) as info:
        signature().check(data)
    assert info.value.field == field


def test_not_nullable_refuses_missing_values() -> None:
    sig = Signature(columns=[ColumnSpec(name="x", kind="numeric", nullable=False)])
    with pytest.raises(RequestError, match="row 1: a value is required") as info:
        sig.check({"x": [1.0, math.nan]})
    assert info.value.field == "x"
    cat = Signature(columns=[ColumnSpec(name="c", kind="categorical", nullable=False)])
    with pytest.raises(RequestError, match="row 0"):
        cat.check({"c": ["NA"]})


def test_unseen_categories_are_counted_or_refused() -> None:
    checked = signature().check({"age": [1, 2, 3], "sex": ["male", "alien", "robot"]})
    assert checked.unseen == {"sex": 2}
    assert "not seen in training" in checked.warnings()[0]
    with pytest.raises(RequestError, match="'alien' was not seen") as info:
        signature(unseen_categories="reject").check({"age": [1], "sex": ["alien"]})
    assert info.value.field == "sex"


def test_out_of_range_values_are_counted_not_refused() -> None:
    checked = signature().check({"age": [-1, 50, 81, None], "sex": ["male"] * 4})
    assert checked.out_of_range == {"age": 2}
    assert "outside the training range" in checked.warnings()[0]


def test_row_limits_and_shapes() -> None:
    with pytest.raises(PayloadTooLargeError, match="3 rows"):
        signature().check({"age": [1, 2, 3], "sex": ["a", "b", "c"]}, max_rows=2)
    with pytest.raises(RequestError, match="different lengths"):
        signature().check({"age": [1, 2], "sex": ["male"]})
    with pytest.raises(RequestError, match="no rows"):
        signature().check({"age": [], "sex": []})


def test_category_text_matches_training_rule() -> None:
    assert category_text(3.0) == "3"
    assert category_text(True) == "True"
    assert category_text(" n/a ") == ""
    assert category_text(float("nan")) == ""


def test_datetime_and_text_columns() -> None:
    sig = Signature(
        columns=[
            ColumnSpec(name="day", kind="datetime", formats=["%d/%m/%Y"]),
            ColumnSpec(name="note", kind="text"),
        ]
    )
    checked = sig.check(
        {"day": ["31/12/2012", "2013-01-01T06:00:00", None], "note": ["Big DAY", None, 3]}
    )
    assert checked.feeds["day"].dtype == np.float64 and checked.feeds["day"].shape == (3, 1)
    assert checked.feeds["day"][0, 0] == 1356912000.0
    assert checked.feeds["day"][1, 0] == 1357020000.0
    assert math.isnan(checked.feeds["day"][2, 0])
    assert checked.feeds["note"].reshape(-1).tolist() == ["big day", "", "3"]
    with pytest.raises(RequestError, match="column 'day', row 1: cannot read '2012-13-45'") as err:
        sig.check({"day": ["31/12/2012", "2012-13-45"], "note": ["a", "b"]})
    assert err.value.field == "day"
    strict = Signature(columns=[ColumnSpec(name="day", kind="datetime", nullable=False)])
    with pytest.raises(RequestError, match="not nullable"):
        strict.check({"day": [None]})
    stamps = np.array(["2012-12-31", "NaT"], dtype="datetime64[D]")
    fast = strict.model_copy(update={"columns": [ColumnSpec(name="day", kind="datetime")]})
    assert fast.check({"day": stamps}).feeds["day"][0, 0] == 1356912000.0


def test_few_rows_path_remembers_categories_and_still_counts_and_refuses() -> None:
    sig = signature()
    for _ in range(3):  # the second and third checks hit the remembered values
        checked = sig.check({"age": [30], "sex": ["alien"]})
        assert checked.unseen == {"sex": 1}
        assert checked.feeds["sex"].tolist() == [["alien"]]
        assert not checked.feeds["sex"].flags.writeable  # shared between requests
    assert sig.check({"age": [30], "sex": [" male"]}).unseen == {}
    # the same columns under the reject policy: the remembered unseen value is refused
    strict = sig.model_copy(update={"unseen_categories": "reject"})
    with pytest.raises(RequestError, match="'alien' was not seen") as info:
        strict.check({"age": [30], "sex": ["alien"]})
    assert info.value.field == "sex"
    with pytest.raises(RequestError, match="one category value"):
        sig.check({"age": [30], "sex": [["male"]]})
    # several rows: the same texts and counts as one row at a time
    many = sig.check({"age": [1, 90], "sex": ["alien", "female"]})
    assert many.feeds["sex"].reshape(-1).tolist() == ["alien", "female"]
    assert many.unseen == {"sex": 1} and many.out_of_range == {"age": 1}


def test_remembered_values_are_bounded() -> None:
    sig = signature()
    for i in range(MEMO_SIZE + 10):
        sig.check({"age": [1], "sex": [f"v{i}"]})
    plan = sig.columns[1].scalar
    assert plan is not None and 0 < len(plan.memo) <= MEMO_SIZE


def test_texts_cleaning_set_to_missing_are_missing_in_requests() -> None:
    """A numeric column's learned markers (a lab's 'pending', 'Lab error'): read as
    missing on the few-rows and the general path; a text training never saw is refused."""
    frame = pd.DataFrame(
        {"diag": [f"{250 + i / 100:.2f}" for i in range(197)] + ["pending", "pending", "Lab error"]}
    )
    _, _, report = clean(frame.assign(y=np.arange(200) % 2 == 0), "y")
    rules = report.column("diag").rules
    sig = Signature(columns=[ColumnSpec(name="diag", kind="numeric", minimum=250.0, rules=rules)])
    for rows in (1, 3, SCALAR_ROWS + 5):  # the few-rows plan and the general path
        values = (["250.83", " PENDING ", "lab error"] * rows)[:rows]
        checked = sig.check({"diag": values})
        want = [math.nan if not v[0].isdigit() else float(v) for v in values]
        np.testing.assert_array_equal(checked.feeds["diag"].reshape(-1), np.float32(want))
        bad = [*values, "broken"]
        with pytest.raises(RequestError, match=rf"column 'diag', row {rows}: .*'broken'") as info:
            sig.check({"diag": bad})
        assert info.value.field == "diag"
    assert (
        sig.check({"diag": np.array(["pending", "251"], dtype=object)}).feeds["diag"][1, 0] == 251
    )
