"""AOTInductor: ``torch.export`` -> Inductor-compiled shared library in a ``.pt2`` package, loaded
by ``torch._inductor.aoti_load_package`` in Python and ``torch::inductor::AOTIModelPackageLoader``
in C++. The package is compiled for one device type (the one it was exported on) and, on the CPU,
for the vector ISA Inductor picked there (``cpu_isa`` in the manifest: ``avx2``, ``avx512``,
``avx512 avx512_vnni``, ``avx512 avx512_vnni amx_tile``): its machine code would stop with an
illegal instruction on a CPU without it, so runtimes refuse it there (``ast_deploy.runtime.aoti``).
``ATEN_CPU_CAPABILITY=avx2`` at export time builds a package for AVX2 CPUs on a bigger one."""

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
    info = {"tools": {"torch": torch.__version__}, "device": device}
    if device == "cpu":
        info["cpu_isa"] = compiled_isa()
    return info


def compiled_isa() -> str:
    """The vector ISA Inductor compiles CPU kernels for here (what ``aoti_compile_and_package`` uses)."""
    from torch._inductor.cpu_vec_isa import pick_vec_isa

    return str(pick_vec_isa()).strip() or "scalar"


def build(graph: ExportGraph, path: Path, deps: dict[str, Path], options: ExportOptions) -> dict:
    return compile_package(graph.module, graph, path)
