"""ONNX (float32): opset 18, dynamic batch, constant-folded and simplified, checked with full shape
inference. The waveform graph holds the front end as Gather/MatMul/elementwise ops, no DFT/STFT,
so TensorRT's ONNX parser takes every node (see ``tensorrt_ops.py``)."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path

import torch

from ..errors import UnavailableError
from ..extras import missing
from .graph import ExportGraph, ExportOptions

NAME = "onnx"
FORMAT = "onnx"
FILE = "model.onnx"
PRECISION = "fp32"
OPSET = 18  # TensorRT 10/11 parse opset <= 22; 18 is the first with LayerNormalization's final form
REQUIRES: tuple[str, ...] = ()


def unavailable() -> str | None:
    return missing(("onnx", "onnxscript", "onnxslim"), "onnx")


def tool_versions() -> dict[str, str]:
    import onnx
    import onnxscript
    import onnxslim

    return {
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "onnxscript": onnxscript.__version__,
        "onnxslim": onnxslim.__version__,
    }


def check(model, path: Path) -> None:
    """onnx.checker with full shape inference: every value's type and rank must be inferable."""
    import onnx

    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
        raise UnavailableError(f"{path}: exported ONNX fails onnx.checker: {str(e).splitlines()[0]}") from None


def build(graph: ExportGraph, path: Path, deps: dict[str, Path], options: ExportOptions) -> dict:
    import onnx
    import onnxslim

    quiet = logging.getLogger("torch.onnx")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # "torchvision is not installed" notes; failures still raise
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")  # the exporter's progress chatter
        program = torch.onnx.export(
            graph.module,
            graph.example,
            dynamo=True,
            opset_version=OPSET,
            input_names=graph.input_names,
            output_names=graph.output_names,
            dynamic_shapes=graph.dynamic_shapes(),
            optimize=True,
            verbose=False,
        )
    quiet.setLevel(level)
    model = program.model_proto
    model = onnxslim.slim(model)  # constant folding, dead code, shape simplification
    model.producer_name, model.producer_version = "ast-deploy", torch.__version__
    check(model, path)
    onnx.save(model, str(path))
    return {"opset": OPSET, "tools": tool_versions()}


def front_end_nodes(model) -> set[str]:
    """Names of the nodes that compute the patch embedding's input: the front end (and the
    transpose into (B, 1, F, T)). Found structurally, so it survives simplification and renaming."""
    producers = {out: node for node in model.graph.node for out in node.output}
    conv = next((n for n in model.graph.node if n.op_type == "Conv"), None)
    if conv is None:
        return set()
    seen: set[str] = set()
    stack = [conv.input[0]]
    while stack:
        node = producers.get(stack.pop())
        if node is not None and node.name not in seen:
            seen.add(node.name)
            stack.extend(node.input)
    return seen
