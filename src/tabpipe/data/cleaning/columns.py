"""Column decisions: feature or excluded (and why), outliers, imputation, leakage."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tabpipe.config import CleaningSpec, ColumnDeclaration, Task
from tabpipe.data.cleaning import checks
from tabpipe.data.cleaning.infer import Fitted
from tabpipe.data.cleaning.report import ColumnInfo, ColumnKind, Finding, LedgerEntry
from tabpipe.data.columnwise import map_columns
from tabpipe.data.quantiles import median
from tabpipe.data.rules import apply_rules
from tabpipe.data.summary import NumericSummary, distinct_count, summarise
from tabpipe.errors import ConfigError

_ID_NAME = re.compile(r"(^|_)(id|key|uuid)$|id$", re.IGNORECASE)
_MAX_CATEGORIES = 200
_MAX_TEXT_LENGTH = 200
_STRONG = 0.6
_COUNT_SAMPLE = 200_000
#: Neighbours of the knn imputer (:mod:`tabpipe.features.impute`).
KNN_NEIGHBORS = 5


def decide_columns(
    raw: pd.DataFrame,
    fitted: dict[str, Fitted],
    keep: np.ndarray,
    target: str | None,
    task: Task,
    spec: CleaningSpec,
    decls: Mapping[str, ColumnDeclaration],
    entries: list[LedgerEntry],
    described: Mapping[str, Described] | None = None,
) -> tuple[list[ColumnInfo], list[Finding], dict[str, NumericSummary]]:
    """Each column's role and reason (after the outlier and imputation steps), the findings,
    and the summaries of the numeric columns whose values those steps left unchanged.

    ``described``: :func:`describe_column` of some columns, done already (by the task that
    fitted them); the others are described here.
    """
    names = [str(n) for n in raw.columns]
    done = dict(described or {})
    todo = [name for name in names if name not in done]
    for name, item in zip(
        todo,
        map_columns(
            lambda name: describe_column(name, fitted[name], raw[name], keep, name == target, spec),
            todo,
            len(raw),
        ),
        strict=True,
    ):
        done[name] = item
    infos = {name: done[name][0] for name in names}
    numbers = {name: n for name in names if (n := done[name][1]) is not None}
    for name, decl in decls.items():
        if name in infos and name != target:
            infos[name] = _declared(infos[name], decl, fitted[name])
    findings: list[Finding] = []
    if target is not None:
        findings += _leakage(infos, fitted, keep, target, task, spec, decls)
    for info in infos.values():
        if info.role == "excluded" and info.name in raw.columns:
            entries.append(
                LedgerEntry(
                    column=info.name,
                    step="columns",
                    action="exclude_column",
                    rows=0,
                    detail=f"excluded from the features: {info.reason}",
                )
            )
        elif info.role == "feature":
            fit = fitted[info.name]
            before = fit.values
            _outliers(info, fit, keep, spec, entries, numbers.get(info.name))
            _impute(info, fit, keep, spec, decls.get(info.name), entries)
            if fit.values is not before:  # clipped or filled: the summary is of other values
                numbers.pop(info.name, None)
    summaries = {name: n.summary for name, n in numbers.items() if n.summary is not None}
    return list(infos.values()), findings, summaries


@dataclass(frozen=True)
class ColumnNumbers:
    """What :func:`describe_column` computed for a numeric column, for the later steps."""

    summary: NumericSummary | None
    #: outlier fences (None: no spread) and the number of present values outside them
    fences: tuple[float, float] | None
    outside: int


#: what :func:`describe_column` returns
Described = tuple[ColumnInfo, "ColumnNumbers | None"]


def describe_column(
    name: str, fit: Fitted, raw: pd.Series, keep: np.ndarray, is_target: bool, spec: CleaningSpec
) -> Described:
    """A fitted column's info before the table-wide steps (role, reason, range, categories),
    and for a numeric column its summary and outlier fences."""
    values = fit.values if keep.all() else fit.values[keep]
    numeric = fit.rules is not None and fit.rules.kind == "numeric"
    counts = _counts(values) if not numeric else pd.Series([], dtype=np.int64)
    finite = np.empty(0)  # the present values (infinities included)
    if numeric:
        floats = values.to_numpy(dtype=np.float64, na_value=np.nan)
        gaps = np.isnan(floats)
        missing = int(np.count_nonzero(gaps))
        finite = floats[~gaps] if missing else floats
        del gaps
    else:
        missing = int(values.isna().sum())
    unique = len(counts) if not numeric else _distinct(finite, finite.size == len(values))
    base = {
        "name": name,
        "raw_dtype": str(raw.dtype),
        "missing": missing,
        "unique": unique,
        "logical_type": fit.logical_type,
        "formats": fit.formats,
        "max_length": fit.max_length,
        "rules": fit.rules,
    }
    if is_target:
        kind: ColumnKind = "numeric" if pd.api.types.is_float_dtype(values) else "categorical"
        return ColumnInfo(**base, kind=kind, role="target"), None
    present = len(values) - missing
    if unique == 0:
        return _excluded(base, "empty", "every value is missing"), None
    if missing / max(len(values), 1) > spec.drop_missing_share:
        return _excluded(
            base,
            "numeric" if numeric else "categorical",
            f"{missing / len(values):.0%} missing, above cleaning.drop_missing_share "
            f"({spec.drop_missing_share:.0%})",
        ), None
    if unique == 1:
        return _excluded(
            base, "constant", f"a single value ({values.dropna().iloc[0]!r}) carries no signal"
        ), None
    if fit.logical_type == "datetime":  # expanded into calendar features by the builder
        return ColumnInfo(**base, kind="datetime", role="feature"), None
    numbers = None
    if numeric:
        if unique == len(values) and _looks_like_id(values, name):
            return _excluded(
                base, "identifier", "unique integer per row: an identifier, not a feature"
            ), None
        low, high = float(finite.min()), float(finite.max())
        summary = None
        if np.isfinite(low) and np.isfinite(high):  # the profile's statistics, computed once
            summary = summarise(finite, len(values), missing)
        middle = summary.median if summary and summary.median is not None else median(finite)
        fences = checks.fences(finite, spec)
        outside = 0
        if fences is not None:
            outside = int(np.count_nonzero((finite < fences[0]) | (finite > fences[1])))
        numbers = ColumnNumbers(summary, fences, outside)
        info = ColumnInfo(
            **base,
            kind="numeric",
            role="feature",
            minimum=_finite(low),
            maximum=_finite(high),
            median=_finite(middle),
        )
        # a value held by more than half the rows is the median: its exact share is the top
        # share whenever that can reach near_constant_share (> 0.5)
        share = float(np.count_nonzero(finite == middle) / finite.size)
    else:
        if unique == present and len(values) > 50:
            return _excluded(
                base, "identifier", "a different value in every row: an identifier, not a feature"
            ), None
        if (
            unique > max(_MAX_CATEGORIES, len(values) // 2)
            or (fit.max_length or 0) > _MAX_TEXT_LENGTH
        ):
            return _excluded(
                base, "text", f"{unique} distinct strings: free text or high cardinality"
            ), None
        categories = sorted(str(v) for v in counts.index)
        info = ColumnInfo(**base, kind="categorical", role="feature", categories=categories)
        share = float(counts.iloc[0]) / float(counts.sum()) if len(counts) else 0.0
    if len(values) >= 100 and share >= spec.near_constant_share:
        return info.model_copy(
            update={
                "role": "excluded",
                "reason": f"near-constant: one value in {share:.1%} of rows "
                f"(cleaning.near_constant_share {spec.near_constant_share})",
            }
        ), numbers
    return info, numbers


def _declared(info: ColumnInfo, decl: ColumnDeclaration, fit: Fitted) -> ColumnInfo:
    if decl.role == "exclude":
        return info.model_copy(
            update={"role": "excluded", "reason": decl.reason or "excluded by the spec"}
        )
    if decl.role == "feature" and decl.type == "text" and fit.rules is not None:
        return info.model_copy(  # free text opted in: a TF-IDF feature
            update={"role": "feature", "kind": "text", "reason": None, "categories": None}
        )
    if decl.role == "feature" and info.role != "feature":
        if fit.rules is None:
            return info.model_copy(
                update={
                    "reason": f"{info.reason}; the spec asks for it as a feature, but a "
                    f"{fit.logical_type} column cannot be one yet"
                }
            )
        kind: ColumnKind = "numeric" if fit.rules.kind == "numeric" else "categorical"
        categories = None
        if kind == "categorical":
            categories = sorted(str(v) for v in fit.values.dropna().unique())
        return info.model_copy(
            update={"role": "feature", "kind": kind, "reason": None, "categories": categories}
        )
    return info


def _leakage(
    infos: dict[str, ColumnInfo],
    fitted: dict[str, Fitted],
    keep: np.ndarray,
    target: str,
    task: Task,
    spec: CleaningSpec,
    decls: Mapping[str, ColumnDeclaration],
) -> list[Finding]:
    findings = []
    rows = np.flatnonzero(keep)
    sample = checks.leak_sample(len(rows))
    if sample is not None:
        rows = rows[sample]
    y = fitted[target].values.iloc[rows]
    prepared = checks.leak_target(y, task)  # once for every feature
    forced = {n for n, d in decls.items() if d.role == "feature"}
    candidates = [i for i in infos.values() if i.role == "feature"]
    scores = map_columns(
        lambda info: checks.leakage_score(fitted[info.name].values.iloc[rows], prepared, task),
        candidates,
        len(keep),
    )
    for info, score in zip(candidates, scores, strict=True):
        if score is None:
            continue
        info.leakage_score = round(score, 4)
        if score >= spec.leakage_threshold and info.name not in forced:
            info.role = "excluded"
            info.reason = (
                f"leakage suspect: alone it predicts {target!r} with score {score:.3f} "
                f"(threshold {spec.leakage_threshold}); if it is known at prediction time, "
                f"keep it with columns: {{{info.name}: {{role: feature}}}}"
            )
            findings.append(
                Finding(column=info.name, kind="leakage", severity="error", message=info.reason)
            )
        elif score >= _STRONG:
            findings.append(
                Finding(
                    column=info.name,
                    kind="strong_predictor",
                    severity="warning",
                    message=f"alone it predicts {target!r} with score {score:.2f}: check that it "
                    "is known at prediction time and is not derived from the target",
                )
            )
    if task == "regression":
        numeric = [i.name for i in infos.values() if i.role == "feature" and i.kind == "numeric"]
        frame = pd.DataFrame({n: fitted[n].values.iloc[rows] for n in numeric}, copy=False)
        for a, b in checks.sum_leaks(frame, numeric, y):
            for name in (a, b):
                if name in forced:
                    continue
                infos[name].role = "excluded"
                infos[name].reason = (
                    f"leakage suspect: {a!r} + {b!r} equals the target {target!r} in every row; "
                    f"keep it with columns: {{{name}: {{role: feature}}}}"
                )
                findings.append(
                    Finding(
                        column=name,
                        kind="leakage",
                        severity="error",
                        message=infos[name].reason or "",
                    )
                )
    return findings


def _outliers(
    info: ColumnInfo,
    fit: Fitted,
    keep: np.ndarray,
    spec: CleaningSpec,
    entries: list[LedgerEntry],
    numbers: ColumnNumbers | None = None,
) -> None:
    """Fences, and how many kept values lie outside them (from :func:`describe_column` when it
    computed them); the policy clips, flags or marks them for removal."""
    if info.kind != "numeric" or fit.rules is None:
        return
    if numbers is not None:
        bounds, count = numbers.fences, numbers.outside
    else:
        values = fit.values.to_numpy(dtype=np.float64, na_value=np.nan)
        bounds = checks.outlier_bounds(values[keep], spec)
        count = 0
        if bounds is not None:
            count = int((keep & ((values < bounds[0]) | (values > bounds[1]))).sum())
    if bounds is None:
        return
    low, high = bounds
    info.outliers = count
    if not count:
        return
    method = f"{spec.outlier_method} fences [{low:.4g}, {high:.4g}]"
    if spec.outliers == "clip":
        fit.rules = fit.rules.model_copy(update={"lower": low, "upper": high})
        values = fit.values.to_numpy(dtype=np.float64, na_value=np.nan)
        fit.values = pd.Series(
            apply_rules(values, fit.rules), index=fit.values.index, name=fit.values.name
        )
        info.rules = fit.rules
        info.minimum, info.maximum = max(low, info.minimum or low), min(high, info.maximum or high)
        action, detail = "clip_outliers", f"{count} value(s) outside {method} clipped to the fences"
    elif spec.outliers == "drop":
        info.minimum, info.maximum = low, high
        action, detail = "flag_outliers", f"{count} row(s) outside {method}; removed (policy drop)"
    else:
        action, detail = "flag_outliers", f"{count} value(s) outside {method}; kept (policy flag)"
    entries.append(
        LedgerEntry(column=info.name, step="outliers", action=action, rows=count, detail=detail)
    )


def _impute(
    info: ColumnInfo,
    fit: Fitted,
    keep: np.ndarray,
    spec: CleaningSpec,
    decl: ColumnDeclaration | None,
    entries: list[LedgerEntry],
) -> None:
    if fit.rules is None:
        return
    numeric = fit.rules.kind == "numeric"
    how = decl.impute if decl is not None and decl.impute is not None else None
    strategy = how or (spec.impute_numeric if numeric else spec.impute_categorical)
    if (strategy in ("median", "mean", "knn") and not numeric) or (strategy == "mode" and numeric):
        kind = "numeric" if numeric else "categorical"
        raise ConfigError(
            f"columns.{info.name}.impute: {strategy!r} does not apply to {info.name!r}, a "
            f"{kind} column; use "
            + ("model, knn, median, mean or constant" if numeric else "model, mode or constant")
        )
    if strategy == "model" or not info.missing:
        return
    if strategy == "knn":
        _impute_knn(info, entries)
        return
    values = fit.values[keep]
    update: dict[str, object]
    if numeric:
        floats = values.to_numpy(dtype=np.float64, na_value=np.nan)
        fill = {
            "median": np.nanmedian(floats),
            "mean": np.nanmean(floats),
            "constant": spec.fill_number,
        }[strategy]
        update, text = {"fill_number": float(fill)}, f"{strategy} {float(fill):.6g}"
    else:
        fill_text = spec.fill_category if strategy == "constant" else str(values.mode().iloc[0])
        update, text = {"fill_category": fill_text}, f"{strategy} {fill_text!r}"
        if info.categories is not None and fill_text not in info.categories:
            info.categories = sorted([*info.categories, fill_text])
    fit.rules = fit.rules.model_copy(update=update)
    info.rules = fit.rules
    fit.values = pd.Series(
        apply_rules(fit.values.to_numpy(), fit.rules), index=fit.values.index, name=fit.values.name
    )
    entries.append(
        LedgerEntry(
            column=info.name,
            step="impute",
            action="impute",
            rows=info.missing,
            detail=f"{info.missing} missing value(s) filled with the {text}",
        )
    )


def _impute_knn(info: ColumnInfo, entries: list[LedgerEntry]) -> None:
    """Model-based imputation is learned, not a rule: the column is marked, and the model
    pipeline starts with a nearest-neighbours imputer fitted on the training rows (see
    :mod:`tabpipe.features.impute`), so serving and the ONNX graph replay it."""
    info.imputer = "knn"
    entries.append(
        LedgerEntry(
            column=info.name,
            step="impute",
            action="impute_knn",
            rows=info.missing,
            detail=(
                f"{info.missing} missing value(s) imputed from the {KNN_NEIGHBORS} nearest "
                "training rows on the numeric features, inside the model pipeline (fitted on "
                "each training fold; the same imputer runs at serving and in the ONNX graph)"
            ),
        )
    )


def _counts(values: pd.Series) -> pd.Series:
    """Value counts (most frequent first)."""
    counts = values.value_counts(dropna=True, sort=True)
    return counts[counts > 0]


def _distinct(finite: np.ndarray, complete: bool) -> int:
    """Distinct non-missing values: exact for integer columns without gaps (``complete``;
    identifier checks need it), else from a sample."""
    if finite.size == 0:
        return 0
    if not complete or not np.all(np.mod(finite[:1000], 1) == 0):
        finite = (
            finite[_spread(finite.size, _COUNT_SAMPLE)] if finite.size > _COUNT_SAMPLE else finite
        )
    return distinct_count(finite)


def _spread(n: int, size: int) -> np.ndarray:
    """Evenly spaced row positions (deterministic, no shuffle of the whole column)."""
    return np.linspace(0, n - 1, size).astype(np.int64)


def _excluded(base: dict[str, object], kind: ColumnKind, reason: str) -> ColumnInfo:
    return ColumnInfo(**base, kind=kind, role="excluded", reason=reason)  # type: ignore[arg-type]


def _looks_like_id(values: pd.Series, name: str) -> bool:
    if values.isna().any() or len(values) < 50:
        return False
    floats = values.to_numpy(dtype=np.float64)
    if not np.all(np.mod(floats, 1) == 0):
        return False
    return bool(_ID_NAME.search(name)) or bool(values.is_monotonic_increasing)


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None
