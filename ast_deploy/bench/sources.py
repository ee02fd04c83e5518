"""What a benchmark runs: an artifact directory or a checkpoint, its backends and their availability.

An artifact directory offers its artifacts plus the PyTorch variants of its reference weights, all
taking the manifest's input kind. A checkpoint offers the PyTorch variants only, with either input
kind (``waveform``: end to end, front end included; ``fbank``: the network alone).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch

from ..checkpoints import LoadOptions, load_checkpoint
from ..errors import InputError
from ..frontend import FrontEndConfig, KaldiFbank
from ..model import ASTConfig
from ..runtime import registry
from ..runtime.base import Backend, InputKind, InputSpec
from ..runtime.pytorch import open_pytorch_backend, spec_for
from ..windows import window_length

INPUT_KINDS: tuple[InputKind, ...] = ("waveform", "fbank")


class BenchSource:
    """Common interface of :class:`ArtifactSource` and :class:`CheckpointSource`."""

    type: str
    path: Path
    config: ASTConfig
    frontend: FrontEndConfig

    def input_kinds(self) -> tuple[InputKind, ...]:
        raise NotImplementedError

    def backend_names(self) -> list[str]:
        raise NotImplementedError

    def spec(self, kind: InputKind) -> InputSpec:
        raise NotImplementedError

    def open(self, name: str, kind: InputKind, device: str, threads: int | None) -> Backend:
        raise NotImplementedError

    def describe(self) -> dict:
        return {
            "path": str(self.path),
            "type": self.type,
            "model": self.config.to_dict(),
            "gflops_per_clip": self.config.flops_per_clip() / 1e9,
            "frontend": self.frontend.to_dict(),
        }

    def clip_samples(self, kind: InputKind) -> int:
        """Samples of audio one input row stands for (fbank rows: the window their frames cover)."""
        spec = self.spec(kind)
        return window_length(spec.num_samples if kind == "waveform" else None, self.frontend)

    def clip_seconds(self, kind: InputKind) -> float:
        return self.clip_samples(kind) / self.frontend.sample_rate

    def unavailable(self, name: str, device: str) -> str | None:
        """Why backend ``name`` cannot run on ``device`` here, or ``None`` when it can."""
        return registry.unavailable(name, torch.device(device))


class ArtifactSource(BenchSource):
    type = "artifacts"

    def __init__(self, path: Path):
        from ..artifacts import ArtifactDir

        self.path = Path(path)
        self.artifacts = ArtifactDir(path)
        self.config = ASTConfig(**self.artifacts.manifest["model"])
        self.frontend = self.artifacts.frontend_config

    def input_kinds(self) -> tuple[InputKind, ...]:
        return (self.artifacts.spec.kind,)

    def backend_names(self) -> list[str]:
        return self.artifacts.backend_names()

    def spec(self, kind: InputKind) -> InputSpec:
        return self.artifacts.spec

    def open(self, name: str, kind: InputKind, device: str, threads: int | None) -> Backend:
        return self.artifacts.open(name, device, threads)

    def unavailable(self, name: str, device: str) -> str | None:
        return self.artifacts.unavailable(name, device)

    def describe(self) -> dict:
        return {**super().describe(), "artifacts": self.artifacts.artifact_names(), "input": self.artifacts.spec.kind}


class CheckpointSource(BenchSource):
    type = "checkpoint"

    def __init__(self, path: Path, options: LoadOptions | None = None):
        self.path = Path(path)
        self.options = options or LoadOptions()
        self.checkpoint = load_checkpoint(path, self.options)
        self.config = self.checkpoint.config
        self.frontend = self.checkpoint.frontend

    def input_kinds(self) -> tuple[InputKind, ...]:
        return INPUT_KINDS

    def backend_names(self) -> list[str]:
        return registry.reference_backends()

    def spec(self, kind: InputKind) -> InputSpec:
        c = self.config
        return InputSpec(kind, self.frontend.sample_rate, c.target_length, c.num_mel_bins)

    def open(self, name: str, kind: InputKind, device: str, threads: int | None) -> Backend:
        if registry.get(name).runs_artifact:
            raise InputError(f"backend {name!r} needs an exported artifact directory; a checkpoint runs PyTorch only")
        model = self.checkpoint.build_model()
        frontend = KaldiFbank(self.frontend) if kind == "waveform" else None
        return open_pytorch_backend(name, model, frontend, spec_for(frontend, model, self.frontend.sample_rate), device)


def open_source(path: str | Path, options: LoadOptions | None = None) -> BenchSource:
    """An artifact directory (it has a manifest.json) or any checkpoint ``load_checkpoint`` reads."""
    path = Path(path)
    if (path / "manifest.json").is_file():
        return ArtifactSource(path)
    return CheckpointSource(path, options)


def options_to_dict(options: LoadOptions | None) -> dict:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(options or LoadOptions()).items()}
