"""Runtime backends behind one interface (:class:`Backend`), shared by predict, parity and bench."""

from .base import Backend, InputKind, InputSpec
from .pytorch import PyTorchBackend

__all__ = ["Backend", "InputKind", "InputSpec", "PyTorchBackend"]
