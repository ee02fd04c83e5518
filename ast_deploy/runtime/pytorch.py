"""PyTorch backends straight from a checkpoint: the float32 reference, reduced precision, torch.compile."""

from __future__ import annotations

import contextlib

import torch

from ..errors import InputError
from ..frontend import KaldiFbank
from ..model import ASTModel
from ..quantize import quantize_int8
from .base import Backend, InputSpec

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


class PyTorchBackend(Backend):
    graph_capturable = True

    """``ASTModel`` in PyTorch, with its front end (float32 always) when the input is a waveform.

    ``precision`` casts the network's weights (``fp32``/``bf16``/``fp16``); ``autocast`` instead
    keeps float32 weights and runs under ``torch.autocast``, the usual way people try bf16;
    ``quantize="int8"`` swaps the blocks' linear layers for W8A8 ones (``ast_deploy/quantize.py``);
    ``compile`` wraps the network in ``torch.compile``.
    """

    def __init__(
        self,
        model: ASTModel,
        frontend: KaldiFbank | None,
        spec: InputSpec,
        device: str | torch.device = "cpu",
        precision: str = "fp32",
        autocast: str | None = None,
        compile: bool = False,
        quantize: str | None = None,
        name: str | None = None,
    ):
        super().__init__(spec, device)
        self.precision = quantize or autocast or precision
        self.dtype = DTYPES[precision]
        self.autocast_dtype = DTYPES[autocast] if autocast else None
        self.frontend = frontend.to(self.device).eval() if frontend is not None else None
        self.model = model.to(self.device, self.dtype).eval()
        if quantize == "int8":
            quantize_int8(self.model)
        # Freezing folds weights into the graph as constants (inference only), so Inductor can
        # pre-pack them for its GEMM kernels.
        self.network = torch.compile(self.model, options={"freezing": True}) if compile else self.model
        self.name = name or "pytorch"

    def _autocast(self):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    @torch.inference_mode()
    def _run(self, inputs: torch.Tensor, num_samples: torch.Tensor | None) -> torch.Tensor:
        inputs = inputs.to(self.device, non_blocking=True)
        if self.frontend is not None:
            fbank = self.frontend(inputs, num_samples.to(self.device, non_blocking=True))
        else:
            fbank = inputs
        with self._autocast():
            return self.network(fbank.to(self.dtype)).float()


def spec_for(frontend: KaldiFbank | None, model: ASTModel, sample_rate: int = 16000) -> InputSpec:
    c = model.config
    return InputSpec(
        kind="waveform" if frontend is not None else "fbank",
        sample_rate=frontend.config.sample_rate if frontend is not None else sample_rate,
        num_frames=c.target_length,
        num_mel_bins=c.num_mel_bins,
    )


# Reference-precision and reduced-precision PyTorch variants, by backend name.
PYTORCH_BACKENDS: dict[str, dict] = {
    "pytorch": {},
    "pytorch-bf16": {"precision": "bf16"},
    "pytorch-fp16": {"precision": "fp16"},
    "pytorch-autocast-bf16": {"autocast": "bf16"},
    "pytorch-autocast-fp16": {"autocast": "fp16"},
    "torch-compile": {"compile": True},
    "torch-compile-bf16": {"precision": "bf16", "compile": True},
    "pytorch-int8": {"quantize": "int8", "compile": True},  # W8A8 GEMMs, float32 attention
}


def open_pytorch_backend(
    name: str, model: ASTModel, frontend: KaldiFbank | None, spec: InputSpec, device
) -> PyTorchBackend:
    """A named PyTorch variant over ``model`` (and ``frontend`` for waveform input)."""
    options = PYTORCH_BACKENDS[name]
    dev = torch.device(device)
    if dev.type == "cpu" and (options.get("precision") == "fp16" or options.get("autocast") == "fp16"):
        raise InputError(f"backend {name!r}: float16 matmuls are a GPU feature; on CPU use the bf16 variant")
    return PyTorchBackend(model, frontend, spec, device=dev, name=name, **options)
