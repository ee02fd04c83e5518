"""Batch-1 latency of the C++ host (``ast_classify --bench``) on an exported artifact directory.

    python benchmarks/cpp_latency.py ARTIFACT_DIR [--iters 100] [--backend torchscript]
        [--out benchmarks/results/cpp_torchscript_ast_base]

Runs the host built from ``cpp/`` (default ``build/cpp/ast_classify``; build it with the
README's commands or ``pytest tests/test_cpp.py``) and writes ``OUT.json`` (the host's report
plus the machine and the model) and ``OUT.md`` (a table to sit beside the Python figures).
The timed call is one graph call on one window (tensors in, logits out), after warm-up calls;
percentiles interpolate linearly between ranks, as numpy's default.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_HOST = REPO_ROOT / "build" / "cpp" / "ast_classify"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def physical_cores() -> int | None:
    try:
        import psutil
    except ImportError:
        return None
    return psutil.cpu_count(logical=False)


def machine_info() -> dict:
    try:
        torch_version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        torch_version = None
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        affinity = None
    return {
        "cpu": cpu_model(),
        "logical_cores": os.cpu_count(),
        "physical_cores": physical_cores(),
        "cores_available": affinity,
        "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch_version,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
    }


def model_info(artifact_dir: Path, backend: str) -> dict:
    manifest = json.loads((artifact_dir / "manifest.json").read_text())
    model = manifest.get("model", {})
    artifact = next((a for a in manifest.get("artifacts", []) if a.get("name") == backend), {})
    spec = manifest.get("input", {})
    return {
        "embed_dim": model.get("embed_dim"),
        "depth": model.get("depth"),
        "num_heads": model.get("num_heads"),
        "target_length": model.get("target_length"),
        "fstride": model.get("fstride"),
        "tstride": model.get("tstride"),
        "num_labels": model.get("num_labels"),
        "input": spec.get("kind"),
        "window_seconds": (spec.get("num_samples") or 0) / (spec.get("sample_rate") or 1),
        "artifact": artifact.get("file"),
        "artifact_bytes": artifact.get("bytes"),
        "precision": artifact.get("precision"),
        "source": manifest.get("source", {}).get("path"),
    }


def to_markdown(report: dict) -> str:
    r, m, mod = report["result"], report["machine"], report["model"]
    lat = r["latency_ms"]
    size = f"embed {mod['embed_dim']}, depth {mod['depth']}, {mod['target_length']} frames, {mod['num_labels']} labels"
    lines = [
        f"# C++ host latency: {r['backend']} ({Path(r['model']).name})",
        "",
        f"`ast_classify --bench {r['iters']} --warmup {r['warmup']}` on `{r['model']}` ({size}; "
        f"{mod['window_seconds']:.3f} s windows), batch 1, {r['threads']} intra-op threads, {report['created']}.",
        "",
        "| backend | batch | threads | min ms | p50 ms | p90 ms | p99 ms | mean ms | std ms | clips/s | RTF |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| C++ {r['backend']} | 1 | {r['threads']} | {lat['min']:.2f} | {lat['p50']:.2f} | {lat['p90']:.2f} "
        f"| {lat['p99']:.2f} | {lat['mean']:.2f} | {lat['std']:.2f} | {r['throughput_clips_per_s']:.2f} "
        f"| {r['real_time_factor']:.1f} |",
        "",
        f"Machine: {m['cpu']}, {m['logical_cores']} logical / {m['physical_cores']} physical cores "
        f"({m['cores_available']} available), load average {m['load_average']}, {m['platform']}; "
        f"libtorch from torch {m['torch']}. Load time (manifest, sha256, model): {r['load_seconds']:.2f} s.",
        "",
        "The timed call is one graph call on one window (input tensors in, logits out); WAV decoding and "
        "windowing are not included. Percentiles interpolate linearly between ranks (numpy's default); std "
        "is the sample standard deviation; RTF is seconds of audio per second of compute.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("artifact_dir", type=Path)
    parser.add_argument("--iters", type=int, default=100, help="timed batch-1 calls (default 100)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed calls first (default 10)")
    parser.add_argument("--backend", default="torchscript", help="torchscript (default), aoti or tensorrt")
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads (default: libtorch's)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--wav", type=Path, default=None, help="time the first window of this file (default: noise)")
    parser.add_argument("--host", type=Path, default=DEFAULT_HOST, help=f"ast_classify binary (default {DEFAULT_HOST})")
    parser.add_argument(
        "--out", type=Path, default=None, help="OUT.json and OUT.md (default benchmarks/results/cpp_BACKEND_DIRNAME)"
    )
    args = parser.parse_args(argv)

    if not args.host.is_file():
        parser.error(f"{args.host}: no ast_classify binary (build cpp/ first, see the README)")
    if not (args.artifact_dir / "manifest.json").is_file():
        parser.error(f"{args.artifact_dir}: no manifest.json (not an artifact directory)")
    cmd = [str(args.host), str(args.artifact_dir), "--backend", args.backend, "--device", args.device]
    cmd += ["--bench", str(args.iters), "--warmup", str(args.warmup)]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    if args.wav:
        cmd.insert(2, str(args.wav))
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        return proc.returncode

    report = {
        "benchmark": "cpp_latency",
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": cmd,
        "result": json.loads(proc.stdout),
        "machine": machine_info(),
        "model": model_info(args.artifact_dir, args.backend),
    }
    out = args.out or REPO_ROOT / "benchmarks" / "results" / f"cpp_{args.backend}_{args.artifact_dir.resolve().name}"
    out.parent.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out.with_name(out.name + ".json"), out.with_name(out.name + ".md")
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    md_path.write_text(to_markdown(report))
    lat = report["result"]["latency_ms"]
    print(f"p50 {lat['p50']:.2f} ms, p90 {lat['p90']:.2f} ms, mean {lat['mean']:.2f} ms -> {json_path}, {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
