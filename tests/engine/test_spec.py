"""The engine section of the spec: defaults, clear errors, and Ray as an optional extra."""

from __future__ import annotations

import subprocess
import sys

import pytest

from support import DATA
from tabpipe.config import build_engine, build_spec
from tabpipe.errors import ConfigError


def _spec(**engine: object):
    return build_spec({"source": str(DATA / "titanic.csv"), "target": "Survived", "engine": engine})


def test_the_local_engine_is_the_default() -> None:
    spec = build_spec({"source": str(DATA / "titanic.csv"), "target": "Survived"})
    assert spec.engine.kind == "local" and spec.engine.parallel_trials == 1


def test_unknown_keys_and_kinds_are_named() -> None:
    with pytest.raises(ConfigError, match=r"unknown key 'engine.workers'.*kind, address"):
        _spec(kind="ray", workers=3)
    with pytest.raises(ConfigError, match=r"engine.kind: Input should be 'local' or 'ray'"):
        _spec(kind="spark")
    with pytest.raises(ConfigError, match="address applies to kind 'ray' only"):
        _spec(address="127.0.0.1:6379")
    with pytest.raises(ConfigError, match="parallel_trials"):
        build_engine({"kind": "local", "parallel_trials": 0})


def test_without_ray_installed_the_error_says_what_to_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as when not installed
    with pytest.raises(ConfigError, match=r"pip install 'tabpipe\[ray\]'"):
        _spec(kind="ray", address="127.0.0.1:6379")
    assert _spec(kind="local").engine.kind == "local"


def test_the_local_engine_never_imports_ray() -> None:
    code = (
        "import sys; from tabpipe.engine import open_engine, EngineSpec;"
        "from tabpipe.modeling import train;"
        "e = open_engine(EngineSpec()).__enter__();"
        "print(e.map(lambda s, i: s + i, e.share(10), [1, 2]), 'ray' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["[11,", "12]", "False"]
