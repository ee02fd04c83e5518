"""An exported artifact directory: its manifest, its reference weights, and a backend per artifact.

Everything is read from ``manifest.json`` (nothing is guessed from file names) and every file's
sha256 is checked before it is loaded.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import torch

from .checkpoints import Checkpoint, load_checkpoint
from .errors import InputError
from .export.manifest import find_artifact, read_manifest, verify_artifact
from .frontend import FrontEndConfig, KaldiFbank
from .pipeline import Classifier
from .runtime.base import Backend, InputSpec
from .runtime.pytorch import PYTORCH_BACKENDS, open_pytorch_backend

PREFERRED = {
    "cuda": ("tensorrt", "onnx-fp16", "torchscript", "aoti", "pytorch"),
    "cpu": ("onnx", "torchscript", "aoti", "pytorch"),
}


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

    def artifact_names(self) -> list[str]:
        return [a["name"] for a in self.manifest["artifacts"]]

    def backend_names(self) -> list[str]:
        names = [*self.artifact_names(), *PYTORCH_BACKENDS]
        if "onnx-fp16" in names:  # the FP16 ONNX in ONNX Runtime's TensorRT provider
            names.append("onnx-trt")
        return names

    def reference_checkpoint(self) -> Checkpoint:
        ref = self.manifest.get("reference")
        if not ref:
            raise InputError(f"{self.path}: manifest has no reference weights")
        return load_checkpoint(self.path / ref["path"])

    def open(self, name: str, device: str | torch.device = "cpu", threads: int | None = None) -> Backend:
        """A backend by name: an artifact of the manifest or a PyTorch variant of the reference weights."""
        device = torch.device(device)
        if name in PYTORCH_BACKENDS:
            ckpt = self.reference_checkpoint()
            model = ckpt.build_model()
            # A waveform artifact's reference takes the same padded windows; a fbank one, the features.
            frontend = KaldiFbank(ckpt.frontend) if self.spec.kind == "waveform" else None
            return open_pytorch_backend(name, model, frontend, self.spec, device)
        if name not in self.backend_names():
            raise InputError(f"unknown backend {name!r}; this directory has: {', '.join(self.backend_names())}")
        artifact = find_artifact(self.manifest, "onnx-fp16" if name == "onnx-trt" else name, self.path)
        path = verify_artifact(self.path, artifact)
        backend = self._open_artifact(name, artifact, path, device, threads)
        backend.name, backend.precision = name, artifact["precision"]
        return backend

    def _open_artifact(
        self, name: str, artifact: dict, path: Path, device: torch.device, threads: int | None
    ) -> Backend:
        fmt = artifact["format"]  # the runtime that runs it; the name only tells artifacts apart
        if fmt == "torchscript":
            from .runtime.torchscript import TorchScriptBackend

            return TorchScriptBackend(path, self.spec, device)
        if fmt == "aoti":
            from .runtime.aoti import AOTInductorBackend

            return AOTInductorBackend(path, self.spec, device, compiled_for=artifact.get("device", "cpu"))
        if fmt == "tensorrt":
            from .runtime.tensorrt import TensorRTBackend

            return TensorRTBackend(path, self.spec, device)
        if fmt == "onnx":
            from .runtime.onnxruntime import OnnxRuntimeBackend

            provider = "tensorrt" if name == "onnx-trt" else device.type
            return OnnxRuntimeBackend(path, self.spec, artifact["precision"], provider, threads, name=name)
        raise InputError(f"{self.path}: artifact {name!r} has unknown format {fmt!r}")

    def default_backend(self, device: str | torch.device = "cpu") -> str:
        kind = torch.device(device).type
        have = set(self.artifact_names())
        for name in PREFERRED[kind]:
            if name in have or name == "pytorch":
                if name == "tensorrt":
                    from .runtime.tensorrt import unavailable

                    if unavailable():
                        continue
                return name
        return "pytorch"


def open_classifier(path: str | Path, backend: str | None = None, device: str = "cpu") -> Classifier:
    artifacts = ArtifactDir(path)
    name = backend or artifacts.default_backend(device)
    runtime = artifacts.open(name, device)
    return Classifier(runtime, artifacts.frontend_config, artifacts.labels, artifacts.activation)


__all__ = ["ArtifactDir", "open_classifier", "read_manifest"]
