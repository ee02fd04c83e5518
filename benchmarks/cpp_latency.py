"""Batch-1 latency of the C++ host (``ast_classify --bench``) beside the Python runtime, on one
exported artifact directory.

    python benchmarks/cpp_latency.py ARTIFACT_DIR [--iters 100] [--backend torchscript]
        [--threads 2] [--out benchmarks/results/MACHINE/cpp_torchscript_ast_base] [--no-python]

Runs the host built from ``cpp/`` (default ``build/cpp/ast_classify``; build it with the
README's commands or ``pytest tests/test_cpp.py``), then the same artifact through ``ast-deploy``'s
Python backend of the same name (``ast_deploy.bench``, a fresh process, the same thread count and
number of calls). Both time one graph call on one window (tensors in, logits out) after warm-up;
percentiles interpolate linearly between ranks, as numpy's default. Writes ``OUT.json`` (both
reports plus the environment and the model) and ``OUT.md`` (a table beside the Python figures).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from ast_deploy.bench import Timing, make_plan, run
from ast_deploy.bench.environment import collect, machine_name
from ast_deploy.export.manifest import artifact_bytes, primary_file, read_manifest
from ast_deploy.fileio import atomic_file, write_json

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_HOST = REPO_ROOT / "build" / "cpp" / "ast_classify"


def model_info(manifest: dict, backend: str) -> dict:
    model, spec = manifest.get("model", {}), manifest.get("input", {})
    artifact = next((a for a in manifest.get("artifacts", []) if a.get("name") == backend), {})
    keys = ("embed_dim", "depth", "num_heads", "target_length", "fstride", "tstride", "num_labels")
    return {
        **{k: model.get(k) for k in keys},
        "input": spec.get("kind"),
        "window_seconds": (spec.get("num_samples") or 0) / (spec.get("sample_rate") or 1),
        "artifact": primary_file(artifact) if artifact else None,
        "artifact_bytes": artifact_bytes(artifact) if artifact else None,
        "precision": artifact.get("precision"),
        "source": manifest.get("source", {}).get("path"),
    }


def run_cpp(args: argparse.Namespace) -> tuple[list[str], dict]:
    cmd = [str(args.host), str(args.artifact_dir), "--backend", args.backend, "--device", args.device]
    cmd += ["--bench", str(args.iters), "--warmup", str(args.warmup)]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    if args.wav:
        cmd.insert(2, str(args.wav))
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(proc.returncode)
    return cmd, json.loads(proc.stdout)


def run_python(args: argparse.Namespace) -> dict:
    """The same artifact, backend, batch, threads and call count through the Python runtime."""
    plan = make_plan(
        args.artifact_dir,
        backends=[args.backend],
        batch_sizes="1",
        device=args.device,
        threads=args.threads,
        timing=Timing(warmup=args.warmup, iters=args.iters, seconds=None),
        isolation="batch",
    )
    doc = run(plan, argv=[])
    row = doc["results"][0]
    if row["status"] != "ok":
        raise SystemExit(f"python {args.backend}: {row['reason']}")
    return row


def row_cells(label: str, threads: int | None, latency: dict, clips_per_s: float, rtf: float) -> str:
    stats = " | ".join(f"{latency[k]:.2f}" for k in ("min", "p50", "p90", "p99", "mean", "std"))
    return f"| {label} | 1 | {threads} | {stats} | {clips_per_s:.2f} | {rtf:.1f} |"


def to_markdown(report: dict) -> str:
    cpp, env, mod, py = report["cpp"], report["environment"], report["model"], report.get("python")
    cpu = env["cpu"]
    size = f"embed {mod['embed_dim']}, depth {mod['depth']}, {mod['target_length']} frames, {mod['num_labels']} labels"
    rows = [row_cells(f"C++ `ast_classify` {cpp['backend']}", cpp["threads"], cpp["latency_ms"],
                      cpp["throughput_clips_per_s"], cpp["real_time_factor"])]  # fmt: skip
    if py:
        rows.append(row_cells(f"Python `ast-deploy` {py['backend']}", py["threads"]["torch"], py["latency_ms"],
                              py["throughput_clips_per_s"], py["real_time_factor"]))  # fmt: skip
    lines = [
        f"# C++ host latency: {cpp['backend']} ({Path(cpp['model']).name})",
        "",
        f"`{Path(report['command'][0]).name} {' '.join(report['command'][1:])}` on a {mod['input']}-input "
        f"artifact ({size}; {mod['window_seconds']:.3f} s windows), batch 1, {report['created']}.",
        "",
        "| runtime | batch | threads | min ms | p50 ms | p90 ms | p99 ms | mean ms | std ms | clips/s | RTF |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
        "",
    ]
    if py:
        ratio = py["latency_ms"]["p50"] / cpp["latency_ms"]["p50"]
        lines += [
            f"p50 Python / C++ = {ratio:.3f}: the same graph in the same libtorch, so the gap is each host's "
            "call path (input construction, checks, the Python runtime's settings) and run-to-run noise.",
            "",
        ]
    lines += [
        f"Machine: {cpu['model']}, {cpu['usable_cores']} usable cores ({', '.join(cpu['flags'] or [])}), "
        f"{env['os']}; libtorch from torch {env['libraries']['torch']}; git {(env['git']['commit'] or '?')[:10]}. "
        f"C++ load time (manifest, sha256, model): {cpp['load_seconds']:.2f} s.",
        "",
        "Both time one graph call on one window (input tensors in, logits out) after warm-up; WAV decoding and "
        "windowing are not included. Percentiles interpolate linearly between ranks (numpy's default); std is "
        "the sample standard deviation; RTF is seconds of audio per second of compute.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("artifact_dir", type=Path)
    parser.add_argument("--iters", type=int, default=100, help="timed batch-1 calls (default 100)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed calls first (default 10)")
    parser.add_argument("--backend", default="torchscript", help="torchscript (default), aoti, aoti-int8, tensorrt")
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads (default: libtorch's)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--wav", type=Path, default=None, help="time the first window of this file (default: noise)")
    parser.add_argument("--host", type=Path, default=DEFAULT_HOST, help=f"ast_classify binary (default {DEFAULT_HOST})")
    parser.add_argument("--no-python", action="store_true", help="skip the Python runtime on the same artifact")
    parser.add_argument("--out", type=Path, default=None, help="OUT.json and OUT.md "
                        "(default benchmarks/results/MACHINE/cpp_BACKEND_DIRNAME)")  # fmt: skip
    args = parser.parse_args(argv)

    if not args.host.is_file():
        parser.error(f"{args.host}: no ast_classify binary (build cpp/ first, see the README)")
    if not (args.artifact_dir / "manifest.json").is_file():
        parser.error(f"{args.artifact_dir}: no manifest.json (not an artifact directory)")
    manifest = read_manifest(args.artifact_dir)

    cmd, cpp = run_cpp(args)
    python = None if args.no_python else run_python(args)
    env = collect(sys.argv if argv is None else [sys.argv[0], *argv])
    report = {
        "benchmark": "cpp_latency",
        "created": env["timestamp"],
        "command": cmd,
        "cpp": cpp,
        "python": python,
        "environment": env,
        "model": model_info(manifest, args.backend),
    }
    name = f"cpp_{args.backend}_{args.artifact_dir.resolve().name}"
    out = args.out or REPO_ROOT / "benchmarks" / "results" / machine_name(env, args.device) / name
    json_path, md_path = out.with_name(out.name + ".json"), out.with_name(out.name + ".md")
    write_json(json_path, report)
    with atomic_file(md_path) as f:
        f.write(to_markdown(report))
    shown = f"C++ p50 {cpp['latency_ms']['p50']:.2f} ms"
    if python:
        shown += f", Python p50 {python['latency_ms']['p50']:.2f} ms"
    print(f"{shown} -> {json_path}, {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
