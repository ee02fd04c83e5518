"""AOTInductor ``.pt2`` packages through ``torch._inductor.aoti_load_package``."""

from __future__ import annotations

from pathlib import Path

import torch

from ..cpu import cpu_info, missing_for_isa, no_int8_dot
from ..errors import InputError
from .base import Backend, InputSpec, Outputs
from .registry import BackendEntry

# An AOTInductor package is compiled for one device type, recorded in the manifest as "device".
BACKENDS = (
    BackendEntry("aoti", "aoti", "fp32", rank={"cpu": 30, "cuda": 40}),
    BackendEntry("aoti-int8", "aoti", "int8"),
)


def unavailable(entry: BackendEntry, device: torch.device, artifact: dict | None = None) -> str | None:
    compiled_for = (artifact or {}).get("device", device.type)
    if compiled_for != device.type:
        return f"the AOTInductor package was compiled for {compiled_for}, not {device.type}"
    if device.type != "cpu":
        return None
    isa = (artifact or {}).get("cpu_isa")
    lacking = missing_for_isa(isa, cpu_info()) if isa else []
    if lacking:
        return (
            f"the AOTInductor package was compiled for {isa} and this CPU lacks {', '.join(lacking)} "
            f"({cpu_info().describe()}): re-export it on this machine"
        )
    return no_int8_dot() if entry.precision == "int8" else None


def open_artifact(
    entry: BackendEntry, path: Path, spec: InputSpec, device: torch.device, threads: int | None, artifact: dict
) -> Backend:
    return AOTInductorBackend(path, spec, device, compiled_for=artifact.get("device", "cpu"))


class AOTInductorBackend(Backend):
    name = "aoti"
    graph_capturable = True

    def __init__(self, path: Path, spec: InputSpec, device: str | torch.device = "cpu", compiled_for: str = "cpu"):
        super().__init__(spec, device)
        if self.device.type != compiled_for:
            raise InputError(f"{path}: AOTInductor package was compiled for {compiled_for}, not {self.device.type}")
        self.runner = torch._inductor.aoti_load_package(str(path))

    @torch.inference_mode()
    def _run_outputs(self, inputs: torch.Tensor, num_samples: torch.Tensor | None, embedding: bool) -> Outputs:
        return Outputs.of_graph(self.runner(*self.graph_inputs(inputs, num_samples)), embedding)
