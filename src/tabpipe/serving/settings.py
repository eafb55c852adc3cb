"""What a server serves, its limits and its operations settings."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from tabpipe.serving.predlog import LogSettings
from tabpipe.serving.runtime import Runtime

#: Environment variable holding API keys, comma separated (the default source of keys).
API_KEYS_ENV = "TABPIPE_API_KEYS"
#: Environment variable holding the settings as JSON (worker processes, the Docker image).
SETTINGS_ENV = "TABPIPE_SERVE_SETTINGS"


class ServeSettings(BaseModel):
    """Settings of one server; ``create_app(settings)`` builds the app from them.

    Serve either a registered model (``workspace`` + ``model`` + ``alias``; the
    server follows the alias and swaps models when it moves) or one bundle
    folder (``bundle``; no registry, no hot swap).
    """

    model: str
    workspace: Path | str | None = Field(
        None, description="A workspace folder, or an object-store URL such as s3://bucket/prefix."
    )
    alias: str = "champion"
    db_url: str | None = None
    bundle: Path | None = None
    runtime: Runtime = "onnx"
    max_rows: int = Field(10_000, ge=1, description="Rows per JSON request.")
    max_body_bytes: int = Field(16 * 1024 * 1024, ge=1, description="Bytes per JSON request.")
    max_batch_rows: int = Field(1_000_000, ge=1, description="Rows per batch upload.")
    max_batch_bytes: int = Field(256 * 1024 * 1024, ge=1, description="Bytes per batch upload.")
    api_keys_env: str = API_KEYS_ENV
    api_keys_file: Path | None = None
    poll_seconds: float = Field(
        5.0, ge=0, description="Alias polling period; 0 turns hot swap off."
    )
    access_log: bool = True
    freeze_gc: bool = Field(
        True,
        description="Once the model is loaded, take the objects of startup (modules, the model) "
        "out of the garbage collector's full passes (gc.freeze): a full pass over them "
        "pauses the server for 0.1-0.2 s, and one comes every 10,000-20,000 requests.",
    )
    load: Literal["startup", "background"] = Field(
        "startup",
        description="startup: the app starts (and accepts requests) only once the model is "
        "loaded and warmed, and fails to start if it cannot be; background: it starts at once, "
        "answers 503 and reports not ready until then.",
    )
    prediction_log: LogSettings = Field(
        default_factory=LogSettings,
        description="The prediction log (workspace mode only): batching, user key, retention.",
    )

    @property
    def local_workspace(self) -> Path:
        """The workspace's local folder (the cache folder of an object-store workspace)."""
        from tabpipe.workspace import local_root

        return local_root(self.workspace)

    @model_validator(mode="after")
    def _one_source(self) -> ServeSettings:
        if (self.workspace is None) == (self.bundle is None):
            raise ValueError("set exactly one of 'workspace' (registered model) or 'bundle'")
        return self
