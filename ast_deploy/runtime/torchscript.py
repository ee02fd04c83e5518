"""TorchScript artifacts through ``torch.jit.load`` (the same file libtorch loads in C++)."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from .base import Backend, InputSpec


class TorchScriptBackend(Backend):
    name = "torchscript"
    graph_capturable = True

    def __init__(self, path: Path, spec: InputSpec, device: str | torch.device = "cpu"):
        super().__init__(spec, device)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TorchScript's deprecation notice
            self.module = torch.jit.load(str(path), map_location=self.device).eval()

    @torch.inference_mode()
    def _run(self, inputs: torch.Tensor, num_samples: torch.Tensor | None) -> torch.Tensor:
        return self.module(*self.graph_inputs(inputs, num_samples)).float()
