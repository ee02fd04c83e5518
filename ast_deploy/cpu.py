"""What this CPU can compute fast, and exactly: the facts that decide which CPU backends run, and how.

x86 servers differ in the instructions that matter for inference, and the differences are not only
speed. The CPU classes this project distinguishes, from least to most capable:

- ``avx2``: AVX2 + FMA, no int8 dot product, no bf16 (AMD Zen 2/3, Intel Haswell..Skylake client).
  Int8 GEMM kernels multiply u8 x s8 pairs with ``vpmaddubsw``, which sums each pair into a
  *saturating* int16: two products of 255 x 127 overflow it. An int8 model is only exact here if its
  weights have 7 bits (|w| <= 64) or one operand is widened first (u8u8 kernels).
- ``avx512``: AVX-512 without VNNI (Intel Skylake-SP): the same saturating int8 path, wider.
- ``avx512-vnni``: AVX-512 VNNI (``vpdpbusd``: u8 x s8 summed into int32, no saturation), no bf16
  (Intel Cascade Lake, Ice Lake).
- ``avx512-bf16``: VNNI and AVX512-BF16 (AMD Zen 4/5, Intel Cooper Lake).
- ``amx``: AMX tiles for int8 and bf16 (Intel Sapphire Rapids and later).

(``avx2-vnni``: AVX-VNNI without AVX-512, Intel Alder Lake and later client parts: int8 dot products
without saturation on 256-bit vectors.)

The class can be *capped* to exercise another class's code paths on a bigger CPU: oneDNN (inside
PyTorch and OpenVINO's CPU plugin) reads ``ONEDNN_MAX_CPU_ISA``, PyTorch's own kernels read
``ATEN_CPU_CAPABILITY``. Both caps are honoured here, so that a capped process also *refuses* what the
capped CPU could not run (OpenVINO itself still reports bf16 under ``ONEDNN_MAX_CPU_ISA=AVX2``).
Caps are for correctness; timings under a cap are not another CPU's timings.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from functools import cache
from pathlib import Path

# Ordered from least to most capable; each class implies the ones before it (but avx2-vnni, see below).
ISA_CLASSES = ("avx2", "avx2-vnni", "avx512", "avx512-vnni", "avx512-bf16", "amx")
AVX512 = frozenset({"avx512f", "avx512dq", "avx512bw", "avx512vl"})
# Flags a cap removes, by the ISA named in ONEDNN_MAX_CPU_ISA (oneDNN's names) or ATEN_CPU_CAPABILITY.
_ABOVE_AVX2 = frozenset({"avx_vnni", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8"})
_ABOVE_AVX512_BF16 = frozenset({"avx512_fp16", "amx_tile", "amx_bf16", "amx_int8"})
ONEDNN_CAPS: dict[str, frozenset[str]] = {
    "SSE41": frozenset({"avx", "avx2", "fma"}) | AVX512 | _ABOVE_AVX2,
    "AVX": frozenset({"avx2", "fma"}) | AVX512 | _ABOVE_AVX2,
    "AVX2": AVX512 | _ABOVE_AVX2,
    "AVX2_VNNI": AVX512 | (_ABOVE_AVX2 - {"avx_vnni"}),
    "AVX2_VNNI_2": AVX512 | (_ABOVE_AVX2 - {"avx_vnni"}),
    "AVX512_CORE": _ABOVE_AVX2,
    "AVX512_CORE_VNNI": _ABOVE_AVX2 - {"avx_vnni", "avx512_vnni"},
    "AVX512_CORE_BF16": _ABOVE_AVX512_BF16,
    "AVX512_CORE_FP16": _ABOVE_AVX512_BF16 - {"avx512_fp16"},
    "AVX512_CORE_AMX": frozenset(),
    "AVX512_CORE_AMX_FP16": frozenset(),
    "AVX10_1_512": _ABOVE_AVX512_BF16 - {"avx512_fp16"},
    "AVX10_1_512_AMX": frozenset(),
    "AVX10_1_512_AMX_FP16": frozenset(),
    "AVX10_2_512": frozenset(),
    "AVX10_2_512_AMX_2": frozenset(),
    "DEFAULT": frozenset(),
    "ALL": frozenset(),
}
ATEN_CAPS: dict[str, frozenset[str]] = {
    "default": AVX512 | _ABOVE_AVX2 | {"avx2", "fma"},
    "avx2": AVX512 | _ABOVE_AVX2,
    "avx512": frozenset(),
}
CAP_VARIABLES = ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")
# oneDNN's name for the cap that reproduces each class (tests run a subprocess per class with it).
ONEDNN_CAP_OF_CLASS = {
    "avx2": "AVX2",
    "avx2-vnni": "AVX2_VNNI",
    "avx512": "AVX512_CORE",
    "avx512-vnni": "AVX512_CORE_VNNI",
    "avx512-bf16": "AVX512_CORE_BF16",
    "amx": "AVX512_CORE_AMX",
}


@dataclass(frozen=True)
class CpuInfo:
    """The CPU as this process may use it: its flags less whatever a cap in the environment removes."""

    model: str
    architecture: str
    hardware_flags: frozenset[str]
    flags: frozenset[str]  # after the caps
    caps: tuple[tuple[str, str], ...] = ()  # (variable, value) of the caps in effect

    @property
    def x86(self) -> bool:
        return self.architecture.lower() in ("x86_64", "amd64", "i386", "i686")

    @property
    def avx512(self) -> bool:
        return self.flags >= AVX512

    @property
    def int8_dot(self) -> bool:
        """Int8 dot products that accumulate in int32 without saturating (VNNI or AMX-INT8)."""
        return bool({"avx512_vnni", "avx_vnni", "amx_int8"} & self.flags)

    @property
    def bf16(self) -> bool:
        """bf16 arithmetic in hardware (AVX512-BF16 or AMX-BF16); elsewhere it would be emulated."""
        return bool({"avx512_bf16", "amx_bf16"} & self.flags)

    @property
    def amx(self) -> bool:
        return {"amx_tile", "amx_int8", "amx_bf16"} <= self.flags

    @property
    def isa_class(self) -> str:
        """One of :data:`ISA_CLASSES`; ``other`` for a CPU below AVX2 or not x86."""
        if not self.x86 or not {"avx2", "fma"} <= self.flags:
            return "other"
        if self.avx512:
            if self.amx:
                return "amx"
            if "avx512_bf16" in self.flags and "avx512_vnni" in self.flags:
                return "avx512-bf16"
            return "avx512-vnni" if "avx512_vnni" in self.flags else "avx512"
        return "avx2-vnni" if "avx_vnni" in self.flags else "avx2"

    def describe(self) -> str:
        """``Intel(R) Xeon(R) Processor (amx)``, with the caps in effect."""
        caps = ", ".join(f"{k}={v}" for k, v in self.caps)
        return f"{self.model} ({self.isa_class}{', capped by ' + caps if caps else ''})"

    def to_dict(self) -> dict:
        """What a manifest records of the CPU an artifact was validated on."""
        notable = sorted(f for f in self.flags if f in NOTABLE_FLAGS)
        return {
            "model": self.model,
            "isa": self.isa_class,
            "flags": notable,
            **({"caps": dict(self.caps)} if self.caps else {}),
        }


# The flags that decide kernels, recorded in manifests and benchmark results.
NOTABLE_FLAGS = (
    "avx2", "fma", "avx_vnni", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "avx512_fp16",
    "amx_tile", "amx_bf16", "amx_int8",
)  # fmt: skip


def _proc_cpuinfo() -> tuple[str, frozenset[str]]:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return platform.processor() or platform.machine(), frozenset()
    model, flags = "", frozenset()
    for line in text.split("\n\n", 1)[0].splitlines():  # the first processor is enough
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not model:
            model = value.strip()
        elif key == "flags" and not flags:
            flags = frozenset(value.split())
    return model or platform.processor() or platform.machine(), flags


def capped_flags(flags: frozenset[str], environ: dict[str, str] | os._Environ) -> tuple[frozenset, tuple]:
    """``flags`` less what ``ONEDNN_MAX_CPU_ISA`` / ``ATEN_CPU_CAPABILITY`` in ``environ`` remove."""
    removed: set[str] = set()
    caps = []
    onednn = environ.get("ONEDNN_MAX_CPU_ISA", "").strip().upper()
    if onednn and onednn in ONEDNN_CAPS:
        removed |= ONEDNN_CAPS[onednn]
        if ONEDNN_CAPS[onednn]:
            caps.append(("ONEDNN_MAX_CPU_ISA", onednn))
    aten = environ.get("ATEN_CPU_CAPABILITY", "").strip().lower()
    if aten and aten in ATEN_CAPS and aten != "avx512":
        removed |= ATEN_CAPS[aten]
        caps.append(("ATEN_CPU_CAPABILITY", aten))
    return flags - removed, tuple(caps)


@cache
def cpu_info() -> CpuInfo:
    """This process's CPU (cached: the caps are read once, as oneDNN reads them once)."""
    model, hardware = _proc_cpuinfo()
    flags, caps = capped_flags(hardware, os.environ)
    return CpuInfo(model, platform.machine(), hardware, flags, caps)


def no_bf16(info: CpuInfo | None = None) -> str | None:
    """Why bf16 cannot run here at speed (it would be emulated in float32), or ``None``."""
    info = info or cpu_info()
    if info.bf16:
        return None
    return f"this CPU has no bf16 arithmetic (no avx512_bf16 or amx_bf16: {info.describe()})"


def no_int8_dot(info: CpuInfo | None = None) -> str | None:
    """Why int8 GEMMs without a saturating fallback of their own run far slower than float32 here, or ``None``.

    ``torch._int_mm`` (the ``aoti-int8`` and ``pytorch-int8`` backends) has no fast kernel without
    VNNI/AMX: on a 2-core AVX2 EPYC an AST-base call took about 75 s, 30x float32.
    """
    info = info or cpu_info()
    if info.int8_dot:
        return None
    return (
        "this CPU has no int8 dot product (VNNI or AMX-INT8): torch._int_mm falls back to a kernel "
        f"about 30x slower than float32 ({info.describe()})"
    )


# What the code of an AOTInductor package compiled for each of Inductor's vector ISAs executes.
INDUCTOR_ISA_FLAGS: dict[str, frozenset[str]] = {
    "avx2": frozenset({"avx2", "fma"}),
    "avx512": AVX512 | {"avx2", "fma"},
    "avx512_vnni": frozenset({"avx512_vnni"}),
    "amx_tile": frozenset({"amx_tile", "amx_bf16", "amx_int8"}),
    "neon": frozenset(),
    "asimd": frozenset(),
    "sve": frozenset(),
}


def missing_for_isa(compiled_isa: str, info: CpuInfo | None = None) -> list[str]:
    """CPU flags that code compiled for Inductor's ``compiled_isa`` (``"avx512 avx512_vnni amx_tile"``) needs
    and this CPU lacks."""
    info = info or cpu_info()
    needed: set[str] = set()
    for part in compiled_isa.split():
        needed |= INDUCTOR_ISA_FLAGS.get(part, frozenset())
    return sorted(needed - info.flags)


def cap_environment(isa_class: str) -> dict[str, str]:
    """The environment variables that make a process on a bigger CPU behave as ``isa_class``."""
    env = {"ONEDNN_MAX_CPU_ISA": ONEDNN_CAP_OF_CLASS[isa_class]}
    if not isa_class.startswith("avx512") and isa_class != "amx":
        env["ATEN_CPU_CAPABILITY"] = "avx2"
    return env


def reachable_classes(info: CpuInfo | None = None) -> list[str]:
    """The classes a process can run as by capping (this one's class and every class below it; a capped
    process reaches no further than its cap)."""
    info = info or cpu_info()
    return [c for c in ISA_CLASSES if _implies(info.flags, c)]


def _implies(flags: frozenset[str], isa_class: str) -> bool:
    need = {
        "avx2": {"avx2", "fma"},
        "avx2-vnni": {"avx2", "fma", "avx_vnni"},
        "avx512": {"avx2", "fma"} | AVX512,
        "avx512-vnni": {"avx2", "fma", "avx512_vnni"} | AVX512,
        "avx512-bf16": {"avx2", "fma", "avx512_vnni", "avx512_bf16"} | AVX512,
        "amx": {"avx2", "fma", "amx_tile", "amx_int8", "amx_bf16"} | AVX512,
    }[isa_class]
    return need <= flags


__all__ = [
    "ISA_CLASSES",
    "CpuInfo",
    "cap_environment",
    "capped_flags",
    "cpu_info",
    "missing_for_isa",
    "no_bf16",
    "no_int8_dot",
    "reachable_classes",
]
