"""Views across columns: correlations, missing patterns, feature vs target, train vs test."""

from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import BaseModel

from tabpipe.data.cleaning import CleaningReport
from tabpipe.data.columnwise import map_columns

_MAX_MATRIX = 30
_MAX_LEVELS = 30
_MAX_VIEWS = 12
_SHIFT_BINS = 10
SHIFT_SAMPLE = 100_000


class Matrix(BaseModel):
    columns: list[str]
    values: list[list[float | None]]


class MissingPattern(BaseModel):
    columns: list[str]
    count: int


class TargetView(BaseModel):
    """One feature against the target, ready to chart.

    kind ``box``: per class, [min, q1, median, q3, max] of a numeric feature;
    ``share``: per category (labels), the share of each class (series);
    ``mean``: per bin or category (labels), the mean target (series 'mean').
    """

    feature: str
    kind: str
    labels: list[str]
    series: dict[str, list[float]]
    score: float | None = None


class Shift(BaseModel):
    column: str
    psi: float
    labels: list[str]
    train: list[float]
    test: list[float]


def pearson(sample: pd.DataFrame, numeric: list[str]) -> Matrix | None:
    names = [n for n in numeric if _varies(sample[n])][:_MAX_MATRIX]
    if len(names) < 2:
        return None
    corr = sample[names].astype("float64").corr(method="pearson").to_numpy()
    return Matrix(columns=names, values=_rows(corr))


def _varies(column: pd.Series) -> bool:
    """Whether a column holds two different present values (``nunique() > 1``; numbers
    compared to their first present value instead of hashed)."""
    if column.dtype != np.float64:
        return bool(column.nunique() > 1)
    values = column.to_numpy()
    present = values[~np.isnan(values)]
    return bool(present.size) and bool((present != present[0]).any())


def cramers_v(sample: pd.DataFrame, categorical: list[str]) -> Matrix | None:
    names = [n for n in categorical if 1 < sample[n].nunique() <= 500][:_MAX_MATRIX]
    if len(names) < 2:
        return None
    codes = {n: _codes(sample[n]) for n in names}
    out = np.eye(len(names))
    for i, a in enumerate(names):
        for j in range(i + 1, len(names)):
            out[i, j] = out[j, i] = _cramers(codes[a], codes[names[j]])
    return Matrix(columns=names, values=_rows(out))


def _codes(column: pd.Series) -> np.ndarray:
    codes, uniques = pd.factorize(column.astype(object))
    if len(uniques) > _MAX_LEVELS:
        top = np.argsort(-np.bincount(codes[codes >= 0]))[: _MAX_LEVELS - 1]
        remap = np.full(len(uniques), _MAX_LEVELS - 1)
        remap[top] = np.arange(len(top))
        codes = np.where(codes >= 0, remap[np.clip(codes, 0, None)], -1)
    return np.asarray(codes)


def _cramers(a: np.ndarray, b: np.ndarray) -> float:
    ok = (a >= 0) & (b >= 0)
    a, b = a[ok], b[ok]
    if a.size == 0:
        return float("nan")
    ka, kb = int(a.max()) + 1, int(b.max()) + 1
    table = np.bincount(a * kb + b, minlength=ka * kb).reshape(ka, kb).astype(np.float64)
    table = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0]
    if min(table.shape) < 2:
        return 0.0
    n = table.sum()
    expected = table.sum(axis=1, keepdims=True) @ table.sum(axis=0, keepdims=True) / n
    chi2 = float(((table - expected) ** 2 / expected).sum())
    return float(np.sqrt(chi2 / (n * (min(table.shape) - 1))))


def missing_patterns(sample: pd.DataFrame, top: int = 10) -> list[MissingPattern]:
    nulls = sample.isna()
    with_missing = [str(c) for c in nulls.columns[nulls.any().to_numpy()]][:40]
    if not with_missing:
        return []
    matrix = nulls[with_missing].to_numpy()
    packed = np.packbits(matrix, axis=1)  # at most 40 columns: 5 bytes, one uint64 per row
    wide = np.zeros((len(matrix), 8), dtype=np.uint8)
    wide[:, : packed.shape[1]] = packed
    keys = pd.Series(wide.view(np.uint64).ravel())
    counts = keys.value_counts().head(top)
    out = []
    for key in counts.index:
        first = int(np.flatnonzero((keys == key).to_numpy())[0])
        cols = [c for c, m in zip(with_missing, matrix[first], strict=True) if m]
        out.append(MissingPattern(columns=cols, count=int(counts[key])))
    return out


def target_views(sample: pd.DataFrame, report: CleaningReport) -> list[TargetView]:
    features = sorted(report.features(), key=lambda c: -(c.leakage_score or 0.0))[:_MAX_VIEWS]
    y = sample[report.target]
    views = []
    numbers = y.astype("float64") if report.task == "regression" else None
    masks: dict[str, np.ndarray] = {}  # per class (as text), its rows: once for every view
    classes: tuple[np.ndarray, list[str]] | None = None
    if numbers is None:
        labels = y.astype(str).to_numpy()
        masks = {cls: labels == cls for cls in sorted(set(labels))[:_MAX_LEVELS]}
        classes = _text_codes(y)
    for info in features:
        x = sample[info.name]
        if numbers is not None:
            views.append(_mean_view(x, numbers, info.kind == "numeric"))
        elif info.kind == "numeric":
            views.append(_box_view(x, masks))
        elif classes is not None:
            views.append(_share_view(x, classes))
        views[-1].score = info.leakage_score
    return views


def _box_view(x: pd.Series, masks: dict[str, np.ndarray]) -> TargetView:
    series = {}
    floats = x.to_numpy(dtype=np.float64, na_value=np.nan)
    for cls, mask in masks.items():
        values = floats[mask]
        values = values[~np.isnan(values)]
        if values.size:
            series[cls] = [float(v) for v in np.quantile(values, [0, 0.25, 0.5, 0.75, 1])]
    return TargetView(feature=str(x.name), kind="box", labels=list(series), series=series)


def _share_view(x: pd.Series, target: tuple[np.ndarray, list[str]]) -> TargetView:
    """Per category (its most frequent ones, sorted by name), the share of each class
    (``target``: the class codes and names of :func:`_text_codes`)."""
    rows, labels = _text_codes(x)
    classes, names = target
    counts = np.bincount(rows, minlength=len(labels))
    top = np.argsort(-counts, kind="stable")[: _MAX_LEVELS // 2]
    top = top[counts[top] > 0]
    table = np.bincount(rows * len(names) + classes, minlength=len(labels) * len(names))
    table = table.reshape(len(labels), len(names))[top]
    present = table.sum(axis=0) > 0
    by_label = np.argsort(np.asarray(labels, dtype=object)[top], kind="stable")
    by_class = sorted(np.flatnonzero(present), key=lambda j: names[j])
    shares = table[by_label] / table[by_label].sum(axis=1, keepdims=True)
    return TargetView(
        feature=str(x.name),
        kind="share",
        labels=[labels[i] for i in top[by_label]],
        series={names[j]: [float(v) for v in shares[:, j]] for j in by_class},
    )


def _text_codes(column: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Row codes into the distinct values as text (missing as '(missing)'), each text once."""
    codes, uniques = pd.factorize(column)
    texts = [*(str(u) for u in uniques), "(missing)"]
    merged, names = pd.factorize(pd.Index(texts, dtype=object))
    return np.asarray(merged)[np.asarray(codes)], [str(n) for n in names]


def _mean_view(x: pd.Series, y: pd.Series, numeric: bool) -> TargetView:
    values = x.to_numpy(dtype=np.float64, na_value=np.nan) if numeric else None
    if values is not None and np.unique(values[np.isfinite(values)]).size > _MAX_VIEWS:
        edges = np.unique(np.nanquantile(values, np.linspace(0, 1, 11)))
        groups = np.searchsorted(edges[1:-1], values, side="right")
        present = np.isfinite(values)
        means = y[present].groupby(groups[present]).mean()
        labels = [f"{edges[i]:.3g}–{edges[i + 1]:.3g}" for i in means.index]
        kind = "mean"
    else:
        text = x.astype(object).map(
            lambda v: "(missing)" if pd.isna(v) else f"{v:g}" if isinstance(v, float) else str(v)
        )
        top = text.value_counts().head(_MAX_LEVELS // 2).index
        keep = text.isin(top).to_numpy()
        means = y[keep].groupby(text[keep].to_numpy()).mean()
        labels = [str(v) for v in means.index]
        kind = "mean_bar"
    return TargetView(
        feature=str(x.name),
        kind=kind,
        labels=labels,
        series={"mean": [float(v) for v in means.to_numpy()]},
    )


def shifts(train: pd.DataFrame, test: pd.DataFrame, features: list[str]) -> list[Shift]:
    """PSI per feature on 10 quantile bins of train (numbers) or its top categories."""
    if len(train) > SHIFT_SAMPLE:
        train = train.sample(SHIFT_SAMPLE, random_state=0)
    if len(test) > SHIFT_SAMPLE:
        test = test.sample(SHIFT_SAMPLE, random_state=0)
    found = map_columns(lambda name: _shift(name, train[name], test[name]), features, len(train))
    return sorted((s for s in found if s is not None), key=lambda s: -s.psi)


def _shift(name: str, a: pd.Series, b: pd.Series) -> Shift | None:
    if pd.api.types.is_numeric_dtype(a):
        fa = a.to_numpy(dtype=np.float64, na_value=np.nan)
        fb = b.to_numpy(dtype=np.float64, na_value=np.nan)
        finite = fa[np.isfinite(fa)]
        if finite.size < 2:
            return None
        edges = np.unique(np.quantile(finite, np.linspace(0, 1, _SHIFT_BINS + 1)))
        inner = edges[1:-1]
        ca = bin_counts(finite, inner)
        cb = bin_counts(fb[np.isfinite(fb)], inner)
        labels = [f"≤{e:.3g}" for e in inner] + [f">{inner[-1]:.3g}" if len(inner) else "all"]
    else:
        va = a.value_counts(dropna=False)
        va = va[va > 0]
        vb = b.value_counts(dropna=False)
        top = list(va.head(_SHIFT_BINS).index)
        ca = np.array(
            [*(int(va.get(t, 0)) for t in top), int(va.sum() - va.head(_SHIFT_BINS).sum())]
        )
        cb = np.array([*(int(vb.get(t, 0)) for t in top), 0])
        cb[-1] = int(vb.sum() - cb[:-1].sum())
        labels = [*("(missing)" if pd.isna(t) else str(t) for t in top), "(other)"]
    pa, pb = _shares(ca), _shares(cb)
    psi = float(np.sum((pa - pb) * np.log(pa / pb)))
    return Shift(
        column=name,
        psi=round(psi, 5),
        labels=labels,
        train=[float(v) for v in pa],
        test=[float(v) for v in pb],
    )


def bin_counts(values: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """Values per bin between increasing inner edges (a value equal to an edge goes to the
    bin above it): ``bincount(searchsorted(inner, values, side="right"))``, from one
    comparison per edge instead of a binary search per value."""
    at_least = [values.size, *(int(np.count_nonzero(values >= e)) for e in inner), 0]
    return np.array([at_least[k] - at_least[k + 1] for k in range(len(inner) + 1)])


def _shares(counts: np.ndarray) -> np.ndarray:
    smoothed = counts + 0.5  # so an empty bin in a small sample does not explode the PSI
    return np.asarray(smoothed / smoothed.sum())


def _rows(matrix: np.ndarray) -> list[list[float | None]]:
    return [[None if not np.isfinite(v) else round(float(v), 4) for v in row] for row in matrix]
