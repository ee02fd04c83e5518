"""Where a benchmark ran: CPU, memory, GPU and driver, library versions, git commit, command line.

Everything here is cheap and never fails: a fact that cannot be read is ``None``.
"""

from __future__ import annotations

import datetime
import os
import platform
import re
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import torch

from ..cpu import cpu_info

REPO_ROOT = Path(__file__).resolve().parents[2]
# Distributions whose versions decide the figures (importlib.metadata names).
LIBRARIES = ("torch", "numpy", "onnxruntime", "onnxruntime-gpu", "onnx", "transformers", "tensorrt", "ast-deploy")
# CPU features that decide which matmul kernels run (AVX-512, VNNI/BF16 instructions, AMX tiles).
CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8")


def _run(*cmd: str) -> str | None:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def _cpuinfo() -> dict[str, str]:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    info: dict[str, str] = {}
    for line in text.split("\n\n", 1)[0].splitlines():  # the first processor is enough
        key, _, value = line.partition(":")
        info.setdefault(key.strip(), value.strip())
    return info


def cpu() -> dict:
    info = _cpuinfo()
    flags = set(info.get("flags", "").split())
    physical = None
    try:
        import psutil

        physical = psutil.cpu_count(logical=False)
    except ImportError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        usable = os.cpu_count()
    return {
        "model": info.get("model name") or platform.processor() or platform.machine(),
        "vendor": info.get("vendor_id"),
        "architecture": platform.machine(),
        "logical_cores": os.cpu_count(),
        "physical_cores": physical,
        "usable_cores": usable,
        "flags": [f for f in CPU_FLAGS if f in flags] if flags else None,
        # The class decides the kernels (and so the figures): in the machine's name, results never mix.
        "isa": cpu_info().isa_class,
    }


def memory_gib() -> float | None:
    try:
        import psutil

        return round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        return None


def gpus() -> list[dict]:
    if not torch.cuda.is_available():
        return []
    driver = _run("nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader")
    out = []
    for i in range(torch.cuda.device_count()):
        p = torch.cuda.get_device_properties(i)
        out.append(
            {
                "index": i,
                "name": p.name,
                "memory_gib": round(p.total_memory / 2**30, 1),
                "compute_capability": f"{p.major}.{p.minor}",
                "multiprocessors": p.multi_processor_count,
                "driver": driver.splitlines()[0].strip() if driver else None,
            }
        )
    return out


def libraries() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    versions["torch"] = torch.__version__  # the imported one (a local build may differ from metadata)
    versions["cuda"] = torch.version.cuda
    versions["cudnn"] = str(torch.backends.cudnn.version()) if torch.cuda.is_available() else None
    onednn = re.search(r"(?:oneDNN|MKL-DNN) v([\w.]+)", torch.__config__.show())
    versions["onednn"] = onednn.group(1) if onednn else None
    return versions


def onnxruntime_providers() -> list[str] | None:
    try:
        import onnxruntime
    except ImportError:
        return None
    return list(onnxruntime.get_available_providers())


def git() -> dict:
    commit = _run("git", "-C", str(REPO_ROOT), "rev-parse", "HEAD")
    if not commit:
        return {"commit": None, "dirty": None}
    status = _run("git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def collect(argv: list[str] | None = None) -> dict:
    """The environment block of a result document."""
    argv = sys.argv if argv is None else argv
    return {
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": shlex.join([Path(argv[0]).name, *argv[1:]]) if argv else "",
        "cpu": cpu(),
        "memory_gib": memory_gib(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "libraries": libraries(),
        "onnxruntime_providers": onnxruntime_providers(),
        "torch_threads": torch.get_num_threads(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "gpus": gpus(),
        "git": git(),
    }


def machine_name(environment: dict, device: str = "cpu") -> str:
    """A file-name-safe machine name: the GPU model for CUDA runs, else the CPU model, its ISA class
    (:mod:`ast_deploy.cpu`: the same model name covers CPUs with and without AVX-512) and cores."""
    if torch.device(device).type == "cuda" and environment["gpus"]:
        name = environment["gpus"][0]["name"]
    else:
        c = environment["cpu"]
        isa = c.get("isa") if c.get("isa") not in (None, "other") else ""
        name = f"{c['model']} {isa} {c['usable_cores'] or c['logical_cores']}c"
    for noise in (r"\(R\)", r"\(TM\)", r"\bCPU\b", r"\bProcessor\b", r"@.*?(?=\s\d+c$|$)", r"\b\d+-Core\b"):
        name = re.sub(noise, " ", name, flags=re.IGNORECASE)
    name = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return name or "unknown-machine"
