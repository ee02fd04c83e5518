"""ONNX INT8 for CPU servers: ONNX Runtime dynamic quantisation of the transformer's MatMul/Gemm
weights (int8, per output channel); activations are quantised per batch at run time.

The front end's MatMuls (DFT basis, mel banks) are excluded: their inputs span many orders of
magnitude and feed a log, where int8's 256 levels would cost whole dB in quiet bins. The patch
Conv stays float (ORT's dynamic ConvInteger is slower than float Conv for one 16x16 filter bank).
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from . import onnx as onnx_export
from .graph import ExportGraph, ExportOptions

NAME = "onnx-int8"
FORMAT = "onnx"
FILE = "model.int8.onnx"
PRECISION = "int8"
REQUIRES = ("onnx",)


def unavailable() -> str | None:
    reason = onnx_export.unavailable()
    if reason:
        return reason
    try:
        import onnxruntime.quantization  # noqa: F401
    except ImportError:
        return "INT8 quantisation needs onnxruntime (pip install 'ast-deploy[onnx]')"
    return None


def build(graph: ExportGraph, path: Path, deps: dict[str, Path], options: ExportOptions) -> dict:
    import onnx
    import onnxruntime
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load(str(deps["onnx"]))
    excluded = sorted(onnx_export.front_end_nodes(model))
    # ORT logs a suggestion to run its pre-processing through the root logger; the graph is already
    # shape-inferred and simplified by our ONNX export.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        out = Path(tmp) / FILE
        quantize_dynamic(
            str(deps["onnx"]),
            str(out),
            op_types_to_quantize=["MatMul", "Gemm"],
            per_channel=True,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=excluded,
            extra_options={"MatMulConstBOnly": True},  # only weight GEMMs; attention's QK^T/AV stay float
        )
        root.setLevel(level)
        quantized = onnx.load(str(out))
        onnx_export.check(quantized, path)
        out.replace(path)
    return {
        "opset": onnx_export.OPSET,
        "tools": {**onnx_export.tool_versions(), "onnxruntime": onnxruntime.__version__},
        "quantization": "dynamic, int8 weights per channel, MatMul/Gemm with constant weights, front end excluded",
    }
