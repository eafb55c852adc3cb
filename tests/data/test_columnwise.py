"""Per-column work on threads: same results, same order, errors raised as usual."""

from __future__ import annotations

import threading

import pytest

from tabpipe.data.columnwise import PARALLEL_ROWS, map_columns
from tabpipe.errors import SchemaError


def test_results_keep_the_order_of_the_columns() -> None:
    names = [f"c{i}" for i in range(40)]
    assert map_columns(str.upper, names, PARALLEL_ROWS) == [n.upper() for n in names]
    assert map_columns(str.upper, names, 10) == [n.upper() for n in names]


def test_small_tables_stay_in_the_calling_thread() -> None:
    seen = map_columns(lambda _: threading.get_ident(), range(8), PARALLEL_ROWS - 1)
    assert set(seen) == {threading.get_ident()}


def test_an_error_in_one_column_is_raised() -> None:
    def work(name: str) -> str:
        if name == "bad":
            raise SchemaError(f"column {name!r} is bad")
        return name

    with pytest.raises(SchemaError, match="'bad'"):
        map_columns(work, ["a", "bad", "c"], PARALLEL_ROWS)
