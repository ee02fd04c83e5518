"""ast-deploy: the Audio Spectrogram Transformer from training to production.

>>> import ast_deploy
>>> clf = ast_deploy.load("audioset_10_10_0.4593.pth")
>>> clf.predict(["dog.wav"], top_k=5)[0].top(5)
"""

from __future__ import annotations

from pathlib import Path

from .audio import load_audio, prepare_audio
from .checkpoints import Checkpoint, LoadOptions, load_checkpoint, save_checkpoint
from .errors import InputError
from .frontend import FrontEndConfig, KaldiFbank
from .model import ASTConfig, ASTModel
from .pipeline import Classifier, Prediction

__version__ = "0.1.0"


def load(
    path: str | Path, device: str = "cpu", options: LoadOptions | None = None, backend: str | None = None
) -> Classifier:
    """A ready :class:`Classifier` from a checkpoint (any format) or an exported artifact directory."""
    path = Path(path)
    if (path / "manifest.json").is_file():
        from .artifacts import open_classifier

        return open_classifier(path, backend=backend, device=device)
    from .runtime import registry
    from .runtime.pytorch import open_pytorch_backend, spec_for

    backend = backend or "pytorch"
    if registry.get(backend).runs_artifact:
        raise InputError(
            f"backend {backend!r} needs an exported artifact directory; a checkpoint runs "
            f"the PyTorch backends ({', '.join(registry.reference_backends())})"
        )
    ckpt = load_checkpoint(path, options)
    frontend = KaldiFbank(ckpt.frontend)
    model = ckpt.build_model()
    runtime = open_pytorch_backend(backend, model, frontend, spec_for(frontend, model), device)
    return Classifier(runtime, ckpt.frontend, ckpt.labels, ckpt.config.activation)


__all__ = [
    "ASTConfig",
    "ASTModel",
    "Checkpoint",
    "Classifier",
    "FrontEndConfig",
    "InputError",
    "KaldiFbank",
    "LoadOptions",
    "Prediction",
    "load",
    "load_audio",
    "load_checkpoint",
    "prepare_audio",
    "save_checkpoint",
]
