"""Throughput and latency of a model served by Triton beside in-process predict with the same backend.

    python benchmarks/serving.py ARTIFACT_DIR [--backend onnx] [--concurrency 1,4,16]
        [--requests 32] [--threads 2] [--instances 1] [--queue-delay-us 2000]
        [--protocol grpc] [--out benchmarks/results/MACHINE/serving_BACKEND_DIRNAME]

Served: the artifact backend runs in the bundled ``tritonserver`` (python-backend model written by
``ast-deploy triton``, dynamic batching on) on 127.0.0.1; C client threads each send REQUESTS
single-window requests back to back (one window = one clip of the model's length), so the
dynamic batcher sees up to C requests at once. Latency is a request's round trip; throughput is
clips over the wall time of the level. The server's metrics give the executions, hence the mean
batch the batcher formed.

In-process: the same backend, opened in this process with the same thread count, runs what local
predict runs for C windows at once: one batched call of C windows. Latency is that call (every
clip of a batch waits for the whole batch); throughput is clips per second.

``kept`` = served / in-process throughput at each concurrency (the goal: >= 0.8 at 16). Both run
in the same invocation on the same machine, one after the other. Writes OUT.json, OUT.md and
OUT.png (throughput and p99 latency against concurrency).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

from ast_deploy.artifacts import ArtifactDir
from ast_deploy.bench import report as bench_report
from ast_deploy.bench.environment import collect, machine_name
from ast_deploy.runtime.triton import TritonClient
from ast_deploy.serving.repository import RepositoryOptions, python_model_name, write_repository
from ast_deploy.serving.server import TritonServer

REPO_ROOT = Path(__file__).resolve().parents[1]


def percentiles(ms: list[float]) -> dict:
    a = np.asarray(ms)
    return {"p50": float(np.percentile(a, 50)), "p99": float(np.percentile(a, 99)), "mean": float(a.mean())}


def window_pool(spec, count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Speech-level noise windows, full length, the same for both modes."""
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((count, spec.num_samples)) * 0.1).astype(np.float32)
    return x, np.full(count, spec.num_samples, dtype=np.int64)


def in_process(backend, pool, concurrency: int, requests: int, warmup: int) -> dict:
    """One batched call of ``concurrency`` windows per step, ``requests`` steps (as predict batches)."""
    x, n = pool
    rows = torch.from_numpy(x[:concurrency]), torch.from_numpy(n[:concurrency])
    for _ in range(warmup):
        backend(*rows)
    times = []
    start = time.perf_counter()
    for _ in range(requests):
        t = time.perf_counter()
        backend(*rows)
        times.append((time.perf_counter() - t) * 1e3)
    wall = time.perf_counter() - start
    clips = requests * concurrency
    return {
        "mode": "in-process",
        "concurrency": concurrency,
        "clips": clips,
        "seconds": wall,
        "clips_per_s": clips / wall,
        "latency_ms": percentiles(times),
        "batch": concurrency,
    }


def served(server: TritonServer, url: str, model: str, pool, concurrency: int, requests: int, warmup: int) -> dict:
    """``concurrency`` client threads, ``requests`` single-window requests each (bounded)."""
    x, n = pool
    clients = [TritonClient(url, model) for _ in range(concurrency)]
    for c in clients:
        for _ in range(warmup):
            c.infer({"waveform": x[:1], "num_samples": n[:1, None]}, ("logits",))
    latencies: list[list[float]] = [[] for _ in clients]
    errors: list[str] = []
    barrier = threading.Barrier(concurrency + 1)

    def loop(i: int) -> None:
        client, out = clients[i], latencies[i]
        barrier.wait()
        try:
            for r in range(requests):
                j = (i * requests + r) % len(x)
                t = time.perf_counter()
                client.infer({"waveform": x[j : j + 1], "num_samples": n[j : j + 1, None]}, ("logits",))
                out.append((time.perf_counter() - t) * 1e3)
        except Exception as e:
            errors.append(repr(e))

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(concurrency)]
    for t in threads:
        t.start()
    before = server.metrics()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    after = server.metrics()
    for c in clients:
        c.close()
    if errors:
        raise RuntimeError(f"{len(errors)} client errors, first: {errors[0]}")
    done = {k: after[k][model] - before[k][model] for k in ("nv_inference_request_success", "nv_inference_exec_count")}
    clips = concurrency * requests
    return {
        "mode": "served",
        "concurrency": concurrency,
        "clips": clips,
        "seconds": wall,
        "clips_per_s": clips / wall,
        "latency_ms": percentiles([v for out in latencies for v in out]),
        "requests": done["nv_inference_request_success"],
        "executions": done["nv_inference_exec_count"],
        "batch": done["nv_inference_request_success"] / max(1.0, done["nv_inference_exec_count"]),
    }


def to_markdown(report: dict) -> str:
    s = report["settings"]
    lines = [
        f"# Serving: `{report['backend']}` in Triton vs in-process ({report['machine']})",
        "",
        f"{report['model']['window_seconds']:.2f} s windows; {s['requests']} steps per level; "
        f"{s['threads']} intra-op threads; {s['instances']} instance(s); queue delay {s['queue_delay_us']} µs; "
        f"{s['protocol']} client threads on the same machine.",
        "",
        "| concurrency | mode | clips/s | p50 ms | p99 ms | mean batch | kept |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in report["rows"]:
        kept = report["kept"].get(str(row["concurrency"])) if row["mode"] == "served" else None
        lines.append(
            f"| {row['concurrency']} | {row['mode']} | {row['clips_per_s']:.1f} | {row['latency_ms']['p50']:.2f} | "
            f"{row['latency_ms']['p99']:.2f} | {row['batch']:.1f} | {'' if kept is None else f'{kept:.0%}'} |"
        )
    goal = report["kept"].get("16")
    if goal is not None:
        verdict = "met" if goal >= 0.8 else "NOT met"
        lines += [
            "",
            f"Goal (served keeps >= 80 % of in-process throughput at concurrency 16): **{verdict}** ({goal:.0%}).",
        ]
    return "\n".join(lines) + "\n"


def plot(report: dict, path: Path) -> None:
    plt = bench_report.pyplot()

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    for mode in ("in-process", "served"):
        rows = [r for r in report["rows"] if r["mode"] == mode]
        c = [r["concurrency"] for r in rows]
        a.plot(c, [r["clips_per_s"] for r in rows], marker="o", label=mode)
        b.plot(c, [r["latency_ms"]["p99"] for r in rows], marker="o", label=mode)
    for ax, title in ((a, "throughput (clips/s)"), (b, "p99 latency (ms)")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("concurrency")
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle(f"{report['backend']}: Triton (dynamic batching) vs in-process, {report['machine']}")
    fig.tight_layout()
    bench_report.save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("artifact_dir", type=Path)
    parser.add_argument("--backend", default=None, help="artifact backend (default: the best on the CPU)")
    parser.add_argument("--concurrency", default="1,4,16", help="comma-separated client counts (default 1,4,16)")
    parser.add_argument("--requests", type=int, default=32, help="requests per client per level (default 32)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed requests per client first (default 3)")
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads, both modes (default: cores)")
    parser.add_argument("--instances", type=int, default=1, help="server model instances (default 1)")
    parser.add_argument("--queue-delay-us", type=int, default=2000, help="dynamic batcher delay (default 2000)")
    parser.add_argument("--protocol", choices=("grpc", "http"), default="grpc")
    parser.add_argument("--out", type=Path, default=None, help="OUT.json/.md/.png (default under benchmarks/results)")
    args = parser.parse_args(argv)

    artifacts = ArtifactDir(args.artifact_dir)
    if artifacts.spec.kind != "waveform":
        parser.error("the serving benchmark sends waveform windows: export with --input waveform")
    backend_name = args.backend or artifacts.default_backend("cpu")
    levels = [int(c) for c in args.concurrency.split(",")]
    spec = artifacts.spec
    if spec.max_batch is not None and max(levels) > spec.max_batch:
        parser.error(f"concurrency {max(levels)} > the export's batch max {spec.max_batch}")
    threads = args.threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    pool = window_pool(spec, max(64, max(levels)))
    rows = []

    work = Path(tempfile.mkdtemp(prefix="ast-deploy-serving-bench-"))
    options = RepositoryOptions(
        native=(),
        python=(backend_name,),
        threads=threads,
        instances=args.instances,
        queue_delay_us=args.queue_delay_us,
        preferred=tuple(levels),
    )
    model = python_model_name(backend_name)
    backend = artifacts.open(backend_name, "cpu", threads)
    try:
        write_repository(args.artifact_dir, work / "repo", options)
        with TritonServer(work / "repo") as server:
            url = server.grpc_url if args.protocol == "grpc" else server.http_url
            # the two modes alternate per level, so that drift of a shared machine hits both alike
            for c in levels:
                rows.append(in_process(backend, pool, c, args.requests, args.warmup))
                rows.append(served(server, url, model, pool, c, args.requests, args.warmup))
                print(
                    f"c={c}: in-process {rows[-2]['clips_per_s']:.1f} clips/s, served {rows[-1]['clips_per_s']:.1f} "
                    f"clips/s (mean batch {rows[-1]['batch']:.1f})",
                    flush=True,
                )
    finally:
        backend.close()
        shutil.rmtree(work, ignore_errors=True)
    rows.sort(key=lambda r: (r["mode"] != "in-process", r["concurrency"]))

    env = collect(sys.argv if argv is None else [sys.argv[0], *argv])
    speed = {(r["mode"], r["concurrency"]): r["clips_per_s"] for r in rows}
    manifest = artifacts.manifest
    report = {
        "benchmark": "serving",
        "created": env["timestamp"],
        "backend": backend_name,
        "machine": machine_name(env),
        "model": {
            **{k: manifest["model"].get(k) for k in ("embed_dim", "depth", "num_heads", "target_length", "num_labels")},
            "window_seconds": spec.num_samples / spec.sample_rate,
            "source": manifest.get("source", {}).get("path"),
        },
        "settings": {
            "requests": args.requests,
            "warmup": args.warmup,
            "threads": threads,
            "instances": args.instances,
            "queue_delay_us": args.queue_delay_us,
            "protocol": args.protocol,
            "concurrency": levels,
        },
        "rows": rows,
        "kept": {str(c): speed[("served", c)] / speed[("in-process", c)] for c in levels},
        "environment": env,
    }
    name = f"serving_{backend_name}_{args.artifact_dir.resolve().name}"
    out = args.out or REPO_ROOT / "benchmarks" / "results" / report["machine"] / name
    paths = bench_report.write_outputs(out, report, to_markdown(report), plot)
    print(to_markdown(report))
    print(" ".join(map(str, paths)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
