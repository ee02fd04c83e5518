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
FILE = "model.pt2"
PRECISION = "fp32"
REQUIRES: tuple[str, ...] = ()


def unavailable() -> str | None:
    if shutil.which("c++") is None and shutil.which("g++") is None:
        return "AOTInductor needs a C++ compiler (g++) on PATH"
    return None


def build(graph: ExportGraph, path: Path, deps: dict[str, Path], options: ExportOptions) -> dict:
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        program = torch.export.export(graph.module, graph.example, dynamic_shapes=graph.dynamic_shapes())
        torch._inductor.aoti_compile_and_package(program, package_path=str(path))
    device = next(graph.module.parameters()).device.type
    return {"tools": {"torch": torch.__version__}, "device": device}
