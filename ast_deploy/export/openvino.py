"""OpenVINO IR (float32 weights): ``model.xml`` (the graph) and ``model.bin`` (the weights).

Converted from the float32 ONNX artifact rather than from the PyTorch module: OpenVINO's PyTorch
front end cannot trace the waveform graph's framing (``unfold`` with a dynamic batch), while its
ONNX front end takes both input kinds with names and the dynamic batch axis intact. The batch axis
is then bounded to the export's ``--batch`` range (a fixed batch becomes a static shape).

The same IR runs in float32 or bf16: the inference precision is a compile-time hint of the runtime,
not a property of the file. The front end (framing, the DFT and mel MatMuls, the power spectrum,
the log, and the arithmetic on ``num_samples`` that counts valid frames) is marked precision-sensitive
in the IR, so that a bf16 run keeps those in float32 - unmarked, OpenVINO's CPU plugin runs them in
bf16, whose 8-bit mantissa cannot even hold sample counts above 256 exactly. The plugin still fuses
the waveform's mean removal into bf16 nodes of its own, so runtimes compile a bf16 run's front end
as a separate f32 model (``ast_deploy.runtime.openvino.split_front_end``).
"""

from __future__ import annotations

from pathlib import Path

from ..runtime.openvino import missing as openvino_missing  # the exporter needs what the runtime needs
from . import onnx as onnx_export
from .graph import ExportGraph, ExportOptions

NAME = "openvino"
FORMAT = "openvino"
FILE = "model.xml"
FILES = ("model.xml", "model.bin")
PRECISION = "fp32"
REQUIRES = ("onnx",)
# rt_info key of OpenVINO's "precise" attribute (ov::disable_fp16_compression): the node keeps its
# original precision under a reduced inference precision. Stored in the IR, read by the C++ runtime too.
KEEP_PRECISION = "precise_0"


def unavailable() -> str | None:
    reason = onnx_export.unavailable()
    if reason:
        return reason
    return openvino_missing()


def tool_versions() -> dict[str, str]:
    import openvino

    return {**onnx_export.tool_versions(), "openvino": openvino.get_version()}


def front_end_nodes(model) -> list:
    """The nodes computing the patch embedding's input (the front end and the transpose into
    (B, 1, F, T)), in graph order: everything upstream of the Convolution's data input. Found
    structurally, like :func:`ast_deploy.export.onnx.front_end_nodes`, so that names do not matter."""
    ops = model.get_ordered_ops()
    conv = next((op for op in ops if op.get_type_name() == "Convolution"), None)
    if conv is None:
        return []
    seen: set[str] = set()
    stack = [conv.input_value(0).get_node()]
    while stack:
        node = stack.pop()
        if node.get_friendly_name() not in seen:
            seen.add(node.get_friendly_name())
            stack.extend(value.get_node() for value in node.input_values())
    return [op for op in ops if op.get_friendly_name() in seen and op.get_type_name() not in ("Parameter", "Constant")]


def set_batch(model, graph: ExportGraph, low: int | None = None, high: int | None = None) -> None:
    """Bound every input's batch axis to ``low..high`` (default: the export's range; ``-1``: unbounded)."""
    import openvino as ov

    low = graph.batch.min if low is None else low
    high = graph.batch.max if high is None else high
    batch = ov.Dimension() if high < 0 else ov.Dimension(low, high)
    shapes = {}
    for port in model.inputs:
        shape = port.get_partial_shape()
        shapes[port.get_any_name()] = ov.PartialShape([batch, *list(shape)[1:]])
    model.reshape(shapes)


def save(model, path: Path) -> None:
    """``path`` (.xml) and its .bin beside it, weights kept in float32 (OpenVINO would compress them to FP16)."""
    import openvino as ov

    ov.save_model(model, str(path), compress_to_fp16=False)


def build(graph: ExportGraph, path: Path, deps: dict[str, Path], options: ExportOptions) -> dict:
    import openvino as ov

    model = ov.convert_model(str(deps["onnx"]))
    set_batch(model, graph)
    front_end = front_end_nodes(model) if graph.spec.kind == "waveform" else []
    for node in front_end:
        node.get_rt_info()[KEEP_PRECISION] = ""
    save(model, path)
    return {
        "tools": tool_versions(),
        "converted_from": "onnx",
        "fp32_regions": ["front end"] if front_end else [],
    }
