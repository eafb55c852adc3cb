"""The loaded model and its hot swap.

A request takes ``holder.get()`` once and keeps that :class:`Loaded` to the
end, so it sees one model version throughout. A swap loads and warms the new
bundle off the event loop, then replaces the reference in one assignment:
requests in flight finish on the old model, new ones get the new one, none fails.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tabpipe.data.contract import DataContract
from tabpipe.data.request_check import RequestValidator
from tabpipe.packaging.bundle import Manifest
from tabpipe.serving.errors import NotReadyError
from tabpipe.serving.runtime import Predictor, load_predictor
from tabpipe.serving.settings import ServeSettings

log = logging.getLogger("tabpipe.serving")


@dataclass
class Loaded:
    """One loaded model version; replaced as a whole on a swap, never changed in place."""

    predictor: Predictor
    manifest: Manifest
    version: int
    path: Path
    #: the bundle's data contract compiled for requests (None: a bundle without one)
    validator: RequestValidator | None = None


def warm_up(loaded: Loaded) -> None:
    """One prediction on the training medians and most common categories."""
    sig = loaded.manifest.signature
    row = {
        c.name: [c.median if c.kind == "numeric" else (c.categories or [""])[0]]
        for c in sig.columns
    }
    loaded.predictor.predict(sig.to_feeds(row))


def _validator(manifest: Manifest, path: Path) -> RequestValidator | None:
    """The contract of the bundle (its checksum was verified with the manifest)."""
    if "contract.json" not in manifest.files:
        return None
    contract = DataContract.model_validate_json((path / "contract.json").read_bytes())
    return RequestValidator(contract, manifest.signature.names)


class ModelHolder:
    """Holds the model being served; swapped as a whole."""

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self.current: Loaded | None = None
        self.error: str | None = None
        self._workspace: Any = None

    def _registry(self) -> Any:
        from tabpipe.registry import Registry
        from tabpipe.workspace import Workspace

        if self._workspace is None:
            self._workspace = Workspace(self.settings.workspace, self.settings.db_url)
        return Registry(self._workspace)

    def resolve(self) -> tuple[int, Path]:
        """The version and bundle folder the settings point at now."""
        if self.settings.bundle is not None:
            return 0, self.settings.bundle
        version = self._registry().resolve(self.settings.model, self.settings.alias)
        return version.version, version.path

    def load(self, version: int, path: Path) -> Loaded:
        """Load (checksums verified) and warm a bundle; does not make it current."""
        predictor = load_predictor(path, self.settings.runtime)
        loaded = Loaded(
            predictor, predictor.manifest, version, path, _validator(predictor.manifest, path)
        )
        warm_up(loaded)
        return loaded

    def load_current(self) -> Loaded:
        loaded = self.load(*self.resolve())
        self.current = loaded
        self.error = None
        return loaded

    def get(self) -> Loaded:
        current = self.current
        if current is None:
            raise NotReadyError(
                "the model is not loaded yet" + (f": {self.error}" if self.error else "")
            )
        return current

    @property
    def follows_alias(self) -> bool:
        return (
            self.settings.bundle is None
            and self.settings.poll_seconds > 0
            and not self.settings.alias.isdigit()
        )

    def check_for_swap(self) -> Loaded | None:
        """If the alias moved, load the new version and make it current; return it."""
        version, path = self.resolve()
        current = self.current
        if current is not None and current.version == version:
            return None
        loaded = self.load(version, path)
        self.current = loaded
        return loaded

    async def follow(self, on_swap: Any) -> None:
        """Poll the alias until cancelled; a failed poll or load is logged and retried."""
        while True:
            await asyncio.sleep(self.settings.poll_seconds)
            try:
                loaded = await asyncio.to_thread(self.check_for_swap)
            except Exception as exc:  # keep serving the current model whatever happens
                log.warning(
                    "hot swap failed; still serving the current model",
                    extra={"event": "swap_failed", "error": f"{type(exc).__name__}: {exc}"},
                )
                continue
            if loaded is not None:
                on_swap(loaded)
                log.info(
                    "serving a new model version",
                    extra={"event": "swapped", "version": loaded.version},
                )

    def close(self) -> None:
        if self._workspace is not None:
            self._workspace.close()
            self._workspace = None
