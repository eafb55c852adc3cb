"""Per-column inference: logical type, formats, and the fitted :class:`ColumnRules`.

Text columns are factorised first, so every format check and every parse runs
once per distinct value, not once per row.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tabpipe.config import CleaningSpec, ColumnDeclaration, LogicalType
from tabpipe.data.cleaning.report import LedgerEntry
from tabpipe.data.dates import DATE_FORMATS
from tabpipe.data.rules import (
    BOOLEAN_WORDS,
    CURRENCY_SYMBOLS,
    DEFAULT_MISSING_MARKERS,
    ColumnRules,
    apply_rules,
    category_string,
    clean_value,
    unit_of,
)

NUMERIC_SHARE = 0.98
#: Distinct non-number texts of a numeric column kept as missing markers for serving.
LEARNED_MARKERS = 1000
_THOUSANDS = re.compile(r"\d,\d{3}(?:[.]|$)")
#: A text shaped like a code: a letter prefix and digits (ICD-9's 'V57', 'E909').
_CODE = re.compile(r"^[A-Za-z]{1,3}\d+(?:\.\d+)?$")
DATE_SHARE = 0.9
_EXAMPLES = 5


@dataclass
class Fitted:
    """The outcome of inference for one column."""

    logical_type: LogicalType
    values: pd.Series
    rules: ColumnRules | None = None
    formats: list[str] = field(default_factory=list)
    entries: list[LedgerEntry] = field(default_factory=list)
    max_length: int | None = None


def markers_for(spec: CleaningSpec, decl: ColumnDeclaration | None) -> list[str]:
    extra = [*spec.missing_markers, *(decl.missing_values if decl else [])]
    return sorted({*DEFAULT_MISSING_MARKERS, *(m.strip().casefold() for m in extra)})


def fit_column(column: pd.Series, spec: CleaningSpec, decl: ColumnDeclaration | None) -> Fitted:
    """Infer what a raw column is and clean it; every change is a ledger entry."""
    name = str(column.name)
    markers = markers_for(spec, decl)
    if pd.api.types.is_bool_dtype(column):
        rules = ColumnRules(kind="categorical", missing_markers=markers)
        return Fitted("boolean", _series(apply_rules(_objects(column), rules), column), rules)
    if pd.api.types.is_datetime64_any_dtype(column):
        return Fitted("datetime", column)
    if pd.api.types.is_numeric_dtype(column):
        return fit_numbers(column, name, markers, spec, decl, entries=[])
    return _fit_text(column, name, markers, spec, decl)


def fit_numbers(
    column: pd.Series,
    name: str,
    markers: list[str],
    spec: CleaningSpec,
    decl: ColumnDeclaration | None,
    *,
    entries: list[LedgerEntry],
    remove_chars: str = "",
    unit: str | None = None,
    parsed: np.ndarray | None = None,
) -> Fitted:
    """A numeric column (native or parsed from text), with sentinel numbers read as missing."""
    rules = ColumnRules(
        kind="numeric", missing_markers=markers, remove_chars=remove_chars, unit=unit
    )
    raw = parsed if parsed is not None else column.to_numpy(dtype=np.float64, na_value=np.nan)
    # a float64 numpy column may hand out its own buffer: keep it behind the Series
    shared = parsed is None and column.dtype == np.float64
    declared = [float(v) for v in (decl.missing_values if decl else []) if _is_number(v)]
    sentinels = _sentinels(raw, spec.sentinels) + declared
    if sentinels:
        hits = int(np.isin(raw, sentinels).sum())
        if hits:
            found = sorted({s for s in sentinels if (raw == s).any()})
            entries.append(
                LedgerEntry(
                    column=name,
                    step="missing_values",
                    action="sentinel_to_missing",
                    rows=hits,
                    detail=f"sentinel number(s) {found} read as missing",
                    examples=[repr(s) for s in found],
                )
            )
        rules = rules.model_copy(update={"sentinels": sentinels})
        raw = apply_rules(raw, rules)
        shared = False
    missing = np.isnan(raw)
    head = raw[:1000][~missing[:1000]]
    if pd.api.types.is_integer_dtype(column):
        integer = not missing.all()
    elif not _whole(head):  # the first values settle most float columns
        integer = False
    else:
        finite = raw[~missing]
        integer = bool(finite.size) and _whole(finite)
    formats = [f for f in (_describe_chars(remove_chars), unit and f"unit {unit!r}") if f]
    values = (  # no copy of an array of our own; a shallow, copy-on-write view of the input
        column.copy(deep=False)
        if shared
        else pd.Series(raw, index=column.index, name=column.name, copy=False)
    )
    return Fitted(
        "integer" if integer else "numeric",
        values,
        rules,
        [str(f) for f in formats],
        entries,
    )


def _fit_text(
    column: pd.Series,
    name: str,
    markers: list[str],
    spec: CleaningSpec,
    decl: ColumnDeclaration | None,
) -> Fitted:
    raw_codes, distinct = pd.factorize(column, use_na_sentinel=True)
    codes = np.asarray(raw_codes)
    uniques = distinct.tolist()  # one conversion, not one scalar at a time
    present_rows = codes >= 0
    counts = np.bincount(
        codes if present_rows.all() else codes[present_rows], minlength=len(uniques)
    )
    del present_rows
    # per distinct value, in plain Python (the pandas string methods cost more per value)
    text_list = [category_string(u) for u in uniques]  # text: factorising left out missing
    stripped_list = [t.strip() if t is not None else t for t in text_list]
    folded_list = [t.casefold() if t is not None else t for t in stripped_list]
    marker_set = set(markers)
    is_marker = np.array([f in marker_set for f in folded_list], dtype=bool)
    texts = pd.Series(text_list, dtype=object)
    stripped = pd.Series(stripped_list, dtype=object)
    folded = pd.Series(folded_list, dtype=object)
    entries: list[LedgerEntry] = []
    marker_rows = int(counts[is_marker].sum())
    if marker_rows:
        found = sorted(set(texts[is_marker].tolist()))
        entries.append(
            LedgerEntry(
                column=name,
                step="missing_values",
                action="marker_to_missing",
                rows=marker_rows,
                detail=f"missing-value markers {found[:_EXAMPLES]} read as missing",
                examples=[repr(v) for v in found[:_EXAMPLES]],
            )
        )
    present = ~is_marker
    want = decl.type if decl else None
    cand = stripped[present]
    weights = counts[present]
    factors = (codes, uniques)
    if cand.empty:
        rules = ColumnRules(kind="categorical", missing_markers=markers)
        return Fitted("categorical", _take(factors, rules, column), rules, entries=entries)
    if want in (None, "numeric", "integer"):
        numeric = _try_numbers(
            column, factors, cand, weights, present, name, markers, spec, decl, entries, want
        )
        if numeric is not None:
            return numeric
    if want in (None, "boolean") and spec.fix_formats:
        words = set(folded[present])
        if words <= set(BOOLEAN_WORDS) and (want or (len(words) >= 2 and not words <= {"t", "f"})):
            return _fit_boolean(column, factors, name, markers, counts, texts, present, entries)
    if want in (None, "datetime") and spec.fix_formats:
        dates = _try_dates(column, name, stripped, codes, present, entries, forced=want is not None)
        if dates is not None:
            return dates
    return _fit_categories(
        column, factors, name, markers, spec, counts, texts, stripped, present, entries
    )


def _try_numbers(
    column: pd.Series,
    factors: tuple[np.ndarray, list[Any]],
    cand: pd.Series,
    weights: np.ndarray,
    present: np.ndarray,
    name: str,
    markers: list[str],
    spec: CleaningSpec,
    decl: ColumnDeclaration | None,
    entries: list[LedgerEntry],
    want: str | None,
) -> Fitted | None:
    remove, unit = "", None
    if spec.fix_formats:
        values = cand.tolist()
        if any(_THOUSANDS.search(v) for v in values):
            remove += ","
        joined = "\n".join(values)  # one scan for all currency symbols
        remove += "".join(c for c in CURRENCY_SYMBOLS if c in joined)
        if any(v.endswith("%") for v in values):
            remove += "%"
        units = [unit_of(v) for v in values]
        found = {u for u in units if u is not None}
        with_unit = np.array([u is not None for u in units], dtype=bool)
        if len(found) == 1 and weights[with_unit].sum() >= 0.5 * weights.sum():
            unit = str(found.pop())
    rules = ColumnRules(kind="numeric", missing_markers=markers, remove_chars=remove, unit=unit)
    cleaned, parsed_ok = _parse_distinct(factors[1], rules)  # each distinct value parsed once
    ok = parsed_ok[present]
    share = weights[ok].sum() / max(weights.sum(), 1)
    if want is None and (share < NUMERIC_SHARE or _holds_codes(factors[1], parsed_ok)):
        return None
    changed = int(weights.sum())
    parsed, learned = _to_float(factors, cleaned, name, entries)
    fitted = fit_numbers(
        column,
        name,
        sorted({*markers, *learned}),
        spec,
        decl,
        entries=entries,
        remove_chars=remove,
        unit=unit,
        parsed=parsed,
    )
    how = ", ".join(fitted.formats) or "plain numbers"
    entries.insert(
        len(entries) - sum(e.action == "sentinel_to_missing" for e in entries),
        LedgerEntry(
            column=name,
            step="formats",
            action="parse_numbers",
            rows=changed,
            detail=f"numbers stored as text parsed ({how})",
            examples=[repr(v) for v in cand.head(_EXAMPLES).tolist()],
        ),
    )
    return fitted


def _fit_boolean(
    column: pd.Series,
    factors: tuple[np.ndarray, list[Any]],
    name: str,
    markers: list[str],
    counts: np.ndarray,
    texts: pd.Series,
    present: np.ndarray,
    entries: list[LedgerEntry],
) -> Fitted:
    rules = ColumnRules(kind="categorical", missing_markers=markers, boolean_map=BOOLEAN_WORDS)
    entries.append(
        LedgerEntry(
            column=name,
            step="formats",
            action="boolean_words",
            rows=int(counts[present].sum()),
            detail="boolean words (yes/no, true/false, y/n) mapped to 'true' / 'false'",
            examples=[repr(v) for v in sorted(set(texts[present].tolist()))[:_EXAMPLES]],
        )
    )
    return Fitted("boolean", _take(factors, rules, column), rules, ["boolean words"], entries)


def _try_dates(
    column: pd.Series,
    name: str,
    stripped: pd.Series,
    codes: np.ndarray,
    present: np.ndarray,
    entries: list[LedgerEntry],
    *,
    forced: bool,
) -> Fitted | None:
    cand = stripped[present]
    sample = cand.head(500)
    if not forced and not sample.str.contains(r"\d", regex=True).all():
        return None
    parsed = pd.Series(pd.NaT, index=stripped.index, dtype="datetime64[ns]")
    used: dict[str, int] = {}
    for fmt in DATE_FORMATS:
        todo = parsed.isna().to_numpy() & present
        if not todo.any():
            break
        got = pd.to_datetime(stripped[todo], format=fmt, errors="coerce")
        hit = got.notna()
        if hit.any():
            parsed[got[hit].index] = got[hit]
            used[fmt] = int(hit.sum())
    share = parsed[present].notna().mean()
    if share < DATE_SHARE and not forced:
        return None
    per_row = parsed.to_numpy()[codes]
    per_row[codes < 0] = np.datetime64("NaT")
    values = pd.Series(per_row, index=column.index, name=column.name)
    present_rows = (codes >= 0) & present[np.clip(codes, 0, None)]
    bad = int((present_rows & pd.isna(per_row)).sum())
    detail = f"dates parsed with {len(used)} format(s): {', '.join(used)}"
    if len(used) > 1:
        detail = "mixed date formats; " + detail
    entries.append(
        LedgerEntry(
            column=name,
            step="formats",
            action="parse_dates",
            rows=int(values.notna().sum()),
            detail=detail + (f"; {bad} unparseable value(s) set to missing" if bad else ""),
            examples=[repr(v) for v in cand.head(_EXAMPLES).tolist()],
        )
    )
    return Fitted("datetime", values, None, list(used), entries)


def _fit_categories(
    column: pd.Series,
    factors: tuple[np.ndarray, list[Any]],
    name: str,
    markers: list[str],
    spec: CleaningSpec,
    counts: np.ndarray,
    texts: pd.Series,
    stripped: pd.Series,
    present: np.ndarray,
    entries: list[LedgerEntry],
) -> Fitted:
    frame = pd.DataFrame({"stripped": stripped[present], "count": counts[present]}).assign(
        folded=lambda f: f["stripped"].str.casefold()
    )
    case_map: dict[str, str] = {}
    if spec.fix_formats:
        best = frame.groupby(["folded", "stripped"], sort=False)["count"].sum().reset_index()
        best = best.sort_values("count", ascending=False, kind="stable")
        best = best.drop_duplicates("folded")
        case_map = dict(zip(best["folded"], best["stripped"], strict=True))
    rules = ColumnRules(kind="categorical", missing_markers=markers, case_map=case_map)
    spaced = (texts != stripped).to_numpy() & present
    if spaced.any():
        entries.append(
            LedgerEntry(
                column=name,
                step="formats",
                action="strip_whitespace",
                rows=int(counts[spaced].sum()),
                detail="leading/trailing whitespace removed",
                examples=[repr(v) for v in texts[spaced].head(_EXAMPLES).tolist()],
            )
        )
    if case_map:
        canon = frame["folded"].map(case_map)
        varied = (frame["stripped"] != canon).to_numpy()
        if varied.any():
            pairs = sorted(
                {
                    f"{a!r}->{b!r}"
                    for a, b in zip(frame["stripped"][varied], canon[varied], strict=True)
                }
            )
            entries.append(
                LedgerEntry(
                    column=name,
                    step="formats",
                    action="fold_case_variants",
                    rows=int(frame["count"][varied].sum()),
                    detail=f"case variants folded to the most frequent spelling: {', '.join(pairs[:_EXAMPLES])}",
                    examples=pairs[:_EXAMPLES],
                )
            )
    values = _take(factors, rules, column)
    lengths = stripped[present].str.len()
    max_length = int(lengths.max()) if len(lengths) else None
    return Fitted("categorical", values, rules, [], entries, max_length)


_PLAIN_NUMBER = r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$"


def _holds_codes(uniques: list[Any], parsed_ok: np.ndarray) -> bool:
    """Whether the texts that are not numbers are codes (two or more distinct, shaped like
    'V57'): then the column is one of codes, its numbers codes too ('250.83' names a
    diagnosis, it is not a quantity), and it is categorical. The strays of a numeric column
    are markers or typos ('n.a.', '12..5'), which become missing instead."""
    strays = (uniques[i] for i in np.flatnonzero(~parsed_ok))  # most columns: none
    codes = {u.strip() for u in strays if isinstance(u, str) and _CODE.match(u.strip())}
    return len(codes) >= 2


def _parse_distinct(uniques: list[Any], rules: ColumnRules) -> tuple[list[Any], np.ndarray]:
    """:func:`clean_value` of each distinct value, and whether it gave a number.

    Plain decimal texts (after the rule's character removal) are parsed in one Arrow
    pass, which gives the same correctly rounded doubles as ``float``; every other
    value (markers, units, exotic spaces, anything else) goes through
    :func:`clean_value` itself.

    The Arrow pass tells markers apart with ``ascii_lower`` where :func:`parse_number
    <tabpipe.data.rules.parse_number>` uses ``casefold``. Both agree on every text the
    pass can take (ASCII digits, signs, '.', 'e', spaces and the removed characters, none
    of which folds differently); a text with any other character is no plain number and
    goes through :func:`clean_value`, which decides whether it is a marker (a learned
    marker such as 'V57' always does).
    """
    plain = rules.unit is None and not rules.sentinels and rules.fill_number is None
    plain = plain and rules.lower is None and rules.upper is None and len(uniques) > 1000
    fast = np.zeros(len(uniques), dtype=bool)
    cleaned: list[Any] = [math.nan] * len(uniques)
    if plain:
        import pyarrow as pa
        import pyarrow.compute as pc

        texts = pa.array([u if isinstance(u, str) else None for u in uniques], type=pa.string())
        trimmed = pc.ascii_trim_whitespace(texts)
        body = trimmed
        for ch in rules.remove_chars:
            body = pc.replace_substring(body, ch, "")
        body = pc.ascii_trim_whitespace(body)
        marker = pc.is_in(pc.ascii_lower(trimmed), value_set=pa.array(rules.missing_markers))
        take = pc.and_(pc.match_substring_regex(body, _PLAIN_NUMBER), pc.invert(marker))
        fast = np.asarray(take.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)
        try:
            numbers = pc.cast(pc.if_else(take, body, None), pa.float64())
        except pa.ArrowInvalid:  # a text Arrow reads differently: parse them all one by one
            fast[:] = False
        else:
            cleaned = numbers.fill_null(math.nan).to_pylist()
    ok = fast.copy()
    for i in np.flatnonzero(~fast):
        cleaned[i] = value = clean_value(uniques[i], rules)
        ok[i] = isinstance(value, float)
    return cleaned, ok


def _to_float(
    factors: tuple[np.ndarray, list[Any]], cleaned: list[Any], name: str, entries: list[LedgerEntry]
) -> tuple[np.ndarray, list[str]]:
    """The distinct values as parsed (``cleaned``, by :func:`clean_value`) spread back to the
    rows, and the markers learned from the values that are still not numbers.

    Those values become missing here; their texts become missing markers of the column's
    rules (see :func:`_learned_markers`), so serving reads them as missing too instead of
    refusing a row like the ones the model was trained on.
    """
    codes, uniques = factors
    bad = np.array([not isinstance(v, float) for v in cleaned], dtype=bool)
    floats = np.array([*(np.nan if b else v for v, b in zip(cleaned, bad, strict=True)), np.nan])
    learned: list[str] = []
    if bad.any():
        counts = np.bincount(codes[codes >= 0], minlength=len(uniques))
        learned, seen = _learned_markers(uniques, bad, counts)
        examples = sorted({repr(v) for v, b in zip(uniques, bad, strict=True) if b})[:_EXAMPLES]
        entries.append(
            LedgerEntry(
                column=name,
                step="formats",
                action="unparseable_to_missing",
                rows=int(counts[bad].sum()),
                detail=_unparseable_detail(examples, len(learned), seen),
                examples=examples,
            )
        )
    return np.asarray(floats[codes], dtype=np.float64), learned


def _learned_markers(
    uniques: list[Any], bad: np.ndarray, counts: np.ndarray
) -> tuple[list[str], int]:
    """The non-number texts set to missing, as missing markers (sorted), and how many
    distinct ones there were.

    Keyed as :func:`~tabpipe.data.rules.parse_number` compares them (stripped and
    case-folded), so spellings that fold together are one marker. Only the
    :data:`LEARNED_MARKERS` most frequent are kept: a column with much stray text would
    otherwise carry an unbounded list into every bundle (the rest stay refused at serving).
    A value that is no text (a boolean) is not kept: serving refuses it by its type.
    """
    weight: dict[str, int] = {}
    for value, is_bad, count in zip(uniques, bad, counts, strict=True):
        if is_bad and isinstance(value, str):
            key = value.strip().casefold()
            weight[key] = weight.get(key, 0) + int(count)
    ranked = sorted(weight, key=lambda k: (-weight[k], k))  # ties: the same order every run
    return sorted(ranked[:LEARNED_MARKERS]), len(weight)


def _unparseable_detail(examples: list[str], kept: int, seen: int) -> str:
    """The ledger's words for values set to missing, and what serving does with them."""
    detail = f"values that are not numbers set to missing: {', '.join(examples)}"
    if kept == seen:
        return detail + "; these texts are also treated as missing at predict time"
    return detail + (
        f"; the {kept:,} most frequent of {seen:,} distinct texts are also treated as missing"
        f" at predict time (the other {seen - kept:,} are refused there)"
    )


def _take(factors: tuple[np.ndarray, list[Any]], rules: ColumnRules, like: pd.Series) -> pd.Series:
    """The cleaned column as a pandas Categorical: each distinct raw value cleaned once
    (by the same :func:`clean_value` serving uses), then mapped by its code."""
    codes, uniques = factors
    cleaned = [*(clean_value(v, rules) for v in uniques), clean_value(None, rules)]
    categories = sorted({v for v in cleaned if v is not None})
    position = {v: i for i, v in enumerate(categories)}
    # codes in the smallest integer type the Categorical keeps (no conversion pass)
    small = np.int8 if len(categories) < 127 else np.int16 if len(categories) < 32_767 else np.int32
    remap = np.array([-1 if v is None else position[v] for v in cleaned], dtype=small)
    values = pd.Categorical.from_codes(remap[codes], categories=pd.Index(categories))
    return pd.Series(values, index=like.index, name=like.name)


def _whole(values: np.ndarray) -> bool:
    return bool(np.all(np.floor(values) == values))


def _sentinels(raw: np.ndarray, candidates: list[float]) -> list[float]:
    """Candidates present in the column and far outside all its other values.

    Judged against the values that are no candidate at all, so that cleaning the
    column again finds nothing new (-999 and -9999 together are both sentinels).
    """
    if raw.size == 0 or np.isnan(raw).all():
        return []
    low, high = float(np.nanmin(raw)), float(np.nanmax(raw))
    present = [s for s in candidates if low <= s <= high and (raw == s).any()]
    if not present:
        return []
    others = raw[~np.isin(raw, present) & ~np.isnan(raw)]
    if others.size == 0:
        return []
    low, high = float(others.min()), float(others.max())
    span = max(high - low, 1.0)
    return [s for s in present if s < low - span or s > high + span or s < 0 <= low]


def _describe_chars(chars: str) -> str:
    names = {",": "thousands separators", "%": "percent signs"}
    parts = [names.get(c, f"currency {c}") for c in chars]
    return ", ".join(parts)


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _objects(column: pd.Series) -> np.ndarray:
    return column.astype(object).to_numpy()


def _series(values: np.ndarray, like: pd.Series) -> pd.Series:
    return pd.Series(values, index=like.index, name=like.name, dtype=object)
