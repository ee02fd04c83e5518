"""AOTInductor: ``torch.export`` -> Inductor-compiled shared library in a ``.pt2`` package, loaded
by ``torch._inductor.aoti_load_package`` in Python and ``torch::inductor::AOTIModelPackageLoader``
in C++. The package is compiled for one device type (the one it was exported on)."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import torch

from .graph import ExportGraph, ExportOptions

NAME = "aoti"
FORMAT = "aoti"
FILE = "model.pt2"
PRECISION = "fp32"
REQUIRES: tuple[str, ...] = ()


def unavailable() -> str | None:
    if shutil.which("c++") is None and shutil.which("g++") is None:
        return "AOTInductor needs a C++ compiler (g++) on PATH"
    return None


def compile_package(module: torch.nn.Module, graph: ExportGraph, path: Path) -> dict:
    """``torch.export`` ``module`` with the graph's example inputs and dynamic batch, then compile it."""
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        program = torch.export.export(module, graph.example, dynamic_shapes=graph.dynamic_shapes())
        # No Inductor "freezing" here: with torch 2.13 it produced wrong logits (max error 0.39 on
        # the tiny fixture, caught by parity) for the exported program.
        torch._inductor.aoti_compile_and_package(program, package_path=str(path))
    device = next(iter(module.state_dict().values())).device.type
    return {"tools": {"torch": torch.__version__}, "device": device}


def build(graph: ExportGraph, path: Path, deps: dict[str, Path], options: ExportOptions) -> dict:
    return compile_package(graph.module, graph, path)
