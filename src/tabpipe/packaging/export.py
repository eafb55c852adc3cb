"""Exports of a bundle: ONNX, an MLflow pyfunc model, a Docker build context, PMML, a model card.

Each export is written to a temporary folder beside the target and renamed
into place only when complete. The formats:

- ``onnx``: ``model.onnx`` plus ``signature.json`` (inputs, outputs, categories).
- ``mlflow``: an MLflow model folder (``MLmodel`` with the ``python_function``
  flavour, signature, input example) that runs the ONNX graph with onnxruntime:
  no pickle, no tabpipe needed where it is loaded.
- ``docker``: a build context (``Dockerfile``, ``requirements.lock``, the bundle,
  tabpipe's code) for an image that serves the bundle with onnxruntime.
- ``pmml``: ``model.pmml`` through sklearn2pmml (Java) from the pipeline restated in
  PMML-expressible steps (:mod:`tabpipe.packaging.pmml_steps`), checked against the
  native pipeline with jpmml-evaluator (``pmml_parity.json``); fails naming the step or
  family PMML cannot express.
- ``card``: the model card, ``model_card.md`` and ``model_card.html``.
"""

from __future__ import annotations

import json
import shutil
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from tabpipe.errors import PackagingError
from tabpipe.packaging.bundle import Manifest, read_manifest

ExportFormat = Literal["onnx", "mlflow", "docker", "pmml", "card"]
FORMATS: tuple[str, ...] = ("onnx", "mlflow", "docker", "pmml", "card")


def export(
    bundle: Path,
    target: Path,
    fmt: str,
    *,
    card_context: dict[str, Any] | None = None,
    check_rows: dict[str, list[Any]] | None = None,
) -> Path:
    """Write the ``fmt`` export of ``bundle`` (checksums verified) into the folder ``target``.

    ``check_rows`` (column values, e.g. the run's test split) are scored by the PMML
    export's verification, besides rows built from the signature.
    """
    if fmt not in FORMATS:
        raise PackagingError(f"unknown export format {fmt!r}; valid: {', '.join(FORMATS)}")
    manifest = read_manifest(bundle)
    if target.exists() and any(target.iterdir()):
        raise PackagingError(f"{target} exists and is not empty; choose a new folder")
    writers: dict[str, Callable[[Path, Manifest, Path], None]] = {
        "onnx": _onnx,
        "mlflow": write_mlflow,
        "docker": write_docker,
    }
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.mkdir(parents=True)
    try:
        if fmt == "card":
            from tabpipe.packaging.card import write_card

            write_card(bundle, manifest, tmp, card_context or {})
        elif fmt == "pmml":
            write_pmml(bundle, manifest, tmp, check_rows)
        else:
            writers[fmt](bundle, manifest, tmp)
        if target.exists():
            target.rmdir()
        tmp.replace(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def signature_document(manifest: Manifest, bundle: Path | None = None) -> dict[str, Any]:
    """The input and output description that travels with ONNX and MLflow exports.

    ``onnx_inputs`` are the graph's input names in column order (ONNX renames
    some, e.g. a name starting with a digit).
    """
    onnx_inputs = manifest.signature.names
    if bundle is not None:
        import onnxruntime as ort

        session = ort.InferenceSession(
            str(bundle / "model.onnx"), providers=["CPUExecutionProvider"]
        )
        onnx_inputs = [i.name for i in session.get_inputs()]
    return {
        "onnx_inputs": onnx_inputs,
        "name": manifest.name,
        "task": manifest.task,
        "target": manifest.target,
        "classes": manifest.classes,
        "columns": [c.model_dump(mode="json") for c in manifest.signature.columns],
        "unseen_categories": manifest.signature.unseen_categories,
        "outputs": [o.model_dump(mode="json") for o in manifest.output_schema],
        "onnx_output": "variable" if manifest.task == "regression" else "probabilities",
    }


def _onnx(bundle: Path, manifest: Manifest, out: Path) -> None:
    shutil.copyfile(bundle / "model.onnx", out / "model.onnx")
    (out / "signature.json").write_text(
        json.dumps(signature_document(manifest, bundle), indent=2), encoding="utf-8"
    )


# MLflow ---------------------------------------------------------------------------------------
_MLFLOW_TYPES = {"FP64": "double", "INT64": "long", "BOOL": "boolean", "BYTES": "string"}


def example_row(manifest: Manifest) -> dict[str, Any]:
    """A typical row: training medians and first known categories."""
    return {
        c.name: (c.median if c.median is not None else 0.0)
        if c.kind == "numeric"
        else (c.categories or [""])[0]
        for c in manifest.signature.columns
    }


def write_mlflow(bundle: Path, manifest: Manifest, out: Path) -> None:
    """An MLflow pyfunc model folder that ``mlflow.pyfunc.load_model`` loads."""
    import importlib.metadata as im

    import yaml

    from tabpipe.packaging import mlflow_pyfunc

    (out / "code").mkdir()
    (out / "data").mkdir()
    shutil.copyfile(Path(mlflow_pyfunc.__file__), out / "code" / "tabpipe_onnx_pyfunc.py")
    shutil.copyfile(bundle / "model.onnx", out / "data" / "model.onnx")
    (out / "data" / "tabpipe.json").write_text(
        json.dumps(signature_document(manifest, bundle), indent=2), encoding="utf-8"
    )
    inputs = [
        {
            "type": "double" if c.kind == "numeric" else "string",
            "name": c.name,
            "required": c.required,
        }
        for c in manifest.signature.columns
    ]
    outputs = [
        {"type": _MLFLOW_TYPES[o.datatype], "name": o.name, "required": True}
        for o in manifest.output_schema
    ]
    row = example_row(manifest)
    split = {"columns": list(row), "data": [list(row.values())]}
    (out / "input_example.json").write_text(json.dumps(split), encoding="utf-8")
    (out / "serving_input_example.json").write_text(
        json.dumps({"dataframe_split": split}, indent=2), encoding="utf-8"
    )
    python = f"{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}"
    pins = [f"{p}=={im.version(p)}" for p in ("onnxruntime", "numpy", "pandas")]
    (out / "requirements.txt").write_text("\n".join(["mlflow", *pins]) + "\n", encoding="utf-8")
    (out / "python_env.yaml").write_text(
        yaml.safe_dump(
            {
                "python": python,
                "build_dependencies": ["pip"],
                "dependencies": ["-r requirements.txt"],
            }
        ),
        encoding="utf-8",
    )
    (out / "conda.yaml").write_text(
        yaml.safe_dump(
            {
                "name": "tabpipe_env",
                "channels": ["conda-forge"],
                "dependencies": [f"python={python}", "pip", {"pip": ["mlflow", *pins]}],
            }
        ),
        encoding="utf-8",
    )
    mlmodel = {
        "flavors": {
            "python_function": {
                "loader_module": "tabpipe_onnx_pyfunc",
                "code": "code",
                "data": "data",
                "env": {"conda": "conda.yaml", "virtualenv": "python_env.yaml"},
                "python_version": python,
                "streamable": False,
            }
        },
        "model_uuid": uuid.uuid4().hex,
        "utc_time_created": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"),
        "saved_input_example_info": {
            "artifact_path": "input_example.json",
            "type": "dataframe",
            "pandas_orient": "split",
            "serving_input_path": "serving_input_example.json",
        },
        "signature": {"inputs": json.dumps(inputs), "outputs": json.dumps(outputs), "params": None},
        "metadata": {"tabpipe_model": manifest.name, "tabpipe_family": manifest.family},
    }
    (out / "MLmodel").write_text(yaml.safe_dump(mlmodel, sort_keys=False), encoding="utf-8")


# Docker ---------------------------------------------------------------------------------------
#: What the serving image installs (the closure is locked from this environment).
SERVING_REQUIREMENTS = (
    "fastapi",
    "uvicorn[standard]",
    "pydantic",
    "numpy",
    "onnxruntime",
    "prometheus-client",
    "python-multipart",
    "pyarrow",
    "jinja2",  # the prediction page at /
)


def locked_requirements(roots: tuple[str, ...] = SERVING_REQUIREMENTS) -> list[str]:
    """``name==version`` for ``roots`` and everything they need, as installed here."""
    import importlib.metadata as im

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pinned: dict[str, str] = {}
    todo = [Requirement(r) for r in roots]
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        try:
            dist = im.distribution(req.name)
        except im.PackageNotFoundError:
            continue
        fresh = name not in pinned
        pinned[name] = dist.version
        extras = set(req.extras)
        for raw in dist.requires or []:
            sub = Requirement(raw)
            if sub.marker is not None and not any(
                sub.marker.evaluate({"extra": e}) for e in (extras or {""})
            ):
                continue
            if fresh or sub.extras:
                todo.append(sub)
    return [f"{n}=={v}" for n, v in sorted(pinned.items())]


DOCKERFILE = """\
# Serving image for the tabpipe model {name!r} (bundle format {format_version}).
# Build:  docker build -t tabpipe-{name} .
# Run:    docker run --rm -p 127.0.0.1:8000:8000 -e TABPIPE_API_KEYS=... tabpipe-{name}
#         (-e TABPIPE_WORKERS=2: two server processes; one per core at most)
FROM python:{python}-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /srv
COPY requirements.lock .
RUN pip install --no-deps -r requirements.lock
COPY tabpipe/ /srv/tabpipe/
COPY bundle/ /srv/bundle/
ENV PYTHONPATH=/srv \\
    TABPIPE_WORKERS=1 \\
    TABPIPE_SERVE_SETTINGS='{settings}'
RUN useradd --system --uid 10001 tabpipe
USER tabpipe
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/v2/health/ready').status != 200)"
# Inside the container the server must listen on all interfaces; publish the port on
# 127.0.0.1 (as above) unless it is meant to be reachable from other machines.
CMD ["python", "-m", "tabpipe.serving.server", "--host", "0.0.0.0", "--port", "8000"]
"""


def write_docker(bundle: Path, manifest: Manifest, out: Path) -> None:
    """A Docker build context: Dockerfile, locked requirements, the bundle and tabpipe's code."""
    import tabpipe

    shutil.copytree(bundle, out / "bundle")
    shutil.copytree(
        Path(tabpipe.__file__).parent,
        out / "tabpipe",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    (out / "requirements.lock").write_text(
        "# Locked from the environment that exported this model "
        f"(Python {sys.version_info.major}.{sys.version_info.minor}, {sys.platform}).\n"
        + "\n".join(locked_requirements())
        + "\n",
        encoding="utf-8",
    )
    settings = json.dumps({"model": manifest.name, "bundle": "/srv/bundle", "poll_seconds": 0})
    (out / "Dockerfile").write_text(
        DOCKERFILE.format(
            name=manifest.name,
            format_version=manifest.format_version,
            python=f"{sys.version_info.major}.{sys.version_info.minor}",
            settings=settings,
        ),
        encoding="utf-8",
    )
    (out / ".dockerignore").write_text("**/__pycache__\n**/*.pyc\n", encoding="utf-8")


# PMML -----------------------------------------------------------------------------------------
def write_pmml(
    bundle: Path, manifest: Manifest, out: Path, rows: dict[str, list[Any]] | None = None
) -> None:
    """``model.pmml`` (sklearn2pmml, Java) plus ``pmml_parity.json``: the file scored by a
    PMML evaluator on ``rows`` (the run's test split when known) and edge rows, compared
    with the native pipeline; refused with the step or family PMML cannot express."""
    from tabpipe.packaging import persist, pmml

    pipeline = persist.load(bundle / "pipeline.skops")
    pmml.convert(pipeline, manifest, out / "model.pmml")
    edges = pmml.edge_rows(manifest)
    checked = {c: [*(rows or {}).get(c, []), *edges[c]] for c in edges}
    result = pmml.verify(out / "model.pmml", pipeline, manifest, checked)
    (out / "pmml_parity.json").write_text(result.model_dump_json(indent=2), encoding="utf-8")


def export_registered(
    workspace: Any, name: str, fmt: str, target: Path, *, alias: str = "champion"
) -> Path:
    """Export the version ``alias`` points to; the card also gets the run's cleaning ledger
    and PMML's verification the run's test split."""
    from tabpipe.registry import Registry

    version = Registry(workspace).resolve(name, alias)
    context: dict[str, Any] = {"version": version.version}
    rows = None
    if fmt == "card":
        context["cleaning"] = _cleaning_report(workspace, version.run_id)
    if fmt == "pmml":
        rows = _test_rows(workspace, version.run_id)
    return export(version.path, target, fmt, card_context=context, check_rows=rows)


def _test_rows(workspace: Any, run_id: str) -> dict[str, list[Any]] | None:
    """The run's test split as column lists (None when the run kept none)."""
    from tabpipe.artifacts import TABLE
    from tabpipe.errors import TabpipeError

    try:
        outputs = workspace.run(run_id).get("outputs") or {}
        if "test" not in outputs:
            return None
        frame = workspace.artifacts.get(TABLE, outputs["test"])
    except (TabpipeError, OSError, KeyError):
        return None
    return {str(c): frame[c].astype(object).where(frame[c].notna(), None).tolist() for c in frame}


def _cleaning_report(workspace: Any, run_id: str) -> Any:
    from tabpipe.artifacts import json_codec
    from tabpipe.data.cleaning import CleaningReport
    from tabpipe.errors import TabpipeError

    try:
        outputs = workspace.run(run_id).get("outputs") or {}
        if "cleaning" not in outputs:
            return None
        return workspace.artifacts.get(json_codec(CleaningReport), outputs["cleaning"])
    except (TabpipeError, OSError, KeyError):
        return None
