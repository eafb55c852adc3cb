"""Request parsing and response formatting for the served protocols.

- Open Inference Protocol v2 (KServe/Triton ``/v2/models/{name}/infer``), one input per column.
- MLflow scoring (``/invocations``): ``dataframe_split``, ``dataframe_records``,
  ``instances``, ``inputs`` as JSON, or a CSV body.
- Plain JSON records (``/v1/models/{name}/predict``): a list of objects, or
  ``{"records": [...], "contributions": true}``.
- Batch upload (``/v1/models/{name}/batch``): a CSV or Parquet body, answered
  in the same format with the scored rows.

Parsers return columns as ``{name: list of values}``; they raise
:class:`RequestError` naming the field at fault.
"""

from __future__ import annotations

import csv
import io
import math
from typing import Any

from tabpipe.errors import RequestError
from tabpipe.packaging.bundle import Manifest
from tabpipe.serving.runtime import Prediction

Columns = dict[str, list[Any]]
MLFLOW_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")


def parse_oip(body: Any) -> Columns:
    """``{"inputs": [{"name", "shape", "datatype", "data"}, ...]}`` to columns."""
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
        raise RequestError("an inference request needs an 'inputs' list", field="inputs")
    columns: Columns = {}
    for i, tensor in enumerate(body["inputs"]):
        if not isinstance(tensor, dict) or "name" not in tensor or "data" not in tensor:
            raise RequestError(f"inputs[{i}] needs 'name' and 'data'", field=f"inputs[{i}]")
        data = tensor["data"]
        if not isinstance(data, list):
            data = [data]
        columns[str(tensor["name"])] = _flatten(data, str(tensor["name"]))
    return columns


def _flatten(data: list[Any], name: str) -> list[Any]:
    if data and all(isinstance(v, list) for v in data):
        flat = [v for row in data for v in row]
        if any(isinstance(v, list | dict) for v in flat):
            raise RequestError(f"input {name!r}: expected one value per row", field=name)
        return flat
    if any(isinstance(v, list | dict) for v in data):
        raise RequestError(f"input {name!r}: expected one value per row", field=name)
    return data


def parse_mlflow(body: Any) -> Columns:
    """MLflow's JSON scoring formats to columns."""
    if not isinstance(body, dict):
        raise RequestError(f"expected a JSON object with one of the keys {', '.join(MLFLOW_KEYS)}")
    keys = [k for k in MLFLOW_KEYS if k in body]
    if len(keys) != 1:
        raise RequestError(
            f"the request must hold exactly one of {', '.join(MLFLOW_KEYS)}; got "
            f"{', '.join(map(str, body)) or 'none'}",
            field=keys[0] if keys else None,
        )
    key = keys[0]
    payload = body[key]
    if key == "dataframe_split":
        return _split_to_columns(payload)
    if isinstance(payload, dict):
        return {str(k): v if isinstance(v, list) else [v] for k, v in payload.items()}
    if isinstance(payload, list):
        return _records_to_columns(payload, key)
    raise RequestError(f"{key!r} must be a list of records or a mapping of columns", field=key)


def _split_to_columns(payload: Any) -> Columns:
    if not isinstance(payload, dict) or "columns" not in payload or "data" not in payload:
        raise RequestError("'dataframe_split' needs 'columns' and 'data'", field="dataframe_split")
    names = [str(c) for c in payload["columns"]]
    rows = payload["data"]
    if not isinstance(rows, list):
        raise RequestError("'dataframe_split.data' must be a list of rows", field="dataframe_split")
    columns: Columns = {n: [] for n in names}
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != len(names):
            raise RequestError(
                f"dataframe_split row {i} has {len(row) if isinstance(row, list) else 'no'} values "
                f"for {len(names)} columns",
                field="dataframe_split",
            )
        for name, value in zip(names, row, strict=True):
            columns[name].append(value)
    return columns


def _records_to_columns(records: list[Any], key: str) -> Columns:
    if not records:
        raise RequestError(f"{key!r} holds no rows", field=key)
    if not all(isinstance(r, dict) for r in records):
        raise RequestError(f"{key!r} must be a list of objects (one per row)", field=key)
    names = list(dict.fromkeys(k for r in records for k in r))
    return {n: [r.get(n) for r in records] for n in names}


def parse_records(body: Any) -> tuple[Columns, bool]:
    """Plain JSON records: ``[{...}, ...]`` or ``{"records": [...], "contributions": bool}``."""
    contributions = False
    if isinstance(body, dict):
        if "records" not in body:
            raise RequestError(
                "expected a list of records or an object with a 'records' list", field="records"
            )
        extra = sorted(set(body) - {"records", "contributions"})
        if extra:
            raise RequestError(
                f"unknown field(s) {', '.join(map(repr, extra))}; valid: records, contributions",
                field=extra[0],
            )
        flag = body.get("contributions", False)
        if not isinstance(flag, bool):
            raise RequestError("'contributions' must be true or false", field="contributions")
        contributions = flag
        body = body["records"]
    if not isinstance(body, list):
        raise RequestError("'records' must be a list of objects, one per row", field="records")
    return _records_to_columns(body, "records"), contributions


def parse_csv(data: bytes) -> Columns:
    """A CSV body with a header line to columns (empty fields are missing)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RequestError(f"the CSV body is not UTF-8 text: {exc}") from exc
    reader = csv.reader(io.StringIO(text))
    rows = list(reader)
    if len(rows) < 2:
        raise RequestError("the CSV body needs a header line and at least one row")
    names = rows[0]
    columns: Columns = {n: [] for n in names}
    for i, row in enumerate(rows[1:], start=1):
        if len(row) != len(names):
            raise RequestError(f"CSV line {i + 1} has {len(row)} fields, the header {len(names)}")
        for name, value in zip(names, row, strict=True):
            columns[name].append(None if value == "" else value)
    return columns


def read_table(data: bytes, kind: str) -> Any:
    """A CSV or Parquet body as a pyarrow table (batch scoring; pyarrow, no pandas)."""
    import pyarrow as pa

    try:
        if kind == "parquet":
            import pyarrow.parquet as pq

            return pq.read_table(pa.BufferReader(data))
        import pyarrow.csv as pcsv

        return pcsv.read_csv(pa.BufferReader(data))
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as exc:
        raise RequestError(f"the {kind.upper()} body cannot be read: {exc}") from exc


def table_columns(table: Any, names: list[str]) -> dict[str, Any]:
    """Columns of a pyarrow table as numpy arrays (numbers) or lists (everything else)."""
    import pyarrow.types as pt

    out: dict[str, Any] = {}
    for name in names:
        if name not in table.column_names:
            continue
        column = table.column(name)
        if pt.is_integer(column.type) or pt.is_floating(column.type):
            out[name] = column.to_numpy(zero_copy_only=False)
        else:
            out[name] = column.to_pylist()
    return out


def write_scored(table: Any, prediction: Prediction, manifest: Manifest, kind: str) -> bytes:
    """The input table plus ``prediction`` and ``proba_<class>`` columns, as CSV or Parquet."""
    import pyarrow as pa

    scored = table.append_column("prediction", pa.array(prediction.values))
    if prediction.proba is not None:
        for i, cls in enumerate(manifest.classes or []):
            scored = scored.append_column(f"proba_{cls}", pa.array(prediction.proba[:, i]))
    sink = pa.BufferOutputStream()
    if kind == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(scored, sink)
    else:
        import pyarrow.csv as pcsv

        pcsv.write_csv(scored, sink)
    data: bytes = sink.getvalue().to_pybytes()
    return data


def _datatype(values: list[Any]) -> str:
    if all(isinstance(v, bool) for v in values):
        return "BOOL"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "INT64"
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return "FP64"
    return "BYTES"


def _json_number(value: float) -> float | None:
    return None if math.isnan(value) else value


def format_oip(
    prediction: Prediction,
    manifest: Manifest,
    version: int,
    request_id: str,
    *,
    contributions: list[dict[str, float]] | None = None,
    warnings: list[str] | None = None,
) -> dict[str, Any]:
    n = len(prediction.values)
    outputs: list[dict[str, Any]] = [
        {
            "name": "prediction",
            "shape": [n],
            "datatype": _datatype(prediction.values),
            "data": prediction.values,
        }
    ]
    if prediction.proba is not None:
        for i, cls in enumerate(manifest.classes or []):
            outputs.append(
                {
                    "name": f"proba_{cls}",
                    "shape": [n],
                    "datatype": "FP64",
                    "data": prediction.proba[:, i].tolist(),
                }
            )
    if contributions is not None:
        for feature in contributions[0] if contributions else []:
            outputs.append(
                {
                    "name": f"contrib_{feature}",
                    "shape": [n],
                    "datatype": "FP64",
                    "data": [row[feature] for row in contributions],
                }
            )
    parameters: dict[str, Any] = {"content_type": "pd"}
    if warnings:
        parameters["warnings"] = warnings
    return {
        "model_name": manifest.name,
        "model_version": str(version),
        "id": request_id,
        "parameters": parameters,
        "outputs": outputs,
    }


def format_records(
    prediction: Prediction,
    manifest: Manifest,
    contributions: list[dict[str, float]] | None = None,
) -> list[dict[str, Any]]:
    """One object per row: ``prediction``, ``proba_<class>``, then ``contributions``."""
    if prediction.proba is None:
        rows: list[dict[str, Any]] = [
            {"prediction": _json_number(float(v))} for v in prediction.values
        ]
    else:
        classes = manifest.classes or []
        proba = prediction.proba.tolist()
        rows = [
            {"prediction": value, **{f"proba_{c}": p for c, p in zip(classes, row, strict=True)}}
            for value, row in zip(prediction.values, proba, strict=True)
        ]
    if contributions is not None:
        for row, contrib in zip(rows, contributions, strict=True):
            row["contributions"] = contrib
    return rows
