"""AOTInductor package of the W8A8 model (``ast_deploy/quantize.py``): int8 weights per output
channel, per-token dynamic int8 activations, float32 attention and front end. The fastest CPU
artifact where the CPU has int8 dot-product units (VNNI / AMX-INT8); runs in Python and C++ like
``aoti``."""

from __future__ import annotations

import copy
from pathlib import Path

from ..quantize import quantize_int8
from ..waveform_model import WaveformAST
from . import aoti
from .graph import ExportGraph, ExportOptions

NAME = "aoti-int8"
FORMAT = "aoti"
FILE = "model.int8.pt2"
PRECISION = "int8"
REQUIRES: tuple[str, ...] = ()

unavailable = aoti.unavailable


def build(graph: ExportGraph, path: Path, deps: dict[str, Path], options: ExportOptions) -> dict:
    module = copy.deepcopy(graph.module)
    quantize_int8(module.model if isinstance(module, WaveformAST) else module)
    info = aoti.compile_package(module, graph, path)
    info["quantization"] = "W8A8: int8 weights per output channel, int8 activations per token (dynamic)"
    return info
