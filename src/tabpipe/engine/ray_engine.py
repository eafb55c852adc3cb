"""The Ray engine: items run as Ray tasks on a cluster; shared values go to its object store.

Only this module (and :mod:`tabpipe.engine.scoring`) imports Ray, and only when a Ray
engine is opened, so the local engine works without Ray installed.

A task whose worker process or node dies is re-run up to ``max_retries`` times by Ray;
after that the item's result is a :class:`TaskLost` and the caller records it as failed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from tabpipe.engine.base import Shared, TaskLost
from tabpipe.engine.spec import RAY_EXTRA, EngineSpec
from tabpipe.errors import ConfigError, EngineError

T = TypeVar("T")
R = TypeVar("R")


def import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise ConfigError(f"the Ray engine needs Ray, which is not installed: {RAY_EXTRA}") from exc
    return ray


def connect(address: str | None) -> tuple[Any, bool]:
    """Ray, connected to ``address``; the flag says whether this call made the connection."""
    ray = import_ray()
    if ray.is_initialized():
        return ray, False
    try:
        ray.init(
            address=address,
            log_to_driver=False,
            logging_level=logging.WARNING,
            configure_logging=False,
        )
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = address or "RAY_ADDRESS or a new local Ray"
        raise EngineError(
            f"cannot connect to the Ray cluster at {where}: {exc}. Check engine.address "
            "(host:port of the head node's GCS, or ray://host:10001) and that the cluster runs"
        ) from exc
    return ray, True


class RayEngine:
    """Maps a function over items as Ray tasks, each reserving ``cpus_per_trial`` CPUs."""

    def __init__(self, spec: EngineSpec) -> None:
        self.spec = spec
        self.concurrency = spec.parallel_trials
        self._ray, self._owns = connect(spec.address)
        self._remote: dict[Callable[..., Any], Any] = {}

    def share(self, value: Any) -> Shared:
        return Shared(self._ray.put(value))

    def map(
        self, fn: Callable[[Any, T], R], shared: Shared, items: Sequence[T]
    ) -> list[R | TaskLost]:
        remote = self._remote.get(fn)
        if remote is None:
            remote = self._ray.remote(
                num_cpus=self.spec.cpus_per_trial,
                max_retries=self.spec.max_retries,
                retry_exceptions=False,
            )(fn)
            self._remote[fn] = remote
        refs = [remote.remote(shared.handle, item) for item in items]
        results: list[R | TaskLost] = []
        for ref in refs:
            try:
                results.append(self._ray.get(ref))
            except self._ray.exceptions.RayError as exc:
                results.append(TaskLost(_describe(exc)))
        return results

    def close(self) -> None:
        self._remote.clear()
        if self._owns:
            self._ray.shutdown()


def _describe(exc: BaseException) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first}"[:300]
