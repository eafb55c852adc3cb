"""Per-column work on threads: same results, same order, errors raised as usual."""

from __future__ import annotations

import os
import threading

import pytest

from tabpipe.data.columnwise import PARALLEL_ROWS, alongside, map_columns
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


def test_costly_columns_start_first_and_results_keep_their_order() -> None:
    started: list[int] = []
    lock = threading.Lock()

    def work(i: int) -> int:
        with lock:
            started.append(i)
        return i * 10

    columns = list(range(12))
    out = map_columns(work, columns, PARALLEL_ROWS, cost=lambda i: float(i == 9))
    assert out == [i * 10 for i in columns]
    assert started[0] == 9 or os.cpu_count() == 1  # the costly column went first


def test_work_alongside_runs_beside_the_body_on_a_large_table() -> None:
    seen: list[int] = []
    with alongside(lambda: seen.append(threading.get_ident()) or 7, PARALLEL_ROWS) as result:
        value = result()
    assert value == 7
    if (os.cpu_count() or 1) > 1:
        assert seen != [threading.get_ident()]
    with alongside(threading.get_ident, 10) as small:
        assert small() == threading.get_ident()
