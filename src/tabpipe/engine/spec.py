"""The ``engine:`` section of a pipeline spec: where the work runs (this process, or Ray)."""

from __future__ import annotations

import importlib.util
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

EngineKind = Literal["local", "ray"]
RAY_EXTRA = "pip install 'tabpipe[ray]'"


class EngineSpec(BaseModel):
    """Where tuning trials and batch scoring run.

    ``parallel_trials`` is how many trials are asked from the search at once; it is part
    of the search itself, so the same spec gives the same trials on either engine (local
    runs a batch one after another, Ray runs it as parallel tasks).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: EngineKind = "local"
    address: str | None = Field(
        None,
        description="Ray cluster address (host:port, ray://host:10001 or auto); "
        "default: RAY_ADDRESS, else a Ray started on this machine.",
    )
    parallel_trials: int = Field(
        1, ge=1, le=256, description="Trials asked and evaluated together (Ray: in parallel)."
    )
    max_retries: int = Field(
        2, ge=0, le=10, description="Ray: times a trial is re-run when its worker dies."
    )
    cpus_per_trial: float = Field(1.0, gt=0, description="Ray: CPUs reserved by each trial.")

    @model_validator(mode="after")
    def _ray_only_settings(self) -> EngineSpec:
        if self.kind == "local" and self.address is not None:
            raise ValueError("address applies to kind 'ray' only; set kind: ray or drop address")
        if self.kind == "ray" and not ray_installed():
            raise ValueError(f"the Ray engine needs Ray, which is not installed: {RAY_EXTRA}")
        return self


def ray_installed() -> bool:
    """Whether ``import ray`` would work, without importing it (it takes a second)."""
    try:
        return importlib.util.find_spec("ray") is not None
    except (ImportError, ValueError):  # ValueError: sys.modules["ray"] is None
        return False
