"""Where the work runs: the local engine (default, this process) or a Ray cluster.

``open_engine(spec.engine)`` gives an :class:`Engine`; the search evaluates each batch
of asked trials through ``engine.map``. See docs/cluster.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from tabpipe.engine.base import Engine, Shared, TaskLost
from tabpipe.engine.local import LocalEngine
from tabpipe.engine.spec import RAY_EXTRA, EngineKind, EngineSpec, ray_installed


@contextmanager
def open_engine(spec: EngineSpec) -> Iterator[Engine]:
    """The engine ``spec`` names, closed (a Ray connection dropped) on exit."""
    engine: Engine
    if spec.kind == "ray":
        from tabpipe.engine.ray_engine import RayEngine

        engine = RayEngine(spec)
    else:
        engine = LocalEngine()
    try:
        yield engine
    finally:
        engine.close()


__all__ = [
    "RAY_EXTRA",
    "Engine",
    "EngineKind",
    "EngineSpec",
    "LocalEngine",
    "Shared",
    "TaskLost",
    "open_engine",
    "ray_installed",
]
