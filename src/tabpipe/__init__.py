"""tabpipe: end-to-end machine learning for tabular data.

Public names are imported lazily, so that the serving path (which needs only
numpy, onnxruntime and FastAPI) does not import the training libraries.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "PipelineSpec": "tabpipe.config",
    "build_spec": "tabpipe.config",
    "load_spec": "tabpipe.config",
    "TabpipeError": "tabpipe.errors",
    "Registry": "tabpipe.registry",
    "Workspace": "tabpipe.workspace",
    "RunSummary": "tabpipe.api",
    "predict_file": "tabpipe.api",
    "report_path": "tabpipe.api",
    "run": "tabpipe.api",
    "score": "tabpipe.api",
}

__all__ = [
    "PipelineSpec",
    "Registry",
    "RunSummary",
    "TabpipeError",
    "Workspace",
    "__version__",
    "build_spec",
    "load_spec",
    "predict_file",
    "report_path",
    "run",
    "score",
]

if TYPE_CHECKING:
    from tabpipe.api import RunSummary, predict_file, report_path, run, score
    from tabpipe.config import PipelineSpec, build_spec, load_spec
    from tabpipe.errors import TabpipeError
    from tabpipe.registry import Registry
    from tabpipe.workspace import Workspace


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tabpipe' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
