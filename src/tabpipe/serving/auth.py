"""API keys: read from an environment variable or a file, compared in constant time.

Authentication is off when no key is configured. A client sends its key as
``Authorization: Bearer <key>`` or ``X-API-Key: <key>``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

from tabpipe.errors import ConfigError


class KeyRing:
    """The accepted keys, kept only as SHA-256 digests."""

    def __init__(self, keys: list[str]) -> None:
        self._digests = [hashlib.sha256(k.encode()).digest() for k in keys if k]

    @property
    def enabled(self) -> bool:
        return bool(self._digests)

    def accepts(self, presented: str | None) -> bool:
        """True when ``presented`` equals one of the keys; every key is compared, always."""
        if presented is None:
            return False
        digest = hashlib.sha256(presented.encode()).digest()
        found = False
        for known in self._digests:
            found |= hmac.compare_digest(digest, known)
        return found

    @classmethod
    def load(cls, env_var: str, file: Path | None) -> KeyRing:
        keys = [k.strip() for k in os.environ.get(env_var, "").split(",")]
        if file is not None:
            try:
                text = file.read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigError(f"cannot read the API key file {file}: {exc}") from exc
            keys += [
                line.strip()
                for line in text.splitlines()
                if line.strip() and not line.startswith("#")
            ]
        return cls([k for k in keys if k])


def presented_key(headers: dict[bytes, bytes]) -> str | None:
    """The key a request presents, from ``Authorization: Bearer`` or ``X-API-Key``."""
    raw = headers.get(b"x-api-key")
    if raw is not None:
        return raw.decode("latin-1").strip()
    auth = headers.get(b"authorization")
    if auth is not None:
        scheme, _, value = auth.decode("latin-1").partition(" ")
        if scheme.lower() == "bearer":
            return value.strip()
    return None
