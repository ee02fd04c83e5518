"""PyTorch backends straight from a checkpoint: the float32 reference, reduced precision, torch.compile."""

from __future__ import annotations

import contextlib
import os
import shutil

import torch

from ..cpu import no_bf16, no_int8_dot
from ..errors import InputError, UnavailableError
from ..frontend import KaldiFbank
from ..model import ASTModel
from ..quantize import quantize_int8
from ..waveform_model import FbankAST
from .base import OUTPUT_NAMES, Backend, InputSpec, Outputs
from .registry import BackendEntry

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}  # weight/autocast dtypes


class PyTorchBackend(Backend):
    """``ASTModel`` in PyTorch, with its front end (float32 always) when the input is a waveform.

    ``precision`` casts the network's weights (``fp32``/``bf16``/``fp16``); ``autocast`` instead
    keeps float32 weights and runs under ``torch.autocast``, the usual way people try bf16;
    ``quantize="int8"`` swaps the blocks' linear layers for W8A8 ones (``ast_deploy/quantize.py``);
    ``compile`` wraps the network in ``torch.compile``.
    """

    graph_capturable = True
    outputs = OUTPUT_NAMES  # the checkpoint's network: logits and the clip embedding, always

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
        # The network answers (logits, embedding), as exported graphs do: the embedding is the head's
        # input, computed either way. Freezing folds weights into the graph as constants (inference
        # only), so Inductor can pre-pack them for its GEMM kernels.
        network = FbankAST(self.model).eval()
        self.network = torch.compile(network, options={"freezing": True}) if compile else network
        self.name = name or "pytorch"

    def _autocast(self):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    @torch.inference_mode()
    def _run_outputs(self, inputs: torch.Tensor, num_samples: torch.Tensor | None, embedding: bool) -> Outputs:
        inputs = inputs.to(self.device, non_blocking=True)
        if self.frontend is not None:
            fbank = self.frontend(inputs, num_samples.to(self.device, non_blocking=True))
        else:
            fbank = inputs
        with self._autocast():
            logits, pooled = self.network(fbank.to(self.dtype))
        return Outputs(logits.float(), pooled.float() if embedding else None)


def spec_for(frontend: KaldiFbank | None, model: ASTModel, sample_rate: int = 16000) -> InputSpec:
    c = model.config
    return InputSpec(
        kind="waveform" if frontend is not None else "fbank",
        sample_rate=frontend.config.sample_rate if frontend is not None else sample_rate,
        num_frames=c.target_length,
        num_mel_bins=c.num_mel_bins,
    )


# Reference-precision and reduced-precision PyTorch variants of the checkpoint's weights; the
# options are PyTorchBackend's keyword arguments. The float32 reference is the fallback default.
BACKENDS = (
    BackendEntry("pytorch", None, "fp32", rank={"cpu": 90, "cuda": 90}),
    BackendEntry("pytorch-bf16", None, "bf16", options={"precision": "bf16"}),
    BackendEntry("pytorch-fp16", None, "fp16", options={"precision": "fp16"}),
    BackendEntry("pytorch-autocast-bf16", None, "bf16", options={"autocast": "bf16"}),
    BackendEntry("pytorch-autocast-fp16", None, "fp16", options={"autocast": "fp16"}),
    BackendEntry("torch-compile", None, "fp32", options={"compile": True}),
    BackendEntry("torch-compile-bf16", None, "bf16", options={"precision": "bf16", "compile": True}),
    # W8A8 GEMMs, float32 attention
    BackendEntry("pytorch-int8", None, "int8", options={"quantize": "int8", "compile": True}),
)


FP16_ON_CPU = "float16 matmuls are a GPU feature; on CPU use the bf16 variant"


def _fp16_on_cpu(entry: BackendEntry, device: torch.device) -> bool:
    return device.type == "cpu" and "fp16" in (entry.option("precision"), entry.option("autocast"))


def unavailable(entry: BackendEntry, device: torch.device, artifact: dict | None = None) -> str | None:
    if _fp16_on_cpu(entry, device):
        return FP16_ON_CPU
    if device.type == "cpu":
        # Runnable, but not what the name promises: emulated bf16, or int8 GEMMs 30x slower than float32.
        if "bf16" in (entry.option("precision"), entry.option("autocast")) and (reason := no_bf16()):
            return reason
        if entry.option("quantize") == "int8" and (reason := no_int8_dot()):
            return reason
    return _compiler_missing(device) if entry.option("compile") else None


def _compiler_missing(device: torch.device) -> str | None:
    """torch.compile needs a C++ compiler for CPU kernels and OpenAI Triton for CUDA kernels."""
    if device.type == "cuda":
        try:
            from torch.utils._triton import has_triton
        except ImportError:  # pragma: no cover - very old torch
            return "torch.compile on CUDA needs OpenAI Triton (the GPU kernel compiler)"
        return None if has_triton() else "torch.compile on CUDA needs OpenAI Triton (pip install triton)"
    compilers = [os.environ.get("CXX", ""), "g++", "c++", "clang++"]
    if not any(c and shutil.which(c) for c in compilers):
        return "torch.compile on CPU needs a C++ compiler (g++ or clang++) on PATH"
    return None


def open_pytorch_backend(
    name: str, model: ASTModel, frontend: KaldiFbank | None, spec: InputSpec, device
) -> PyTorchBackend:
    """A named PyTorch variant over ``model`` (and ``frontend`` for waveform input)."""
    from . import registry

    entry = registry.get(name)
    if entry.runtime != "pytorch":
        raise InputError(f"backend {name!r} runs an exported artifact; a checkpoint runs the PyTorch backends only")
    dev = torch.device(device)
    reason = unavailable(entry, dev)
    if reason:
        raise UnavailableError(f"backend {name!r} cannot run here: {reason}")
    return PyTorchBackend(model, frontend, spec, device=dev, name=name, **entry.options)
