"""The floor for the serving benchmark: a bare FastAPI + onnxruntime endpoint.

It answers ``POST /invocations`` (a ``dataframe_split`` body) with the same
``model.onnx`` as tabpipe's server, and nothing else: no validation, no
metrics, no request ids, no logs. Run by ``benchmarks/serving.py`` as
``uvicorn --factory bare_onnx_app:create`` with ``BARE_BUNDLE`` set to the
bundle folder.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from fastapi import FastAPI, Request
from fastapi.responses import Response


def create() -> FastAPI:
    folder = Path(os.environ["BARE_BUNDLE"])
    columns = json.loads((folder / "manifest.json").read_text())["signature"]["columns"]
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(
        str(folder / "model.onnx"), sess_options=options, providers=["CPUExecutionProvider"]
    )
    inputs = [
        (i.name, c["name"], c["kind"]) for i, c in zip(session.get_inputs(), columns, strict=True)
    ]
    output = session.get_outputs()[-1].name
    app = FastAPI(docs_url=None, redoc_url=None)

    @app.get("/ping")
    async def ping() -> Response:
        return Response(b"{}", media_type="application/json")

    @app.post("/invocations")
    async def invocations(request: Request) -> Response:
        split = json.loads(await request.body())["dataframe_split"]
        at = {name: i for i, name in enumerate(split["columns"])}
        feeds: dict[str, Any] = {}
        for onnx_name, name, kind in inputs:
            values = [row[at[name]] for row in split["data"]]
            if kind == "numeric":
                feeds[onnx_name] = np.array(
                    [np.nan if v is None else v for v in values], dtype=np.float32
                ).reshape(-1, 1)
            else:
                feeds[onnx_name] = np.array(
                    ["" if v is None else str(v) for v in values], dtype=object
                ).reshape(-1, 1)
        (proba,) = session.run([output], feeds)
        return Response(
            json.dumps({"predictions": np.asarray(proba).tolist()}), media_type="application/json"
        )

    return app
