"""TorchScript: a traced module that ``torch.jit.load`` opens in Python and in libtorch (C++)
without this package. TorchScript is deprecated upstream but remains the widest-deployed way into
libtorch; AOTInductor (``aoti.py``) is the current path."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from .graph import ExportGraph, ExportOptions

NAME = "torchscript"
FORMAT = "torchscript"
FILE = "model.ts"
PRECISION = "fp32"
REQUIRES: tuple[str, ...] = ()


def unavailable() -> str | None:
    return None


def build(graph: ExportGraph, path: Path, deps: dict[str, Path], options: ExportOptions) -> dict:
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the tracer's deprecation and "converting to constant" notes
        traced = torch.jit.trace(graph.module, graph.example, check_trace=False)
    traced.save(str(path))
    return {"tools": {"torch": torch.__version__}}
