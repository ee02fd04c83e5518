"""Static check that TensorRT's ONNX parser takes every node of a graph.

Runs anywhere (no TensorRT needed) against the parser's operator support matrix, kept as data in
``data/onnx_tensorrt_operators.tsv``: the opset must lie in the parser's range, every operator
must be supported, and every input tensor's element type must be one the operator accepts.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

# ONNX TensorProto element type -> the names the support matrix uses.
ONNX_TYPE_NAMES = {
    1: "FP32",
    2: "UINT8",
    3: "INT8",
    6: "INT32",
    7: "INT64",
    9: "BOOL",
    10: "FP16",
    11: "DOUBLE",
    16: "BF16",
}


@dataclass(frozen=True)
class SupportMatrix:
    opset_min: int
    opset_max: int
    types: dict[str, frozenset[str]]  # supported operator -> element types


@dataclass(frozen=True)
class Problem:
    node: str
    op_type: str
    reason: str

    def __str__(self) -> str:
        return f"{self.node} ({self.op_type}): {self.reason}"


@cache
def support_matrix() -> SupportMatrix:
    text = (resources.files("ast_deploy.export") / "data" / "onnx_tensorrt_operators.tsv").read_text(encoding="utf-8")
    opset_min, opset_max, types = 0, 0, {}
    for line in text.splitlines():
        if line.startswith("# opset_range"):
            _, lo, hi = line[2:].split("\t")
            opset_min, opset_max = int(lo), int(hi)
        if not line.strip() or line.startswith("#"):
            continue
        op, supported, type_list = [*line.split("\t"), ""][:3]
        if supported == "Y":
            types[op] = frozenset(t for t in type_list.split(",") if t)
    return SupportMatrix(opset_min, opset_max, types)


def tensorrt_problems(model) -> list[Problem]:
    """Every reason TensorRT's ONNX parser would reject ``model`` (empty list: parsable)."""
    import onnx

    matrix = support_matrix()
    problems = []
    for opset in model.opset_import:
        if opset.domain in ("", "ai.onnx") and not matrix.opset_min <= opset.version <= matrix.opset_max:
            problems.append(
                Problem("<model>", "opset", f"opset {opset.version} outside {matrix.opset_min}..{matrix.opset_max}")
            )
    inferred = onnx.shape_inference.infer_shapes(model)
    elem_type = {
        vi.name: vi.type.tensor_type.elem_type
        for vi in list(inferred.graph.input) + list(inferred.graph.value_info) + list(inferred.graph.output)
    }
    elem_type.update({init.name: init.data_type for init in inferred.graph.initializer})
    for node in inferred.graph.node:
        name = node.name or node.output[0]
        if node.domain not in ("", "ai.onnx"):
            problems.append(Problem(name, node.op_type, f"custom domain {node.domain!r} is not an ONNX operator"))
            continue
        if node.op_type not in matrix.types:
            problems.append(Problem(name, node.op_type, "operator not supported by TensorRT's ONNX parser"))
            continue
        for tensor in node.input:
            if not tensor:
                continue
            type_name = ONNX_TYPE_NAMES.get(elem_type.get(tensor, 0), "UNKNOWN")
            if type_name not in matrix.types[node.op_type]:
                problems.append(Problem(name, node.op_type, f"input {tensor!r} of type {type_name} not supported"))
    return problems
