"""AOTInductor ``.pt2`` packages through ``torch._inductor.aoti_load_package``."""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import InputError
from .base import Backend, InputSpec


class AOTInductorBackend(Backend):
    name = "aoti"
    graph_capturable = True

    def __init__(self, path: Path, spec: InputSpec, device: str | torch.device = "cpu", compiled_for: str = "cpu"):
        super().__init__(spec, device)
        if self.device.type != compiled_for:
            raise InputError(f"{path}: AOTInductor package was compiled for {compiled_for}, not {self.device.type}")
        self.runner = torch._inductor.aoti_load_package(str(path))

    @torch.inference_mode()
    def _run(self, inputs: torch.Tensor, num_samples: torch.Tensor | None) -> torch.Tensor:
        out = self.runner(*self.graph_inputs(inputs, num_samples))
        return (out[0] if isinstance(out, (list, tuple)) else out).float()
