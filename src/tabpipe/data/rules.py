"""Fitted cleaning rules of one column, as data, and the one function that applies them.

Training cleans a column with :func:`apply_rules`; the serving signature calls
the same function on each request column, so a value is cleaned identically at
both times (``'YES '`` in a request becomes ``'yes'`` when training folded the
variants of ``yes`` to that spelling). The rules are idempotent: applying them
to their own output changes nothing.

This module is on the serving path: it needs numpy and pydantic only (pandas is
imported lazily to factorise large training columns; the per-value rule is the
same either way).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import Any, Literal, Self

import numpy as np
from pydantic import BaseModel, ConfigDict

from tabpipe.data.columnar import groupable

#: Strings that mean "missing" in raw files (compared stripped and case-folded).
DEFAULT_MISSING_MARKERS: tuple[str, ...] = (
    "",
    "?",
    "na",
    "n/a",
    "nan",
    "null",
    "none",
    "-",
    "--",
    "#n/a",
)
#: Numbers that mean "missing" when they sit far outside the rest of a column.
DEFAULT_SENTINELS: tuple[float, ...] = (-999.0, -9999.0, -99999.0, 999999.0)
CURRENCY_SYMBOLS = "$€£¥₹"
BOOLEAN_WORDS: dict[str, str] = {
    "yes": "true",
    "y": "true",
    "true": "true",
    "t": "true",
    "no": "false",
    "n": "false",
    "false": "false",
    "f": "false",
}
_FACTORISE_ABOVE = 2048


class ColumnRules(BaseModel):
    """What cleaning learned about one column, enough to replay it on new values."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["numeric", "categorical"]
    #: texts that mean missing, stripped and case-folded: the defaults, the declared ones,
    #: and for a numeric column the non-number texts training saw and set to missing
    missing_markers: list[str] = list(DEFAULT_MISSING_MARKERS)
    strip: bool = True
    #: categorical: case-folded spelling -> canonical spelling seen in training
    case_map: dict[str, str] = {}
    #: categorical: case-folded boolean word -> 'true' / 'false'
    boolean_map: dict[str, str] = {}
    #: numeric: characters removed before parsing (thousands separator, currency, percent)
    remove_chars: str = ""
    #: numeric: a unit suffix removed before parsing (e.g. 'kg')
    unit: str | None = None
    #: numeric: values that mean missing (e.g. -999)
    sentinels: list[float] = []
    lower: float | None = None
    upper: float | None = None
    #: imputed value for a missing one (None: left to the model's own imputer)
    fill_number: float | None = None
    fill_category: str | None = None

    @cached_property
    def marker_set(self) -> frozenset[str]:
        """:attr:`missing_markers` as a set: a numeric column may carry up to a thousand
        learned markers, and every text value at serving is looked up in them."""
        return frozenset(self.missing_markers)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy, without the cached :attr:`marker_set` (pydantic copies it along, which
        would go stale when ``update`` changes the markers)."""
        copied = super().model_copy(update=update, deep=deep)
        copied.__dict__.pop("marker_set", None)
        return copied


def apply_rules(values: Sequence[Any] | np.ndarray, rules: ColumnRules) -> np.ndarray:
    """Clean one column: float64 for numeric rules, objects (str or None) for categorical.

    A numeric value that still cannot be parsed is returned unchanged (as an
    object array), so the caller can report it by row.
    """
    if rules.kind == "numeric" and isinstance(values, np.ndarray) and values.dtype.kind in "fiu":
        return _numeric_array(values.astype(np.float64), rules)
    array = values if isinstance(values, np.ndarray) else _object_array(values)
    if len(array) > _FACTORISE_ABOVE and groupable(array):  # not 1 and True together
        import pandas as pd

        codes, uniques = pd.factorize(array, use_na_sentinel=True)
        return apply_to_codes(np.asarray(codes), list(uniques), rules)
    cache: dict[Any, Any] = {}
    out = np.empty(len(array), dtype=object)
    for i, value in enumerate(array):
        key = (type(value), value) if _hashable(value) else None
        if key is not None and key in cache:
            out[i] = cache[key]
            continue
        out[i] = cleaned_value = clean_value(value, rules)
        if key is not None:
            cache[key] = cleaned_value
    if rules.kind == "numeric" and all(isinstance(v, float) for v in out):
        return out.astype(np.float64)
    return out


def apply_to_codes(codes: np.ndarray, uniques: Sequence[Any], rules: ColumnRules) -> np.ndarray:
    """:func:`apply_rules` for a factorised column: each distinct value is cleaned once.

    ``codes`` index ``uniques``; -1 marks a missing value.
    """
    cleaned = _object_array([*(clean_value(v, rules) for v in uniques), clean_value(None, rules)])
    if rules.kind == "numeric" and all(isinstance(v, float) for v in cleaned):
        floats: np.ndarray = cleaned.astype(np.float64)[codes]
        return floats
    out: np.ndarray = cleaned[codes]  # code -1 picks the last entry: the cleaned missing value
    return out


def clean_value(value: Any, rules: ColumnRules) -> Any:
    """The rule for a single value (numeric: float, or the raw value when unparseable)."""
    if rules.kind == "numeric":
        return _number(value, rules)
    return _category(value, rules)


def _number(value: Any, rules: ColumnRules) -> Any:
    number: float
    if value is None:
        number = math.nan
    elif isinstance(value, bool | np.bool_):
        return value  # a boolean is not a number: left for the caller to refuse
    elif isinstance(value, int | float | np.integer | np.floating):
        number = float(value)
    elif isinstance(value, str):
        parsed = parse_number(value, rules)
        if parsed is None:
            return value
        number = parsed
    else:
        return value
    return finish_number(number, rules)


def parse_number(text: str, rules: ColumnRules) -> float | None:
    """Parse a number written as text; None when it cannot be."""
    stripped = text.strip()
    if stripped.casefold() in rules.marker_set:
        return math.nan
    if rules.unit and stripped.endswith(rules.unit):
        stripped = stripped[: -len(rules.unit)].rstrip()
    for ch in rules.remove_chars:
        stripped = stripped.replace(ch, "")
    try:
        return float(stripped.strip())
    except ValueError:
        return None


def finish_number(number: float, rules: ColumnRules) -> float:
    """The rule for a value that is already a float: sentinels, imputation, clipping."""
    if rules.sentinels and number in rules.sentinels:
        number = math.nan
    if math.isnan(number):
        return rules.fill_number if rules.fill_number is not None else math.nan
    if rules.lower is not None and number < rules.lower:
        return rules.lower
    if rules.upper is not None and number > rules.upper:
        return rules.upper
    return number


def _numeric_array(values: np.ndarray, rules: ColumnRules) -> np.ndarray:
    out = values.copy()
    if rules.sentinels:
        out[np.isin(out, rules.sentinels)] = np.nan
    if rules.lower is not None or rules.upper is not None:
        out = np.clip(out, rules.lower, rules.upper)  # NaN stays NaN
    if rules.fill_number is not None:
        out[np.isnan(out)] = rules.fill_number
    return out


def _category(value: Any, rules: ColumnRules) -> Any:
    if value is not None and not isinstance(value, str | int | float | bool | np.generic):
        return value  # a list or a mapping is no category: left for the caller to refuse
    text = category_string(value)
    if text is None:
        return rules.fill_category
    if rules.strip:
        text = text.strip()
    folded = text.casefold()
    if folded in rules.marker_set:
        return rules.fill_category
    if rules.boolean_map:
        return rules.boolean_map.get(folded, text)
    return rules.case_map.get(folded, text)


def category_string(value: Any) -> str | None:
    """A raw value as category text (None for missing); whole floats lose their '.0'."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return None
        if float(value).is_integer():
            return str(int(value))
    return str(value)


_NUMBER_WITH_UNIT = re.compile(r"^\s*[-+]?[\d.,]+\s*([A-Za-zµ°/²³]+\.?)\s*$")


def unit_of(text: str) -> str | None:
    """The unit suffix of a text like '12.5 kg', else None."""
    match = _NUMBER_WITH_UNIT.match(text)
    return match.group(1) if match else None


def _object_array(values: Sequence[Any]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        out[i] = value
    return out


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return not (isinstance(value, float) and math.isnan(value))
