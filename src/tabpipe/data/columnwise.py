"""Per-column work of a large table spread over threads.

numpy, pandas and Arrow release the GIL in their inner loops (partitions,
hashing, reductions), so independent columns cleaned or profiled at the same
time use every core. Small tables stay in the calling thread. Results come back
in the order of the inputs, so the outcome does not depend on the threads.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

#: below this many rows a table is handled column after column in one thread
PARALLEL_ROWS = 100_000
MAX_THREADS = 4


def map_columns(
    work: Callable[[T], R],
    columns: Iterable[T],
    rows: int,
    *,
    cost: Callable[[T], float] | None = None,
) -> list[R]:
    """``[work(c) for c in columns]``, on up to ``MAX_THREADS`` threads when ``rows`` is large.

    ``cost`` (an estimate of each column's work) starts the costliest columns first, so no
    thread is left with a long one at the end; the results keep the order of ``columns``.
    """
    todo = list(columns)
    threads = min(len(todo), os.cpu_count() or 1, MAX_THREADS)
    if rows < PARALLEL_ROWS or threads < 2:
        return [work(c) for c in todo]
    order = list(range(len(todo)))
    if cost is not None:
        order.sort(key=lambda i: -cost(todo[i]))  # stable: equal costs keep their order
    with ThreadPoolExecutor(threads) as pool:
        futures = {i: pool.submit(work, todo[i]) for i in order}
        return [futures[i].result() for i in range(len(todo))]


@contextmanager
def alongside(work: Callable[[], R], rows: int) -> Iterator[Callable[[], R]]:
    """Run ``work`` on a thread of its own while the ``with`` body runs (on a large table);
    yields the function that returns its result (on a small table: computes it then)."""
    if rows < PARALLEL_ROWS or (os.cpu_count() or 1) < 2:
        yield work
        return
    with ThreadPoolExecutor(1) as pool:
        yield pool.submit(work).result
