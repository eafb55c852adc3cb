"""The engine interface: share a large value once, then map a function over items.

An engine runs ``fn(shared, item)`` for every item and returns the results in item
order. A result is :class:`TaskLost` when the engine could not run the item (a Ray
worker or node died after its retries); the function's own exceptions are its caller's
business, so functions given to an engine should return their failures as values.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class TaskLost:
    """An item the engine could not run to the end, and why."""

    reason: str


@dataclass(frozen=True)
class Shared:
    """A value made available to every task: the value itself, or a cluster reference."""

    handle: Any


class Engine(Protocol):
    #: How many items run at the same time (for time estimates).
    concurrency: int

    def share(self, value: Any) -> Shared: ...

    def map(
        self, fn: Callable[[Any, T], R], shared: Shared, items: Sequence[T]
    ) -> list[R | TaskLost]: ...

    def close(self) -> None: ...
