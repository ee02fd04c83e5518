"""An exported artifact directory: its manifest, its reference weights, and a backend per artifact.

Everything is read from ``manifest.json`` (nothing is guessed from file names) and every file's
sha256 is checked before it is loaded.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import torch

from .checkpoints import Checkpoint, load_checkpoint
from .errors import InputError, UnavailableError
from .export.manifest import find_artifact, output_names, read_manifest, verify_artifact
from .frontend import FrontEndConfig, KaldiFbank
from .pipeline import Classifier
from .runtime import registry
from .runtime.base import EMBEDDING_NAME, Backend, InputSpec, no_embedding
from .runtime.pytorch import open_pytorch_backend


class ArtifactDir:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.manifest = read_manifest(self.path)

    @property
    def labels(self) -> list[str]:
        return list(self.manifest["labels"])

    @property
    def activation(self) -> str:
        return self.manifest["activation"]

    @cached_property
    def frontend_config(self) -> FrontEndConfig:
        return FrontEndConfig(**self.manifest["input"]["frontend"])

    @cached_property
    def spec(self) -> InputSpec:
        i = self.manifest["input"]
        return InputSpec(
            i["kind"],
            i["sample_rate"],
            i["num_frames"],
            i["num_mel_bins"],
            i.get("num_samples"),
            i["batch"]["min"],
            i["batch"]["max"],
        )

    @property
    def outputs(self) -> tuple[str, ...]:
        """The artifacts' graph outputs: ``("logits", "embedding")``, or ``("logits",)`` for a directory
        exported before embeddings (the manifest's ``outputs``)."""
        return tuple(output_names(self.manifest))

    def embedding_unavailable(self, name: str) -> str | None:
        """Why backend ``name`` cannot give embeddings here (an artifact exported before them), or ``None``.
        The PyTorch backends run the reference weights, which always can; a served model (``triton``)
        says so itself when opened (its config's outputs)."""
        entry = registry.get(name)
        if not entry.runs_artifact or EMBEDDING_NAME in self.outputs:
            return None
        return f"{self.path}: {no_embedding(name)}"

    def artifact_names(self) -> list[str]:
        return [a["name"] for a in self.manifest["artifacts"]]

    def artifact(self, name: str) -> dict | None:
        """The manifest entry of artifact ``name``, or ``None``."""
        return next((a for a in self.manifest["artifacts"] if a["name"] == name), None)

    def backend_names(self) -> list[str]:
        """Backends that can run this directory: its artifacts' (variants included) and the PyTorch ones."""
        have = self.artifact_names()
        variants = [n for n, e in registry.entries().items() if e.artifact and e.artifact in have]
        return [*have, *registry.reference_backends(), *variants, *registry.remote_backends()]

    def unavailable(self, name: str, device: str | torch.device) -> str | None:
        """Why backend ``name`` cannot run on ``device`` here, or ``None``."""
        entry = registry.get(name)
        return registry.unavailable(name, device, self.artifact(entry.artifact_name) if entry.runs_artifact else None)

    def reference_checkpoint(self) -> Checkpoint:
        ref = self.manifest.get("reference")
        if not ref:
            raise InputError(f"{self.path}: manifest has no reference weights")
        return load_checkpoint(self.path / ref["path"])

    def open(self, name: str, device: str | torch.device = "cpu", threads: int | None = None) -> Backend:
        """A backend by name: an artifact of the manifest or a PyTorch variant of the reference weights."""
        device = torch.device(device)
        if name not in self.backend_names():
            raise InputError(f"unknown backend {name!r}; this directory has: {', '.join(self.backend_names())}")
        entry = registry.get(name)
        wrong = registry.wrong_device(entry, device)
        if wrong:  # the runtime would otherwise quietly run where it can (OpenVINO: the CPU)
            raise UnavailableError(f"backend {name!r} {wrong}, not on {device}")
        # Named explicitly or chosen by default, a backend this CPU cannot run (bf16 without bf16
        # hardware, a package compiled for a wider ISA) is refused here, for every verb.
        reason = self.unavailable(name, device)
        if reason:
            raise UnavailableError(f"backend {name!r} cannot run here: {reason}")
        if entry.option("remote"):  # a served model of this directory (ast_deploy.runtime.triton)
            return registry.module(entry).open_remote(entry, self, device)
        if not entry.runs_artifact:
            ckpt = self.reference_checkpoint()
            model = ckpt.build_model()
            # A waveform artifact's reference takes the same padded windows; a fbank one, the features.
            frontend = KaldiFbank(ckpt.frontend) if self.spec.kind == "waveform" else None
            return open_pytorch_backend(name, model, frontend, self.spec, device)
        artifact = find_artifact(self.manifest, entry.artifact_name, self.path)
        if artifact["format"] != entry.format:  # the manifest says which runtime runs it, not the name
            raise InputError(f"{self.path}: artifact {name!r} has format {artifact['format']!r}, not {entry.format!r}")
        path = verify_artifact(self.path, artifact)
        backend = registry.module(entry).open_artifact(entry, path, self.spec, device, threads, artifact)
        backend.name, backend.precision = name, entry.precision_of(artifact)
        backend.outputs = self.outputs  # the manifest says which outputs the graph has
        return backend

    def default_backend(self, device: str | torch.device = "cpu") -> str:
        """The best backend this directory offers on ``device`` (registry ranks), PyTorch as the fallback."""
        offered = self.backend_names()
        return registry.preferred(device, offered, {a["name"]: a for a in self.manifest["artifacts"]})


def open_classifier(path: str | Path, backend: str | None = None, device: str = "cpu") -> Classifier:
    artifacts = ArtifactDir(path)
    name = backend or artifacts.default_backend(device)
    runtime = artifacts.open(name, device)
    return Classifier(runtime, artifacts.frontend_config, artifacts.labels, artifacts.activation)


__all__ = ["ArtifactDir", "open_classifier", "read_manifest"]
