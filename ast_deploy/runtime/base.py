"""The one small interface every runtime backend implements; predict, parity and bench use only this."""

from __future__ import annotations

import abc
from dataclasses import asdict, dataclass
from typing import Literal

import torch

from ..errors import InputError

InputKind = Literal["waveform", "fbank"]
# Graph input and output names, fixed for every exported artifact.
INPUT_NAMES: dict[str, tuple[str, ...]] = {"waveform": ("waveform", "num_samples"), "fbank": ("fbank",)}
OUTPUT_NAME = "logits"


@dataclass(frozen=True)
class InputSpec:
    """What a backend's graph takes. Waveform graphs take ``(waveform (B, N), num_samples (B,))``;
    fbank graphs take ``(fbank (B, frames, mel_bins))``. ``num_samples=None``: any N (eager PyTorch)."""

    kind: InputKind
    sample_rate: int
    num_frames: int
    num_mel_bins: int
    num_samples: int | None = None
    min_batch: int = 1
    max_batch: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def input_names(self) -> tuple[str, ...]:
        return INPUT_NAMES[self.kind]

    def check(self, inputs: torch.Tensor, num_samples: torch.Tensor | None, where: str) -> None:
        """Raise :class:`InputError` for inputs this graph cannot take."""
        batch = inputs.shape[0] if inputs.dim() else 0
        if self.kind == "waveform":
            if inputs.dim() != 2:
                raise InputError(f"{where}: expected waveform of shape (batch, samples), got {tuple(inputs.shape)}")
            if self.num_samples is not None and inputs.shape[1] != self.num_samples:
                raise InputError(
                    f"{where}: graph takes {self.num_samples} samples per row at {self.sample_rate} Hz, got {inputs.shape[1]}"
                )
            if num_samples is None or num_samples.shape != (batch,):
                raise InputError(f"{where}: waveform input needs num_samples of shape ({batch},)")
            if bool((num_samples < 1).any()) or bool((num_samples > inputs.shape[1]).any()):
                raise InputError(f"{where}: num_samples must lie in 1..{inputs.shape[1]}")
        else:
            expected = (self.num_frames, self.num_mel_bins)
            if inputs.dim() != 3 or tuple(inputs.shape[1:]) != expected:
                raise InputError(
                    f"{where}: expected fbank of shape (batch, {expected[0]}, {expected[1]}), got {tuple(inputs.shape)}"
                )
        if batch < self.min_batch or (self.max_batch is not None and batch > self.max_batch):
            raise InputError(f"{where}: batch {batch} outside the exported range {self.min_batch}..{self.max_batch}")
        if inputs.dtype != torch.float32:
            raise InputError(f"{where}: expected float32 input, got {inputs.dtype}")


class Backend(abc.ABC):
    """A loaded artifact (or the PyTorch model) that maps a batch of inputs to float32 logits.

    Subclasses implement :meth:`_run`; inputs arrive on any device and logits come back on
    ``self.device`` (CPU for ONNX Runtime) without a host synchronisation, so that benchmarks
    decide where to synchronise.
    """

    name: str = "backend"
    precision: str = "fp32"
    # Its work is torch kernels launched on torch's current CUDA stream, so a CUDA graph can capture it.
    graph_capturable: bool = False
    # It compiles one static shape per batch size (OpenVINO): a partial batch costs a compilation
    # (seconds, and ~300 MB for AST-base) unless padded to a size it already runs.
    static_batch_shapes: bool = False

    def __init__(self, spec: InputSpec, device: str | torch.device = "cpu"):
        self.spec = spec
        self.device = torch.device(device)

    def __call__(self, inputs: torch.Tensor, num_samples: torch.Tensor | None = None) -> torch.Tensor:
        self.spec.check(inputs, num_samples, self.name)
        return self._run(inputs, num_samples)

    @abc.abstractmethod
    def _run(self, inputs: torch.Tensor, num_samples: torch.Tensor | None) -> torch.Tensor: ...

    def run_padded(
        self, inputs: torch.Tensor, num_samples: torch.Tensor | None = None, pad_to: int = 1
    ) -> torch.Tensor:
        """``self(inputs, num_samples)`` for any number of rows: run at a batch of at least the artifact's
        ``min_batch`` (engines built for one) and ``pad_to``, the last row repeated, the extra logits dropped."""
        rows = inputs.shape[0]
        pad = max(self.spec.min_batch, pad_to) - rows
        if pad > 0:
            inputs = torch.cat([inputs, inputs[-1:].expand(pad, *inputs.shape[1:])])
            if num_samples is not None:
                num_samples = torch.cat([num_samples, num_samples[-1:].expand(pad)])
        return self(inputs, num_samples)[:rows]

    @property
    def compute_precision(self) -> str:
        """What its GEMMs run at, a key of ``bench.roofline.PRECISION_MIX``: :attr:`precision` unless the
        runtime computes the unquantised part of an int8 model in bf16 ("int8+bf16")."""
        return self.precision

    def graph_inputs(self, inputs: torch.Tensor, num_samples: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
        """The graph's positional inputs on this backend's device."""
        inputs = inputs.to(self.device, non_blocking=True).contiguous()
        if self.spec.kind == "fbank":
            return (inputs,)
        return inputs, num_samples.to(self.device, torch.int64, non_blocking=True).contiguous()

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release sessions, engines, device memory."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, precision={self.precision!r}, input={self.spec.kind}, device={self.device})"
