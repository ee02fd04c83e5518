"""What gets exported: the network for one input kind, its example inputs, names and dynamic axes.

Every exporter (TorchScript, ONNX, AOTInductor) starts from the same :class:`ExportGraph`, so
that input names, shapes and the batch range are decided once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..checkpoints import Checkpoint
from ..errors import InputError
from ..frontend import FrontEndConfig, KaldiFbank
from ..runtime.base import INPUT_NAMES, OUTPUT_NAMES, InputKind, InputSpec
from ..waveform_model import FbankAST, WaveformAST
from .calibration import Calibration


@dataclass(frozen=True)
class BatchRange:
    min: int = 1
    opt: int = 1
    max: int = 32

    @classmethod
    def parse(cls, text: str) -> BatchRange:
        """``MIN:OPT:MAX`` (or a single number for a fixed batch)."""
        parts = text.split(":")
        try:
            values = [int(p) for p in parts]
        except ValueError:
            raise InputError(f"--batch {text!r}: expected MIN:OPT:MAX with positive integers") from None
        if len(values) == 1:
            values *= 3
        if len(values) != 3 or not 1 <= values[0] <= values[1] <= values[2]:
            raise InputError(f"--batch {text!r}: expected MIN:OPT:MAX with 1 <= MIN <= OPT <= MAX")
        return cls(*values)

    def __str__(self) -> str:
        return f"{self.min}:{self.opt}:{self.max}"


@dataclass(frozen=True)
class ExportOptions:
    """Knobs of individual formats (TensorRT's builder), with defaults right for the common case."""

    workspace_gib: float = 4.0
    optimization_level: int = 3  # TensorRT's default; 5 searches longer for a faster engine
    timing_cache: Path | None = None  # persisted TensorRT timing cache; None: beside the output directory
    # Audio for static INT8 quantisers (openvino-int8): files, folders or manifests (export/calibration.py).
    calibration: tuple[Path, ...] = ()


@dataclass
class ExportGraph:
    """The module to export with example inputs; one per (checkpoint, input kind, clip length).
    ``module`` answers ``(logits, embedding)`` (:mod:`ast_deploy.waveform_model`); ``module.model``
    is its :class:`~ast_deploy.model.ASTModel`."""

    module: nn.Module
    spec: InputSpec
    batch: BatchRange
    example: tuple[torch.Tensor, ...]
    frontend: FrontEndConfig | None = None  # the checkpoint's front end (inside the graph for waveform input)
    calibration: Calibration | None = None  # --calibration's windows, loaded once by export(); None: the default

    @property
    def input_names(self) -> list[str]:
        return list(self.spec.input_names)

    @property
    def output_names(self) -> list[str]:
        """``logits`` and ``embedding``: the graph's outputs, in that order, in every format."""
        return list(OUTPUT_NAMES)

    def example_inputs(self, batch: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
        """Seeded inputs of a given batch: speech-level noise; waveform rows of different lengths."""
        g = torch.Generator().manual_seed(seed)
        if self.spec.kind == "fbank":
            return (torch.randn(batch, self.spec.num_frames, self.spec.num_mel_bins, generator=g) * 0.5,)
        n = self.spec.num_samples
        wave = torch.randn(batch, n, generator=g) * 0.1
        lengths = torch.full((batch,), n, dtype=torch.int64)
        lengths[1::2] = torch.randint(n // 2, n, (len(lengths[1::2]),), generator=g)
        return wave, lengths

    def dynamic_shapes(self) -> dict[str, dict[int, torch.export.Dim]]:
        batch = torch.export.Dim("batch", min=self.batch.min, max=max(self.batch.max, 2))
        return {name: {0: batch} for name in self.input_names}


def build_graph(ckpt: Checkpoint, kind: InputKind, batch: BatchRange, clip_seconds: float | None = None) -> ExportGraph:
    """The float32 network for ``kind`` (``waveform`` puts the front end inside the graph)."""
    if kind not in INPUT_NAMES:
        raise InputError(f"--input {kind!r}: expected waveform or fbank")
    model = ckpt.build_model()
    fe = ckpt.frontend
    if kind == "fbank":
        if clip_seconds is not None:
            raise InputError("--clip-seconds applies to waveform input only; fbank graphs take the model's frames")
        spec = InputSpec("fbank", fe.sample_rate, fe.target_length, fe.num_mel_bins, None, batch.min, batch.max)
        graph = ExportGraph(FbankAST(model).eval(), spec, batch, (), fe)
    else:
        samples = fe.window_samples if clip_seconds is None else round(clip_seconds * fe.sample_rate)
        if samples < fe.window_size:
            raise InputError(f"--clip-seconds {clip_seconds}: shorter than one {fe.frame_length_ms:g} ms frame")
        spec = InputSpec("waveform", fe.sample_rate, fe.target_length, fe.num_mel_bins, samples, batch.min, batch.max)
        graph = ExportGraph(WaveformAST(KaldiFbank(fe), model).eval(), spec, batch, (), fe)
    graph.example = graph.example_inputs(max(2, batch.opt))
    return graph
