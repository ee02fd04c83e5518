"""ONNX INT8 for CPU servers: ONNX Runtime dynamic quantisation of the transformer's MatMul/Gemm
weights (int8, per output channel); activations are quantised per batch at run time (u8).

Weights get 7 bits (``reduce_range``), so that the artifact computes the same on every x86 CPU. ONNX
Runtime picks its u8 x s8 kernel from cpuid: with VNNI/AMX the products are summed in int32, but on
AVX2 (and AVX-512 without VNNI) ``vpmaddubsw`` sums each pair in saturating int16, and 2 x 255 x 127
overflows it. With |w| <= 64 no pair can (2 x 255 x 64 = 32640); ``quantize_dynamic``'s own docstring
gives reduce_range for non-VNNI machines. Unlike the u8u8 kernels (no saturation either) it
costs no speed where VNNI is present (AST-base on 2 AMX cores: u8u8 ran 2x slower than s8, 7-bit s8 as
fast as 8-bit). An artifact is often exported on one CPU and run on another, and ONNX Runtime reads no
ISA cap, so this is guaranteed by construction (checked in ``tests/test_cpu_isa.py``) and was measured
under QEMU's AVX2-only CPU model (``docs/cpus.md``).

The front end's MatMuls (DFT basis, mel banks) are excluded: their inputs span many orders of
magnitude and feed a log, where int8's 256 levels would cost whole dB in quiet bins. The patch
Conv stays float (ORT's dynamic ConvInteger is slower than float Conv for one 16x16 filter bank).
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from ..extras import missing
from . import onnx as onnx_export
from .graph import ExportGraph, ExportOptions

NAME = "onnx-int8"
FORMAT = "onnx"
FILE = "model.int8.onnx"
PRECISION = "int8"
REQUIRES = ("onnx",)


def unavailable() -> str | None:
    return onnx_export.unavailable() or missing("onnxruntime.quantization", "onnx", "onnxruntime")


# Weight encodings ablated in benchmarks/cpu_isa.py: "s7" (7-bit signed, the default), "s8", "u8" (u8u8 kernels).
WEIGHTS = ("s7", "s8", "u8")


def quantize(source: Path, out: Path, weights: str = "s7") -> None:
    """Dynamic quantisation of the float32 ONNX ``source`` into ``out``, front end excluded."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    excluded = sorted(onnx_export.front_end_nodes(onnx.load(str(source))))
    # ORT logs a suggestion to run its pre-processing through the root logger; the graph is already
    # shape-inferred and simplified by our ONNX export.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        quantize_dynamic(
            str(source),
            str(out),
            op_types_to_quantize=["MatMul", "Gemm"],
            per_channel=True,
            weight_type=QuantType.QUInt8 if weights == "u8" else QuantType.QInt8,
            reduce_range=weights == "s7",  # 7-bit weights: no int16 saturation on CPUs without VNNI
            nodes_to_exclude=excluded,
            extra_options={"MatMulConstBOnly": True},  # only weight GEMMs; attention's QK^T/AV stay float
        )
    finally:
        root.setLevel(level)


def build(graph: ExportGraph, path: Path, deps: dict[str, Path], options: ExportOptions) -> dict:
    import onnx
    import onnxruntime

    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        out = Path(tmp) / FILE
        quantize(deps["onnx"], out)
        onnx_export.check(onnx.load(str(out)), path)
        out.replace(path)
    return {
        "opset": onnx_export.OPSET,
        "tools": {**onnx_export.tool_versions(), "onnxruntime": onnxruntime.__version__},
        "quantization": (
            "dynamic, 7-bit (reduce_range) int8 weights per channel, u8 activations per tensor at run time, "
            "MatMul/Gemm with constant weights, front end excluded"
        ),
    }
