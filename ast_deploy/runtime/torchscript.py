"""TorchScript artifacts through ``torch.jit.load`` (the same file libtorch loads in C++)."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from .base import Backend, InputSpec, Outputs
from .registry import BackendEntry

BACKENDS = (BackendEntry("torchscript", "torchscript", "fp32", rank={"cpu": 20, "cuda": 30}),)


def unavailable(entry: BackendEntry, device: torch.device, artifact: dict | None = None) -> str | None:
    return None  # torch itself runs it


def open_artifact(
    entry: BackendEntry, path: Path, spec: InputSpec, device: torch.device, threads: int | None, artifact: dict
) -> Backend:
    return TorchScriptBackend(path, spec, device)


class TorchScriptBackend(Backend):
    name = "torchscript"
    graph_capturable = True

    def __init__(self, path: Path, spec: InputSpec, device: str | torch.device = "cpu"):
        super().__init__(spec, device)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TorchScript's deprecation notice
            self.module = torch.jit.load(str(path), map_location=self.device).eval()

    @torch.inference_mode()
    def _run_outputs(self, inputs: torch.Tensor, num_samples: torch.Tensor | None, embedding: bool) -> Outputs:
        return Outputs.of_graph(self.module(*self.graph_inputs(inputs, num_samples)), embedding)
