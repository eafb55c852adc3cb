"""A large batch is checked column-wise (each distinct value once) exactly as row by row."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pytest

from tabpipe.data.columnar import DISTINCT_ABOVE, map_distinct, object_array
from tabpipe.data.rules import ColumnRules
from tabpipe.errors import RequestError
from tabpipe.packaging.signature import Checked, ColumnSpec, Signature

ROWS = DISTINCT_ABOVE + 1000

POOLS: dict[str, list[Any]] = {
    "age": [1, 2.5, "3,000", " 4 ", None, math.nan, "na", -999, 1000, np.float32(2), "?", "$7"],
    "fare": [0.5, 12.25, None, math.nan, 300.0, -1.0, 7],
    "sex": ["male", " female", "MALE", "alien", None, math.nan, "", "?", "Female "],
    "deck": [1, 1.0, 2, 3.5, None, math.nan],
    "note": ["Hello World", None, "ABC def", "  x "],
    "day": ["2020-01-02", None, "2021-03-04 10:00:00", "", "na"],
}


def signature(unseen: str = "ignore") -> Signature:
    return Signature(
        columns=[
            ColumnSpec(
                name="age",
                kind="numeric",
                minimum=0.0,
                maximum=80.0,
                rules=ColumnRules(
                    kind="numeric", remove_chars=",$", sentinels=[-999.0], lower=-5.0, upper=500.0
                ),
            ),
            ColumnSpec(name="fare", kind="numeric", minimum=0.0, maximum=100.0),
            ColumnSpec(
                name="sex",
                kind="categorical",
                categories=["female", "male"],
                rules=ColumnRules(
                    kind="categorical", case_map={"male": "male", "female": "female"}
                ),
            ),
            ColumnSpec(name="deck", kind="categorical", categories=["1", "2"]),
            ColumnSpec(name="note", kind="text"),
            ColumnSpec(name="day", kind="datetime"),
            ColumnSpec(name="cabin", kind="categorical", required=False, categories=["A"]),
        ],
        unseen_categories=unseen,  # type: ignore[arg-type]
    )


def columns(seed: int = 0) -> dict[str, list[Any]]:
    rng = np.random.default_rng(seed)
    return {
        name: [pool[int(i)] for i in rng.integers(0, len(pool), ROWS)]
        for name, pool in POOLS.items()
    }


def row_by_row(sig: Signature, data: dict[str, list[Any]]) -> Checked:
    """One single-row check per row (the scalar serving path), put together."""
    parts = [sig.check({k: [v[i]] for k, v in data.items()}) for i in range(ROWS)]
    out = Checked(
        feeds={k: np.concatenate([p.feeds[k] for p in parts]) for k in parts[0].feeds}, rows=ROWS
    )
    for p in parts:
        for k, n in p.unseen.items():
            out.unseen[k] = out.unseen.get(k, 0) + n
        for k, n in p.out_of_range.items():
            out.out_of_range[k] = out.out_of_range.get(k, 0) + n
    return out


def assert_same(a: Checked, b: Checked) -> None:
    assert a.feeds.keys() == b.feeds.keys()
    for name in a.feeds:
        x, y = a.feeds[name], b.feeds[name]
        assert x.dtype == y.dtype and x.shape == y.shape, name
        if x.dtype.kind == "f":
            np.testing.assert_array_equal(x, y, err_msg=name)  # NaN equals NaN here
        else:
            assert x.tolist() == y.tolist(), name
    assert a.unseen == b.unseen
    assert a.out_of_range == b.out_of_range


@pytest.mark.parametrize("as_array", [False, True], ids=["lists", "object-arrays"])
def test_column_wise_check_equals_the_row_by_row_check(as_array: bool) -> None:
    data = columns()
    given: dict[str, Any] = {k: object_array(v) if as_array else v for k, v in data.items()}
    batch = signature().check(given)
    assert_same(batch, row_by_row(signature(), data))
    assert batch.unseen["sex"] > 0 and batch.out_of_range["age"] > 0  # the tricky values count


def test_float_columns_as_arrays_equal_lists() -> None:
    rng = np.random.default_rng(1)
    fare = rng.normal(50, 60, ROWS)
    fare[::7] = np.nan
    data = {**columns(), "fare": fare.tolist()}
    as_lists = signature().check(data)
    as_arrays = signature().check({**data, "fare": fare})
    assert_same(as_arrays, as_lists)


@pytest.mark.parametrize(
    ("column", "bad", "unseen"),
    [
        ("age", "twelve", "ignore"),
        ("age", True, "ignore"),
        ("fare", math.inf, "ignore"),
        ("fare", "1e999", "ignore"),
        ("sex", "alien", "reject"),
        ("sex", ["male"], "ignore"),
        ("day", "not a date", "ignore"),
    ],
)
def test_errors_name_the_same_row_as_the_row_by_row_check(
    column: str, bad: Any, unseen: str
) -> None:
    data = columns()
    data["sex"] = [v if v != "alien" else "male" for v in data["sex"]]  # no unseen but ours
    row = ROWS - 700
    data[column] = [*data[column][:row], bad, *data[column][row + 1 :]]
    with pytest.raises(RequestError) as single:
        signature(unseen).check({k: [v[row]] for k, v in data.items()})
    with pytest.raises(RequestError) as batch:
        signature(unseen).check(data)
    assert batch.value.field == column
    assert str(batch.value) == re.sub(r", row 0:", f", row {row}:", str(single.value), count=1)


def test_the_first_bad_row_wins_among_distinct_and_missing_values() -> None:
    values = ["a"] * ROWS
    values[3000], values[2500] = "bad", None

    def check(value: Any, row: int) -> str:
        if value is None or value == "bad":
            raise RequestError(f"row {row}")
        return str(value)

    with pytest.raises(RequestError, match=r"^row 2500$"):
        map_distinct(values, check)


def test_mixed_kinds_and_small_columns_are_checked_row_by_row() -> None:
    # 1, 1.0 and True hash alike; grouping them would give True the text of 1
    mixed = map_distinct([1, True] * ROWS, lambda v, _: repr(v))
    assert list(mixed[:4]) == ["1", "True", "1", "True"]
    calls: list[int] = []
    small = map_distinct(["a"] * 10, lambda v, row: calls.append(row) or v)
    assert list(small) == ["a"] * 10 and calls == list(range(10))
