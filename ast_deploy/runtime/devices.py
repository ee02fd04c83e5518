"""Device checks shared by every verb that takes ``--device``."""

from __future__ import annotations

import torch

from ..errors import InputError


def check_device(device: str) -> torch.device:
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise InputError(f"--device {device!r} is not a device (use cpu or cuda)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"--device {device}: no CUDA device on this machine (torch {torch.__version__})")
    if dev.type not in ("cpu", "cuda"):
        raise InputError(f"--device {device}: only cpu and cuda are supported")
    return dev
