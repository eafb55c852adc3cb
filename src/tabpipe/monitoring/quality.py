"""Data quality per window, from the flags the server attached to each logged row."""

from __future__ import annotations

import pandas as pd

FLAG_KINDS = {"unseen": "unseen categories", "range": "out-of-range values", "missing": "missing"}
"""The kinds of serving flags (``unseen:<col>``, ``range:<col>``, ``missing:<col>``)."""


def quality_shares(ok: pd.DataFrame) -> tuple[dict[str, float], dict[str, float]]:
    """Share of rows with each kind of flag (and any), and share of rows per flag."""
    if "flags" not in ok:
        return {}, {}
    out: dict[str, float] = {}
    flags = ok["flags"].map(lambda fs: [] if fs is None else list(fs))
    n = len(ok)
    for kind in FLAG_KINDS:
        prefix = kind + ":"
        has = flags.map(lambda fs, p=prefix: any(f.startswith(p) for f in fs))
        out[f"{kind}_share"] = float(has.sum() / n)
    out["any_share"] = float(flags.map(bool).sum() / n)
    per_flag = flags.explode().dropna().value_counts() / n
    return out, {str(k): float(v) for k, v in per_flag.items()}


__all__ = ["FLAG_KINDS", "quality_shares"]
