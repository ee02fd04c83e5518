"""The one small interface every runtime backend implements; predict, parity and bench use only this."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal, NamedTuple

import torch

from ..errors import InputError
from ..model import EMBEDDING_NAME, OUTPUT_NAME, OUTPUT_NAMES  # noqa: F401 - the runtimes import them from here

InputKind = Literal["waveform", "fbank"]
# Graph input and output names, fixed for every exported artifact.
INPUT_NAMES: dict[str, tuple[str, ...]] = {"waveform": ("waveform", "num_samples"), "fbank": ("fbank",)}
# Outputs (OUTPUT_NAMES, from ast_deploy.model): logits and the clip embedding, in this order, in every
# graph exported since embeddings; older artifacts answer logits only.


class Outputs(NamedTuple):
    """What one backend call answers: float32 logits (B, labels), and the clip embeddings (B, embed_dim)
    when they were asked for (``None`` otherwise)."""

    logits: torch.Tensor
    embedding: torch.Tensor | None = None

    @classmethod
    def of_graph(cls, out, embedding: bool) -> Outputs:
        """A torch graph's result (TorchScript, AOTInductor): ``(logits, embedding)`` from graphs exported
        since embeddings, logits alone from older ones (never asked for an embedding)."""
        if isinstance(out, (list, tuple)):
            return cls(out[0].float(), out[1].float() if embedding else None)
        return cls(out.float())

    def first(self, rows: int) -> Outputs:
        """The first ``rows`` rows of each output (a padded batch's own rows)."""
        return Outputs(self.logits[:rows], None if self.embedding is None else self.embedding[:rows])


def no_embedding(name: str) -> str:
    """Why backend ``name`` gives no embeddings: its artifact was exported before they were (logits only)."""
    return (
        f"backend {name!r} has no embedding output: its artifact was exported before ast-deploy exported "
        "embeddings (logits only); re-export the checkpoint to get them"
    )


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


class Backend:
    """A loaded artifact (or the PyTorch model) that maps a batch of inputs to float32 logits and, where
    its graph has one, the clip embedding.

    Subclasses implement :meth:`_run_outputs` (every output they have; the embedding only when asked,
    so that the logits path fetches nothing more than before), or only :meth:`_run` (logits) for a
    graph without an embedding. Inputs arrive on any device and outputs come back on ``self.device``
    (CPU for ONNX Runtime) without a host synchronisation, so that benchmarks decide where to
    synchronise. ``backend(x, n)`` gives logits; :meth:`run` gives :class:`Outputs`.
    """

    name: str = "backend"
    precision: str = "fp32"
    # Its work is torch kernels launched on torch's current CUDA stream, so a CUDA graph can capture it.
    graph_capturable: bool = False
    # It compiles one static shape per batch size (OpenVINO): a partial batch costs a compilation
    # (seconds, and ~300 MB for AST-base) unless padded to a size it already runs.
    static_batch_shapes: bool = False
    # The graph's outputs (OUTPUT_NAMES order). An artifact's are its manifest's, set by ArtifactDir.open;
    # ("logits",) alone for an artifact exported before embeddings.
    outputs: tuple[str, ...] = (OUTPUT_NAME,)

    def __init__(self, spec: InputSpec, device: str | torch.device = "cpu"):
        self.spec = spec
        self.device = torch.device(device)

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if cls._run is Backend._run and cls._run_outputs is Backend._run_outputs:  # each defaults to the other
            raise TypeError(f"{cls.__name__} implements neither _run nor _run_outputs")

    @property
    def has_embedding(self) -> bool:
        return EMBEDDING_NAME in self.outputs

    def check_embedding(self) -> None:
        """Raise :class:`InputError` (one line) where this backend's graph has no embedding output."""
        if not self.has_embedding:
            raise InputError(no_embedding(self.name))

    def __call__(self, inputs: torch.Tensor, num_samples: torch.Tensor | None = None) -> torch.Tensor:
        """Logits of a batch."""
        self.spec.check(inputs, num_samples, self.name)
        return self._run(inputs, num_samples)

    def run(
        self,
        inputs: torch.Tensor,
        num_samples: torch.Tensor | None = None,
        embedding: bool = False,
        pad_to: int = 1,
    ) -> Outputs:
        """Logits, and with ``embedding`` the clip embeddings, of any number of rows: run at a batch of at
        least the artifact's ``min_batch`` (engines built for one) and ``pad_to``, the last row repeated,
        the extra rows dropped. ``embedding`` on a graph without one is an :class:`InputError`."""
        if embedding:
            self.check_embedding()
        rows = inputs.shape[0] if inputs.dim() else 0
        pad = max(self.spec.min_batch, pad_to) - rows
        if pad > 0 and rows:
            inputs = torch.cat([inputs, inputs[-1:].expand(pad, *inputs.shape[1:])])
            if num_samples is not None:
                num_samples = torch.cat([num_samples, num_samples[-1:].expand(pad)])
        self.spec.check(inputs, num_samples, self.name)
        out = self._run_outputs(inputs, num_samples, True) if embedding else Outputs(self._run(inputs, num_samples))
        return out.first(rows) if pad > 0 else out

    def _run(self, inputs: torch.Tensor, num_samples: torch.Tensor | None) -> torch.Tensor:
        """Float32 logits of a checked batch (the common path: no other output is fetched)."""
        return self._run_outputs(inputs, num_samples, False).logits

    def _run_outputs(self, inputs: torch.Tensor, num_samples: torch.Tensor | None, embedding: bool) -> Outputs:
        """Logits and, when ``embedding`` (only asked where :attr:`has_embedding`), the embeddings of a
        checked batch. The default serves backends that implement :meth:`_run` only (logits)."""
        if embedding:
            self.check_embedding()
            raise NotImplementedError(f"{type(self).__name__} has an embedding output but no _run_outputs")
        return Outputs(self._run(inputs, num_samples))

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

    def close(self) -> None:
        """Release sessions, engines, device memory."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, precision={self.precision!r}, input={self.spec.kind}, device={self.device})"
