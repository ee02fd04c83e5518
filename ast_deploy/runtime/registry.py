"""Every runtime backend by name: what it runs, where it can run, how to open it.

The export side has one module per artifact format (``ast_deploy/export/<format>.py``); the run side
mirrors it with one module per runtime (``ast_deploy/runtime/<runtime>.py``). Each runtime module
declares its backends as data, a tuple ``BACKENDS`` of :class:`BackendEntry`, and two functions:

- ``unavailable(entry, device, artifact=None) -> str | None``: why it cannot run here (a missing
  library, provider or device; an AOTInductor package compiled for another device), or ``None``;
- ``open_artifact(entry, path, spec, device, threads, artifact) -> Backend`` for backends that run
  an exported artifact (the PyTorch module opens the reference weights instead).

A backend's name is the artifact it runs (``onnx-int8``) or, for a variant that runs an artifact in
another way, its own name plus ``artifact=`` (``onnx-trt`` runs ``onnx-fp16`` in ONNX Runtime's
TensorRT provider). Everything else (``artifacts.py``, predict, parity, bench, the CLI's help and
choices, the side-by-side script, the tests) reads this registry; nothing lists backends by hand.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from functools import cache
from types import MappingProxyType, ModuleType
from typing import Any

import torch

from ..errors import InputError

# Runtime modules, in the order their backends are listed (help texts, bench's default order).
RUNTIME_MODULES = ("pytorch", "torchscript", "onnxruntime", "aoti", "openvino", "tensorrt", "triton")


@dataclass(frozen=True)
class BackendEntry:
    """One backend name and what it means at run time.

    ``format`` is the manifest format of the artifact it runs (``None``: the checkpoint's float32
    reference weights in PyTorch). ``precision`` is what its arithmetic is (for an artifact, the
    manifest's own ``precision`` is authoritative and equal to it). ``rank`` orders the default
    backend per device type (lower first; absent: never chosen by default). A key ``cpu:<class>``
    (a class of :data:`ast_deploy.cpu.ISA_CLASSES`) ranks it on that CPU class only, ahead of the
    plain ``cpu`` key: reduced precision is the default only where it was measured to be the fastest
    (``docs/cpus.md``), and only for an artifact whose parity passed. ``options`` is the variant's
    data for its runtime module.
    """

    name: str
    format: str | None
    precision: str
    artifact: str | None = None
    devices: tuple[str, ...] = ("cpu", "cuda")
    rank: MappingProxyType | dict = field(default_factory=dict)
    options: MappingProxyType | dict = field(default_factory=dict)
    runtime: str = ""  # the runtime module's name, filled in by the registry

    @property
    def runs_artifact(self) -> bool:
        return self.format is not None

    @property
    def artifact_name(self) -> str | None:
        """The manifest artifact this backend opens (``None`` for the PyTorch reference backends)."""
        return (self.artifact or self.name) if self.runs_artifact else None

    def option(self, key: str, default: Any = None) -> Any:
        return self.options.get(key, default)

    def rank_on(self, device_type: str, isa_class: str | None = None) -> int | None:
        """Its default rank on a device type (and CPU class), or ``None`` where it is never the default."""
        if device_type == "cpu" and isa_class and f"cpu:{isa_class}" in self.rank:
            return self.rank[f"cpu:{isa_class}"]
        return self.rank.get(device_type)

    def parity_record(self, artifact: dict | None) -> dict | None:
        """Its parity result in the manifest entry of the artifact it runs (a variant's under ``variants``)."""
        if not artifact:
            return None
        return artifact.get("variants", {}).get(self.name) if self.artifact else artifact.get("parity")

    def precision_of(self, artifact: dict) -> str:
        """What it computes in when it runs ``artifact``: a variant's own precision (openvino-bf16 runs
        the float32 IR in bf16), else the manifest's."""
        return self.precision if self.artifact else artifact["precision"]


@cache
def _modules() -> dict[str, ModuleType]:
    return {name: importlib.import_module(f"{__package__}.{name}") for name in RUNTIME_MODULES}


@cache
def entries() -> dict[str, BackendEntry]:
    """Every backend of every runtime module, by name, in listing order."""
    table: dict[str, BackendEntry] = {}
    for runtime, module in _modules().items():
        for entry in module.BACKENDS:
            if entry.name in table:
                raise RuntimeError(f"backend {entry.name!r} declared by both {table[entry.name].runtime} and {runtime}")
            table[entry.name] = BackendEntry(
                **{**entry.__dict__, "rank": MappingProxyType(dict(entry.rank)), "runtime": runtime}
            )
    return table


def names() -> list[str]:
    return list(entries())


def artifact_backends() -> list[str]:
    """Backends that run an exported artifact (every export format, plus variants such as ``onnx-trt``)."""
    return [n for n, e in entries().items() if e.runs_artifact]


def reference_backends() -> list[str]:
    """Backends that run a checkpoint's weights in PyTorch (no export needed)."""
    return [n for n, e in entries().items() if not e.runs_artifact and not e.option("remote")]


def remote_backends() -> list[str]:
    """Backends whose model runs in a server (``triton``): neither an artifact nor reference weights here."""
    return [n for n, e in entries().items() if e.option("remote")]


def get(name: str) -> BackendEntry:
    try:
        return entries()[name]
    except KeyError:
        raise InputError(f"unknown backend {name!r}; known: {', '.join(entries())}") from None


def module(entry: BackendEntry) -> ModuleType:
    return _modules()[entry.runtime]


def unavailable(name: str, device: str | torch.device, artifact: dict | None = None) -> str | None:
    """Why backend ``name`` cannot run on ``device`` here (``artifact``: its manifest entry), or ``None``."""
    entry = get(name)
    dev = torch.device(device)
    return wrong_device(entry, dev) or module(entry).unavailable(entry, dev, artifact)


def wrong_device(entry: BackendEntry, device: torch.device) -> str | None:
    """Why ``entry`` does not run on ``device``'s type, or ``None``."""
    if device.type in entry.devices:
        return None
    if entry.devices == ("cuda",):
        return "runs on an NVIDIA GPU only (use --device cuda)"
    return f"runs on {' or '.join(entry.devices)} only"


def preferred(device: str | torch.device, offered: list[str], artifacts: dict[str, dict] | None = None) -> str:
    """The default backend among ``offered`` on ``device``: the best-ranked one on this device (and CPU class)
    that can run here; a reduced-precision one only if its parity passed (``artifacts``: manifest entries)."""
    from ..cpu import cpu_info

    kind = torch.device(device).type
    isa = cpu_info().isa_class if kind == "cpu" else None
    ranked = sorted((rank, n) for n in offered if (rank := get(n).rank_on(kind, isa)) is not None)
    for _, name in ranked:
        entry = get(name)
        artifact = (artifacts or {}).get(entry.artifact_name or "")
        if entry.precision != "fp32" and not (entry.parity_record(artifact) or {}).get("passed"):
            continue  # never verified (export --no-verify, an older manifest) or failed: not a default
        if unavailable(name, device, artifact) is None:
            return name
    return "pytorch"


__all__ = [
    "BackendEntry",
    "artifact_backends",
    "entries",
    "get",
    "names",
    "preferred",
    "reference_backends",
    "remote_backends",
    "unavailable",
]
