"""Live tagging: per-hop latency (p50/p99) and real-time factor of ``clf.stream`` at several hops.

Audio arrives one hop at a time (what a live source delivers between two windows); each push
completes one window and its duration is that hop's latency. The real-time factor is compute time
over audio time. Measured against what users do instead (the authors' advice): keep a buffer of the
last window and run the offline ``predict`` on it every hop, in the same run. A hop runs in real
time when its p99 latency is below the hop.

    python benchmarks/streaming.py ARTIFACT_DIR_OR_CHECKPOINT [--backend NAME] [--hops 0.5,1,2.5]
        [--seconds 120] [--threads N] [--out benchmarks/results/<machine>/streaming]

Writes results.json, results.md and results.png (latency per hop) under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import ast_deploy  # noqa: E402
from ast_deploy.bench import environment, report  # noqa: E402
from ast_deploy.windows import hop_samples  # noqa: E402


def signal(seconds: float, rate: int) -> np.ndarray:
    """Tones and noise bursts: content does not change the cost, but keep it audio-like."""
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * rate)) / rate
    x = 0.2 * np.sin(2 * np.pi * 440 * t) * (np.sin(2 * np.pi * 0.1 * t) > 0) + 0.02 * rng.standard_normal(t.size)
    return x.astype(np.float32)


def percentiles(ms: list[float]) -> dict:
    a = np.asarray(ms)
    return {"p50": float(np.percentile(a, 50)), "p99": float(np.percentile(a, 99)), "mean": float(a.mean())}


def measure(clf, hop: float, x: np.ndarray) -> dict:
    rate, window = clf.sample_rate, clf.window
    step = hop_samples(hop, rate)  # the stream's hop
    # warm-up: one window through each path
    clf.stream(hop=hop).push(x[:window])
    clf.predict((x[:window], rate))

    stream, lat, compute = clf.stream(hop=hop), [], 0.0
    stream.push(x[: window - step])  # fill the first window but one hop: every later push completes one
    for i in range(window - step, len(x) - step + 1, step):
        begin = time.perf_counter()
        done = stream.push(x[i : i + step])
        took = time.perf_counter() - begin
        compute += took
        if done:
            lat.append(took * 1000)
    duration = (len(x) - (window - step)) / rate

    naive, naive_compute = [], 0.0  # re-run offline predict on the last window every hop
    for end in range(window, len(x) + 1, step):
        begin = time.perf_counter()
        clf.predict((x[end - window : end], rate))
        took = time.perf_counter() - begin
        naive_compute += took
        naive.append(took * 1000)
    stream_ms, naive_ms = percentiles(lat), percentiles(naive)
    return {
        "hop_s": hop,
        "windows": len(lat),
        "latency_ms": stream_ms,
        "rtf": compute / duration,
        "realtime": stream_ms["p99"] < hop * 1000,
        "naive_latency_ms": naive_ms,
        "naive_rtf": naive_compute / duration,
        "speedup_p50": naive_ms["p50"] / stream_ms["p50"],
    }


def markdown(doc: dict) -> str:
    lines = [
        f"# Streaming latency: {doc['model']} ({doc['backend']}, {doc['machine']}, {doc['threads']} threads)",
        "",
        f"Window {doc['window_s']:g} s; audio per hop arrives as one chunk; {doc['seconds']:g} s of audio per hop.",
        "Baseline: offline `predict` on a buffer of the last window every hop (the usual loop).",
        "",
        "| hop (s) | windows | p50 (ms) | p99 (ms) | real-time factor | real time | baseline p50 (ms) | baseline RTF | p50 ratio |",
        "| ---: | ---: | ---: | ---: | ---: | :---: | ---: | ---: | ---: |",
    ]
    for r in doc["rows"]:
        lines.append(
            f"| {r['hop_s']:g} | {r['windows']} | {r['latency_ms']['p50']:.1f} | {r['latency_ms']['p99']:.1f} "
            f"| {r['rtf']:.3f} | {'yes' if r['realtime'] else 'no'} | {r['naive_latency_ms']['p50']:.1f} "
            f"| {r['naive_rtf']:.3f} | {r['speedup_p50']:.2f}x |"
        )
    lines += ["", f"Command: `{doc['command']}`", ""]
    return "\n".join(lines)


def plot(doc: dict, path: Path) -> None:
    plt = report.pyplot()

    hops = [r["hop_s"] for r in doc["rows"]]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(hops, [r["latency_ms"]["p50"] for r in doc["rows"]], "o-", label="stream p50")
    ax.plot(hops, [r["latency_ms"]["p99"] for r in doc["rows"]], "o--", label="stream p99")
    ax.plot(hops, [r["naive_latency_ms"]["p50"] for r in doc["rows"]], "s:", label="predict on buffer p50")
    ax.plot(hops, [h * 1000 for h in hops], "k-", lw=0.8, label="real-time budget (= hop)")
    ax.set_xlabel("hop (s)")
    ax.set_ylabel("latency per hop (ms)")
    ax.set_yscale("log")
    ax.set_title(f"{doc['model']} ({doc['backend']}, {doc['machine']})")
    ax.legend()
    fig.tight_layout()
    report.save_figure(fig, path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", type=Path, help="artifact directory or checkpoint")
    p.add_argument("--backend", help="default: the directory's best CPU backend")
    p.add_argument("--hops", default="0.5,1,2.5", help="comma-separated hops in seconds")
    p.add_argument("--seconds", type=float, default=120.0, help="audio per hop measurement")
    p.add_argument("--threads", type=int, help="torch intra-op threads")
    p.add_argument("--out", type=Path, help="default benchmarks/results/<machine>/streaming")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    clf = ast_deploy.load(args.model, backend=args.backend)
    env = environment.collect(["benchmarks/streaming.py", *(sys.argv[1:] if argv is None else argv)])
    machine = environment.machine_name(env, "cpu")
    out = args.out or REPO / "benchmarks" / "results" / machine / "streaming"
    hops = [float(h) for h in args.hops.split(",")]
    x = signal(args.seconds + clf.window / clf.sample_rate, clf.sample_rate)
    rows = []
    for hop in hops:
        rows.append(measure(clf, hop, x))
        print(json.dumps(rows[-1]), file=sys.stderr)
    doc = {
        "model": str(args.model),
        "backend": clf.backend.name,
        "machine": machine,
        "threads": torch.get_num_threads(),
        "window_s": clf.window / clf.sample_rate,
        "seconds": args.seconds,
        "command": "python " + " ".join(["benchmarks/streaming.py", *(sys.argv[1:] if argv is None else argv)]),
        "environment": env,
        "rows": rows,
    }
    report.write_outputs(out / "results", doc, markdown(doc), plot)
    print(markdown(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
