"""AOTInductor package of the W8A8 model (``ast_deploy/quantize.py``): int8 weights per output
channel, per-token dynamic int8 activations, float32 attention and front end. Runs in Python and C++
like ``aoti``.

Only where the CPU has int8 dot-product units (VNNI / AMX-INT8): ``torch._int_mm`` is exact on every
CPU (int32 accumulation; parity passes under ``ONEDNN_MAX_CPU_ISA=AVX2``), but without them it falls
back to a kernel about 30x slower than float32 (75 s per AST-base call on a 2-core AVX2 EPYC), which
also made its parity check the longest step of an export there. So it is not built on such CPUs
(``--to all-available`` records why under ``skipped``), and runtimes refuse it there."""

from __future__ import annotations

import copy
from pathlib import Path

from ..cpu import no_int8_dot
from ..quantize import quantize_int8
from . import aoti
from .graph import ExportGraph, ExportOptions

NAME = "aoti-int8"
FORMAT = "aoti"
FILE = "model.int8.pt2"
PRECISION = "int8"
REQUIRES: tuple[str, ...] = ()


def unavailable() -> str | None:
    return aoti.unavailable() or no_int8_dot()


def build(graph: ExportGraph, path: Path, deps: dict[str, Path], options: ExportOptions) -> dict:
    module = copy.deepcopy(graph.module)
    quantize_int8(module.model)  # the ASTModel inside either graph (ast_deploy.waveform_model)
    info = aoti.compile_package(module, graph, path)
    info["quantization"] = "W8A8: int8 weights per output channel, int8 activations per token (dynamic)"
    return info
