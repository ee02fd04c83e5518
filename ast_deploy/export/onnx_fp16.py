"""Mixed-precision FP16 ONNX: the input of a TensorRT engine now that TensorRT 11 builds strongly
typed networks only (precision comes from the ONNX types, not from builder flags).

The conversion follows what NVIDIA ModelOpt's AutoCast does (per-node precision, a keep-in-FP32
list, float32 inputs and outputs, Cast nodes at every precision boundary) without its CUDA-only
dependencies. Kept in float32:

* the front end (every node upstream of the patch-embedding Conv: framing, the DFT and mel
  MatMuls, the power spectrum and its log) - its dynamic range exceeds FP16 and its error would
  be amplified by the log;
* LayerNormalization (mean/variance statistics) and Softmax (the exponentials' sum).

Everything else (Conv, MatMul/Gemm, GELU, residual adds) runs in FP16. Initializers consumed
only by FP16 nodes are stored in FP16, halving the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import onnx as onnx_export
from .graph import ExportGraph, ExportOptions

NAME = "onnx-fp16"
FORMAT = "onnx"
FILE = "model.fp16.onnx"
PRECISION = "fp16"
REQUIRES = ("onnx",)
KEEP_FP32_OPS = frozenset({"LayerNormalization", "Softmax", "ReduceMean", "Pow", "Sqrt", "Exp", "Log"})
# Nodes whose float inputs carry no arithmetic precision (shape queries): never cast their inputs.
TYPE_AGNOSTIC_OPS = frozenset({"Shape", "Size"})

unavailable = onnx_export.unavailable


def convert_to_mixed_precision(model, keep_fp32_nodes: set[str]):
    """Return a copy of ``model`` with every float32 node outside ``keep_fp32_nodes`` (and
    :data:`KEEP_FP32_OPS`) computing in float16; graph inputs and outputs stay float32."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    graph = model.graph
    f32, f16 = TensorProto.FLOAT, TensorProto.FLOAT16

    dtype: dict[str, int] = {}  # element type of every tensor after conversion
    for vi in list(graph.input) + list(graph.value_info) + list(graph.output):
        dtype[vi.name] = vi.type.tensor_type.elem_type
    for init in graph.initializer:
        dtype[init.name] = init.data_type

    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    def runs_fp16(node) -> bool:
        return node.name not in keep_fp32_nodes and node.op_type not in KEEP_FP32_OPS

    def only_fp16_consumers(tensor: str) -> bool:
        users = consumers.get(tensor, [])
        return bool(users) and all(runs_fp16(u) or u.op_type in TYPE_AGNOSTIC_OPS for u in users)

    # Float32 constants used only by FP16 nodes are stored as FP16.
    for init in graph.initializer:
        if init.data_type == f32 and only_fp16_consumers(init.name):
            array = numpy_helper.to_array(init)
            init.CopyFrom(numpy_helper.from_array(np.clip(array, -65504, 65504).astype(np.float16), init.name))
            dtype[init.name] = f16

    new_nodes, casts = [], {}

    def cast(tensor: str, to: int) -> str:
        key = (tensor, to)
        if key not in casts:
            name = f"{tensor}__to_{'fp16' if to == f16 else 'fp32'}"
            new_nodes.append(helper.make_node("Cast", [tensor], [name], name=f"Cast_{name}", to=to))
            casts[key] = name
            dtype[name] = to
        return casts[key]

    for node in graph.node:
        fp16 = runs_fp16(node)
        want = f16 if fp16 else f32
        # Nodes whose output type is an attribute's: convert the attribute.
        if node.op_type in ("Constant", "ConstantOfShape") and fp16 and only_fp16_consumers(node.output[0]):
            for attr in node.attribute:
                if attr.name == "value" and attr.t.data_type == f32:
                    attr.t.CopyFrom(
                        numpy_helper.from_array(numpy_helper.to_array(attr.t).astype(np.float16), attr.t.name)
                    )
        if node.op_type not in TYPE_AGNOSTIC_OPS:
            for i, name in enumerate(node.input):
                if name and dtype.get(name) in (f32, f16) and dtype[name] != want:
                    node.input[i] = cast(name, want)
        if node.op_type == "Cast":
            to = next(a for a in node.attribute if a.name == "to")
            if fp16 and to.i == f32:
                to.i = f16
        new_nodes.append(node)
        for out in node.output:
            value = next((a.t for a in node.attribute if a.name == "value"), None)
            if node.op_type in ("Constant", "ConstantOfShape") and value is not None:
                dtype[out] = value.data_type
            elif node.op_type == "Cast":
                dtype[out] = next(a.i for a in node.attribute if a.name == "to")
            elif dtype.get(out) in (f32, f16):
                dtype[out] = want

    # Graph outputs stay float32: rename the producer's tensor and cast back.
    for out in graph.output:
        if dtype.get(out.name) == f16:
            internal = f"{out.name}__fp16"
            for node in new_nodes:
                node.output[:] = [internal if o == out.name else o for o in node.output]
                node.input[:] = [internal if i == out.name else i for i in node.input]
            new_nodes.append(helper.make_node("Cast", [internal], [out.name], name=f"Cast_{out.name}_out", to=f32))

    del graph.node[:]
    graph.node.extend(new_nodes)
    del graph.value_info[:]  # stale types; re-inferred below
    return onnx.shape_inference.infer_shapes(model, strict_mode=True)


def build(graph: ExportGraph, path: Path, deps: dict[str, Path], options: ExportOptions) -> dict:
    import onnx

    model = onnx.load(str(deps["onnx"]))
    mixed = convert_to_mixed_precision(model, onnx_export.front_end_nodes(model))
    mixed.producer_name = "ast-deploy"
    onnx_export.check(mixed, path)
    onnx.save(mixed, str(path))
    return {
        "opset": onnx_export.OPSET,
        "tools": onnx_export.tool_versions(),
        "fp32_ops": sorted(KEEP_FP32_OPS),
        "fp32_regions": ["front end"] if graph.spec.kind == "waveform" else [],
    }
