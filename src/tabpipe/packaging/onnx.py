"""Conversion of the whole fitted pipeline (preprocessing and model) to one ONNX graph."""

from __future__ import annotations

from typing import Any

import numpy as np
from lightgbm import LGBMClassifier, LGBMRegressor
from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm
from skl2onnx import convert_sklearn, update_registered_converter
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from skl2onnx.common.shape_calculator import (
    calculate_linear_classifier_output_shapes,
    calculate_linear_regressor_output_shapes,
)

from tabpipe.errors import PackagingError
from tabpipe.packaging.signature import Signature

TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}


def _register_converters() -> None:
    update_registered_converter(
        LGBMClassifier,
        "LightGbmLGBMClassifier",
        calculate_linear_classifier_output_shapes,
        convert_lightgbm,
        options={"nocl": [True, False], "zipmap": [True, False, "columns"]},
    )
    update_registered_converter(
        LGBMRegressor,
        "LightGbmLGBMRegressor",
        calculate_linear_regressor_output_shapes,
        convert_lightgbm,
        options={"split": None},
    )


def to_onnx(pipeline: Any, signature: Signature, *, classifier: bool) -> bytes:
    """Convert a fitted ``Pipeline(features, model)``; one ONNX input per column."""
    _register_converters()
    inputs = [
        (c.name, FloatTensorType([None, 1]) if c.kind == "numeric" else StringTensorType([None, 1]))
        for c in signature.columns
    ]
    options = {id(pipeline.steps[-1][1]): {"zipmap": False}} if classifier else None
    try:
        model = convert_sklearn(
            pipeline, initial_types=inputs, options=options, target_opset=TARGET_OPSET
        )
    except Exception as exc:  # converters raise many unrelated types
        raise PackagingError(
            f"cannot convert the pipeline to ONNX: {type(exc).__name__}: {exc}"
        ) from exc
    data: bytes = model.SerializeToString()
    return data


def parity(native: np.ndarray, onnx: np.ndarray) -> float:
    """Largest difference relative to magnitude (absolute for probabilities)."""
    native = np.asarray(native, dtype=np.float64)
    onnx = np.asarray(onnx, dtype=np.float64).reshape(native.shape)
    return (
        float(np.max(np.abs(native - onnx) / np.maximum(1.0, np.abs(native))))
        if native.size
        else 0.0
    )
