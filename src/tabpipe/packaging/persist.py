"""Safe persistence of fitted estimators with skops (never pickle).

Loading audits every type in the file first and refuses any type outside the
allow-list of trusted module prefixes; only the audited, explicitly named types
are then passed to skops as trusted. skops (and with it scikit-learn) is
imported on first use, so importing this module stays cheap.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tabpipe.errors import BundleError

#: Module prefixes whose types may be constructed when a model file is loaded.
TRUSTED_PREFIXES: tuple[str, ...] = (
    "sklearn.",
    "numpy.",
    "scipy.",
    "lightgbm.",
    "xgboost.",
    "catboost.",
    "tabpipe.",
)

#: Exact names trusted outside those modules (no builtins, operator or functools:
#: a crafted file could name callables there).
TRUSTED_NAMES: frozenset[str] = frozenset({"collections.OrderedDict"})


def dumps(estimator: Any) -> bytes:
    """Serialise a fitted estimator to skops bytes."""
    import skops.io as sio

    data: bytes = sio.dumps(estimator)
    return data


def loads(data: bytes, *, origin: str = "model") -> Any:
    """Load skops bytes after checking every type against the allow-list."""
    import skops.io as sio

    untrusted = sio.get_untrusted_types(data=data)
    refused = [
        t for t in untrusted if t not in TRUSTED_NAMES and not t.startswith(TRUSTED_PREFIXES)
    ]
    if refused:
        raise BundleError(
            f"{origin}: refusing to load types outside the trusted list: {', '.join(refused)}"
        )
    return sio.loads(data, trusted=untrusted)


def load(path: Path) -> Any:
    return loads(path.read_bytes(), origin=str(path))
