"""``tabpipe eda``: clean and profile one table, write the report, profile and contract."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tabpipe.config import CleaningSpec, ColumnDeclaration, TaskOrAuto
from tabpipe.data.cleaning import CleaningReport
from tabpipe.data.cleaning.core import clean_table
from tabpipe.eda.pairs import SHIFT_SAMPLE
from tabpipe.eda.profile import Profile, profile
from tabpipe.eda.report import render_html
from tabpipe.errors import StoreError

_SPLIT_ROWS = 500_000
FILES = ("report.html", "profile.json", "contract.json", "cleaning.json", "removed_rows.csv")


@dataclass(frozen=True)
class Exploration:
    cleaned: pd.DataFrame
    removed: pd.DataFrame
    report: CleaningReport
    profile: Profile
    html: str


def explore(
    frame: pd.DataFrame,
    target: str | None = None,
    *,
    task: TaskOrAuto = "auto",
    cleaning: CleaningSpec | None = None,
    columns: Mapping[str, ColumnDeclaration] | None = None,
    compare: pd.DataFrame | None = None,
    title: str = "data report",
    seed: int = 0,
) -> Exploration:
    """Clean and profile ``frame``; compare it with ``compare`` (cleaned by the same rules),
    or with a seeded 20% hold-out of itself when no second table is given."""
    result = clean_table(frame, target, task, cleaning, columns)
    cleaned, removed, report = result.rows, result.removed, result.report
    train: pd.DataFrame | None
    test: pd.DataFrame | None
    if compare is not None:
        train, test = cleaned, _same_rules(compare, report)
    elif len(cleaned) >= 10:
        train, test = _split(cleaned, seed)
    else:
        train = test = None
    prof = profile(cleaned, report, train=train, test=test, summaries=result.summaries)
    return Exploration(cleaned, removed, report, prof, render_html(prof, report, title))


def _split(frame: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A seeded 80/20 split of (at most ``_SPLIT_ROWS``) shuffled rows; of each side, only
    the (at most ``SHIFT_SAMPLE``) rows the train-versus-test view is computed on."""
    order = np.random.default_rng(seed).permutation(len(frame))[:_SPLIT_ROWS]
    n_test = -(-len(order) // 5)  # a fifth, rounded up
    train, test = order[n_test:][:SHIFT_SAMPLE], order[:n_test][:SHIFT_SAMPLE]
    return frame.iloc[np.sort(train)], frame.iloc[np.sort(test)]


def _same_rules(other: pd.DataFrame, report: CleaningReport) -> pd.DataFrame:
    from tabpipe.data.rules import apply_rules

    out = {}
    for info in report.columns:
        if info.name in other.columns and info.rules is not None:
            values = apply_rules(other[info.name].astype(object).to_numpy(), info.rules)
            if info.rules.kind == "numeric":
                values = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy()
            out[info.name] = values
    return pd.DataFrame(out)


def write_exploration(result: Exploration, folder: Path) -> dict[str, Path]:
    """Write the files into ``folder`` (each written to a temporary file, then renamed)."""
    folder.mkdir(parents=True, exist_ok=True)
    contents = {
        "report.html": result.html,
        "profile.json": result.profile.model_dump_json(indent=2),
        "contract.json": result.report.contract.model_dump_json(indent=2)
        if result.report.contract
        else "{}",
        "cleaning.json": result.report.model_dump_json(indent=2),
        "removed_rows.csv": result.removed.to_csv(index=False),
    }
    paths = {}
    try:
        for name, text in contents.items():
            with tempfile.NamedTemporaryFile(
                "w", encoding="utf-8", dir=folder, delete=False, suffix=".tmp"
            ) as tmp:
                tmp.write(text)
            Path(tmp.name).chmod(0o644)
            shutil.move(tmp.name, folder / name)
            paths[name] = folder / name
    except OSError as exc:
        raise StoreError(f"cannot write the EDA files into {folder}: {exc}") from exc
    return paths
