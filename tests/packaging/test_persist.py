"""skops persistence: audited types only, and no pickle-family load anywhere in src/."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import skops.io as sio
from sklearn.base import BaseEstimator

from tabpipe.errors import BundleError
from tabpipe.packaging import persist

SRC = Path(__file__).parents[2] / "src"


class Smuggled(BaseEstimator):  # type: ignore[misc]
    """A type from outside the trusted modules (this test module)."""

    def __init__(self, payload: str = "x") -> None:
        self.payload = payload


def test_trusted_pipeline_round_trips() -> None:
    fixture = Path(__file__).parent / "fixtures" / "bundle_v1" / "pipeline.skops"
    pipeline = persist.load(fixture)
    assert type(pipeline).__name__ == "Pipeline"
    again = persist.loads(persist.dumps(pipeline))
    assert [s for s, _ in again.steps] == [s for s, _ in pipeline.steps]


def test_untrusted_type_is_refused() -> None:
    data = sio.dumps({"model": Smuggled()})
    with pytest.raises(BundleError, match=r"refusing to load types .*Smuggled"):
        persist.loads(data, origin="smuggled.skops")


def test_callables_from_builtins_and_operator_are_refused() -> None:
    import operator

    data = sio.dumps({"f": operator.attrgetter("x")})
    assert sio.get_untrusted_types(data=data)  # skops itself would not trust it either
    with pytest.raises(BundleError, match="refusing to load types"):
        persist.loads(data)


PICKLE_LOAD = re.compile(
    r"\b(pickle|cPickle|joblib|cloudpickle|dill)\s*\.\s*(load|loads|Unpickler)\b"
    r"|from\s+(pickle|joblib|cloudpickle|dill)\s+import\s+.*\b(load|loads|Unpickler)\b"
    r"|\bpd\.read_pickle\b|\.read_pickle\("
)


def test_no_pickle_family_load_in_the_source() -> None:
    offenders = [
        f"{path.relative_to(SRC)}:{i}: {line.strip()}"
        for path in sorted(SRC.rglob("*.py"))
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if PICKLE_LOAD.search(line)
    ]
    assert offenders == []


def test_the_grep_catches_a_pickle_load() -> None:
    assert PICKLE_LOAD.search("model = joblib.load(path)")
    assert PICKLE_LOAD.search("from pickle import loads")
    assert not PICKLE_LOAD.search("persist.loads(data)")
