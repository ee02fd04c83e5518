"""OpenVINO IR (float32 weights): ``model.xml`` (the graph) and ``model.bin`` (the weights); a waveform
IR also ships its two halves, ``model.front.xml``/``.bin`` (the front end) and ``model.rest.xml``/``.bin``.

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
as a separate f32 model: the IR is cut in two here, at export time
(``ast_deploy.runtime.openvino.split_front_end``), and both halves are files of the artifact, hashed
in the manifest like the whole IR, which float32 runs compile. The Python and C++ runtimes only
compile files. The rest's ``.bin`` repeats the whole IR's weights (the artifact's size doubles):
OpenVINO has no weights file shared between IRs.
"""

from __future__ import annotations

from pathlib import Path

from ..runtime.openvino import (
    openvino_missing,
    split_files,
    split_front_end,
)  # the exporter needs what the runtime needs
from . import onnx as onnx_export
from .graph import ExportGraph, ExportOptions

NAME = "openvino"
FORMAT = "openvino"
FILE = "model.xml"
FILES = ("model.xml", "model.bin")  # a waveform IR adds its halves: build returns every file
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


def save_ir(model, path: Path, graph: ExportGraph) -> list[str]:
    """``model`` as the IR ``path`` and, for a waveform graph, as its two halves beside it (the front end and
    the rest, :func:`~ast_deploy.runtime.openvino.split_files`); the artifact's file names, primary first."""
    save(model, path)
    files = [path.name, path.with_suffix(".bin").name]
    if graph.spec.kind == "waveform":
        front, rest = split_front_end(model.clone())  # the split cuts its model: keep the whole one whole
        for half, name in zip((front, rest), split_files(path.name)):
            save(half, path.with_name(name))
            files += [name, Path(name).with_suffix(".bin").name]
    return files


def build(graph: ExportGraph, path: Path, deps: dict[str, Path], options: ExportOptions) -> dict:
    import openvino as ov

    model = ov.convert_model(str(deps["onnx"]))
    set_batch(model, graph)
    front_end = front_end_nodes(model) if graph.spec.kind == "waveform" else []
    for node in front_end:
        node.get_rt_info()[KEEP_PRECISION] = ""
    return {
        "files": save_ir(model, path, graph),
        "tools": tool_versions(),
        "converted_from": "onnx",
        "fp32_regions": ["front end"] if front_end else [],
    }
