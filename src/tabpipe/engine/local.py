"""The default engine: every item in this process, one after another."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from tabpipe.engine.base import Shared, TaskLost

T = TypeVar("T")
R = TypeVar("R")


class LocalEngine:
    concurrency = 1

    def share(self, value: Any) -> Shared:
        return Shared(value)

    def map(
        self, fn: Callable[[Any, T], R], shared: Shared, items: Sequence[T]
    ) -> list[R | TaskLost]:
        return [fn(shared.handle, item) for item in items]

    def close(self) -> None:
        return None
