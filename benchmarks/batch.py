"""``ast-deploy batch`` on this machine: Ray's overhead against predict's loop, actors, memory, listing.

1. Throughput on generated 10-s clips (one window each) with an AudioSet-shaped model
   (``ast-deploy init --size tiny --frames 1024``, 527 labels, random weights), same backend (pytorch):
   the in-process predict loop (``Classifier.predict`` over the files, model already loaded) against
   ``ast-deploy batch`` with one actor at the same thread count, at 2 and 1 threads; at batch size 1
   (the batching predict does for one-window files: the difference is Ray's) and at batch 8 (windows
   of several files in one call: what batch adds); then 2 actors at 1 thread each. Steady state is
   files/s after the first rows (actor start and model load excluded), as predict's loop excludes its load.
2. Memory: ``batch`` over 1,000 and over 10,000 short files (0.5 s) with the suite's tiny model: the
   driver's own peak RSS (``ast_deploy.bench.memory.LAUNCHER``: not floored by this script's) and the
   peak of the summed RSS of every process of the job (driver, local Ray, workers), sampled.
3. AST-base (``init --size base``, random weights, pytorch fp32): files per hour with 1 actor x 2 threads.
4. Listing: ``list_inputs`` over the 10,000-file folder, and the resume join and Arrow size for
   1,000,000 synthetic paths, to scale to 10 million.

    python benchmarks/batch.py [--files 80] [--rss-files 1000,10000] [--base-files 24] [--out DIR]

Writes results.json, results.md and results.png under ``--out``
(default ``benchmarks/results/<machine>/batch``). Takes about 15 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ast_deploy.bench import environment, memory, report  # noqa: E402

RATE = 16000
TINY_FIXTURE = REPO / "tests" / "fixtures" / "tiny_t100_f10t10.pth"

# The in-process predict loop, in its own process: the model opened as the actors open it.
PREDICT_LOOP = """
import json, sys, time
import torch
threads, model, listing, batch = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
torch.set_num_threads(threads)
from ast_deploy.batch.model import ModelSpec, open_model
files = open(listing).read().split()
t0 = time.perf_counter()
clf = open_model(ModelSpec(model, None, "cpu", None, threads))
t1 = time.perf_counter()
trace = [(t1, time.process_time(), 0)]
for i, path in enumerate(files, 1):
    clf.predict([path], top_k=5, batch_size=batch)
    trace.append((time.perf_counter(), time.process_time(), i))
print(json.dumps({"load_s": t1 - t0, "loop_s": trace[-1][0] - t1, "files": len(files), "trace": trace}))
"""


def cli() -> str:
    beside = Path(sys.executable).with_name("ast-deploy")
    return str(beside) if beside.exists() else (shutil.which("ast-deploy") or "ast-deploy")


def write_corpus(root: Path, count: int, seconds: float, seed: int = 0) -> list[Path]:
    """``count`` 16 kHz PCM16 WAVs of noise and a tone, 1,000 per sub-folder."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    paths = []
    for i in range(count):
        folder = root / f"{i // 1000:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        x = 0.05 * rng.standard_normal(n) + 0.2 * np.sin(2 * np.pi * rng.uniform(100, 4000) * t)
        path = folder / f"clip{i:06d}.wav"
        sf.write(str(path), x.astype(np.float32), RATE, subtype="PCM_16")
        paths.append(path)
    return paths


def measured(cmd: list[str], env: dict, marker: Path | None = None) -> dict:
    """Run ``cmd`` to its end through the project's RSS launcher: its own peak RSS, the peak of the job's
    summed RSS, and the CPU seconds of every process of the job (sampled), in all and after the first
    file matching ``marker`` appeared (the job's first committed rows)."""
    import psutil

    with tempfile.TemporaryDirectory(prefix="ast-batch-rss-") as tmp:
        result = Path(tmp) / "rusage.json"
        begin = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-S", "-c", memory.LAUNCHER, str(result), *cmd],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        peak = [0.0]
        cpu: dict[int, float] = {}  # pid -> last seen user + system seconds (its children's included once reaped)
        seen: dict[str, int] = {}  # committed shard -> rows
        trace: list[tuple[float, float, int]] = []  # (time, CPU s of the job, rows committed)
        stop = threading.Event()

        def sample() -> None:  # every process of the job: the driver, its local Ray, the workers
            launcher = psutil.Process(proc.pid)
            while not stop.is_set():
                total = 0
                try:
                    for p in launcher.children(recursive=True):
                        with contextlib.suppress(psutil.Error):  # a worker that just ended
                            total += p.memory_info().rss
                            t = p.cpu_times()
                            cpu[p.pid] = t.user + t.system
                except psutil.Error:
                    break
                peak[0] = max(peak[0], total / 2**20)
                if marker is not None:
                    for shard in marker.parent.glob(marker.name):
                        if shard.name not in seen:
                            with contextlib.suppress(OSError):
                                seen[shard.name] = pq.ParquetFile(shard).metadata.num_rows
                    trace.append((time.perf_counter(), sum(cpu.values()), sum(seen.values())))
                stop.wait(0.1)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        stdout, stderr = proc.communicate()
        stop.set()
        sampler.join()
        wall = time.perf_counter() - begin
        usage = json.loads(result.read_text())
    if usage["status"] != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({usage['status']}):\n{stderr.decode()[-3000:]}")
    return {
        "stdout": stdout.decode(),
        "driver_peak_mib": usage["maxrss_kib"] / 2**10,
        "job_peak_mib": peak[0],
        "wall_s": wall,
        "cpu_s": sum(cpu.values()),
        "trace": trace,
    }


def steady(trace: list[tuple[float, float, int]], total: int, lo: float = 0.25, hi: float = 0.9) -> dict:
    """Files/s and CPU s per file between the samples where ``lo`` and ``hi`` of ``total`` files were done:
    no start, model load or first batch, no end; a pipeline's look-ahead is the same at both ends."""
    a = next(t for t in trace if t[2] >= lo * total)
    b = next((t for t in trace if t[2] >= hi * total), trace[-1])
    files = b[2] - a[2]
    return {
        "steady_files_per_s": files / (b[0] - a[0]),
        "steady_cpu_s_per_file": (b[1] - a[1]) / files,
        "steady_files": files,
    }


def run_batch(model: Path, inputs: Path, out: Path, actors: int, threads: int, batch: int, env: dict) -> dict:
    """One ``ast-deploy batch`` process; a shard per result batch, so that the first shard marks the first rows."""
    shutil.rmtree(out, ignore_errors=True)
    cmd = [cli(), "batch", str(model), str(inputs), "--out", str(out), "--json", "--no-progress", "--shard-rows", "1",
           "--actors", str(actors), "--threads-per-actor", str(threads), "--batch-size", str(batch)]  # fmt: skip
    m = measured(cmd, env, marker=out / "files" / "part-*.parquet")
    counts = json.loads(m["stdout"])
    shutil.rmtree(out, ignore_errors=True)
    keys = ("processed", "errors", "windows", "wall_s", "ray_start_s", "run_s", "first_row_s", "first_rows")
    return {**{k: counts[k] for k in keys}, "files_per_s": counts["files_per_s"], "cpu_s": m["cpu_s"],
            **steady(m["trace"], counts["processed"]),
            "driver_peak_mib": m["driver_peak_mib"], "job_peak_mib": m["job_peak_mib"]}  # fmt: skip


def run_predict_loop(model: Path, files: list[Path], threads: int, batch: int, env: dict, work: Path) -> dict:
    listing = work / "predict_files.txt"
    listing.write_text("\n".join(map(str, files)))
    begin = time.perf_counter()
    # Ray starts an actor of T CPUs with OMP_NUM_THREADS=T: the loop gets the same.
    env = {**env, "OMP_NUM_THREADS": str(threads)}
    out = subprocess.run(
        [sys.executable, "-c", PREDICT_LOOP, str(threads), str(model), str(listing), str(batch)],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    if out.returncode:
        raise SystemExit(f"predict loop failed:\n{out.stderr[-3000:]}")
    r = json.loads(out.stdout.strip().splitlines()[-1])
    r["wall_s"] = time.perf_counter() - begin
    r.update(steady(r.pop("trace"), r["files"]))
    return r


def listing_cost(folder: Path, synthetic: int) -> dict:
    """Seconds per path of listing real files, and of the resume join on synthetic paths (scaled on paper)."""
    import pyarrow as pa

    from ast_deploy.batch.inputs import list_inputs
    from ast_deploy.batch.job import _todo
    from ast_deploy.batch.store import KEY_SCHEMA

    list_inputs([str(folder)])  # imports and the page cache: the timed listing is the second
    begin = time.perf_counter()
    listed = list_inputs([str(folder)])
    list_s = time.perf_counter() - begin
    paths = [f"/archive/{i // 1000:05d}/{i:09d}.flac" for i in range(synthetic)]
    listing = pa.table(
        {"path": paths, "size": np.full(synthetic, 160_000, np.int64), "mtime": np.arange(synthetic, dtype=np.int64)}
    )
    half = synthetic // 2
    done = pa.table(
        [listing.column("path").slice(0, half), listing.column("size").slice(0, half),
         listing.column("mtime").slice(0, half), pa.array(["ok"] * half), pa.array(np.zeros(half, np.int32))],
        schema=KEY_SCHEMA,
    )  # fmt: skip
    begin = time.perf_counter()
    todo, _, kept = _todo(listing, done, retry_errors=False)
    join_s = time.perf_counter() - begin
    assert todo.num_rows == synthetic - half and kept == half
    return {
        "files_listed": len(listed),
        "list_s": list_s,
        "list_us_per_path": list_s / len(listed) * 1e6,
        "synthetic_paths": synthetic,
        "resume_join_s": join_s,
        "resume_join_us_per_path": join_s / synthetic * 1e6,
        "arrow_bytes_per_path": listing.nbytes / synthetic,
        "ten_million": {
            "list_s": list_s / len(listed) * 1e7,
            "resume_join_s": join_s / synthetic * 1e7,
            "listing_gib": listing.nbytes / synthetic * 1e7 / 2**30,
        },
    }


def lscpu_flags() -> list[str] | None:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    line = next((ln for ln in out.splitlines() if ln.startswith("Flags:")), None)
    return line.split(":", 1)[1].split() if line else None


def _load(part: dict) -> str:
    if "load_average" not in part:
        return ""
    before, after = part["load_average"]
    return f"Load average (1 min) {before[0]:.1f} before, {after[0]:.1f} after; `{part['command']}`."


def markdown(doc: dict) -> str:
    cpu = doc["environment"].get("cpu") or {}
    t = doc["throughput"]
    lines = [
        f"# ast-deploy batch on {doc['machine']}",
        "",
        f"CPU: {cpu.get('model')}, {cpu.get('logical_cores') or cpu.get('cores')} logical cores; "
        f"lscpu flags (of {', '.join(environment.CPU_FLAGS)}): {', '.join(cpu.get('flags') or []) or 'none'}. "
        f"Ray {doc['ray']}, pyarrow {doc['pyarrow']}, torch {doc['environment']['libraries'].get('torch')}. "
        "A 2-core machine shared with other work while this ran (the load average before and after each part is "
        "given): files/s move by tens of per cent from run to run; CPU seconds per file much less.",
        "",
        f"`lscpu` flags: {' '.join(doc.get('lscpu_flags') or ['(lscpu not available)'])}",
        "",
        f"## Throughput: {t['files']} clips of 10 s, {t['model']}, backend pytorch",
        "",
        _load(t),
        "",
        "Steady state: between the moments 25 % and 90 % of the files were done (committed shards for batch, "
        "returned predictions for predict): no start, model load or first batch. CPU s per file: "
        "user + system seconds of every process of the job (batch: driver, local Ray, decode workers, actors; sampled) "
        "per file; on a shared machine this, not files/s, is what measures Ray's overhead, because the scheduler "
        "gives a job of several processes a larger share of contended cores than one process. Total: the whole "
        "command or process, start, model load and (batch) Ray start included.",
        "",
        "| run | threads | batch | steady CPU s per file | vs predict (CPU) | steady files/s | vs predict | total s | batch: Ray start s | first rows after s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in t["rows"]:
        base = next(p for p in t["rows"] if p["run"] == "predict loop" and p["threads"] == r["threads"])
        ratio = r["steady_files_per_s"] / base["steady_files_per_s"]
        cpu = r["steady_cpu_s_per_file"] or float("nan")
        cpu_ratio = cpu / base["steady_cpu_s_per_file"]
        lines.append(
            f"| {r['run']} | {r['threads']} | {r['batch']} | {cpu:.3f} | {cpu_ratio:.2f}x "
            f"| {r['steady_files_per_s']:.2f} | {ratio:.2f}x "
            f"| {r['wall_s']:.1f} | {r.get('ray_start_s', 0):.1f} | {r.get('first_row_s', 0):.1f} |"
        )
    m = doc["memory"]
    lines += [
        "",
        f"## Memory: short files ({m['seconds']:g} s), {m['model']}, 1 actor x 1 thread, batch 16",
        "",
        _load(m),
        "",
        "| files | driver peak RSS MiB | job peak RSS MiB (all processes) | steady files/s | wall s |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in m["rows"]:
        lines.append(
            f"| {r['files']:,} | {r['driver_peak_mib']:.0f} | {r['job_peak_mib']:.0f} | {r['steady_files_per_s']:.1f} | {r['wall_s']:.1f} |"
        )
    if len(m["rows"]) >= 2:
        a, b = m["rows"][0], m["rows"][-1]
        lines += [
            "",
            f"Growth from {a['files']:,} to {b['files']:,} files: driver {b['driver_peak_mib'] - a['driver_peak_mib']:+.0f} MiB, "
            f"whole job {b['job_peak_mib'] - a['job_peak_mib']:+.0f} MiB.",
        ]
    if doc.get("base"):
        r = doc["base"]
        lines += [
            "",
            f"## AST-base (random weights, pytorch fp32): {r['processed']} clips of 10 s, 1 actor x 2 threads",
            "",
            _load(r),
            "",
            f"{r['steady_files_per_s']:.3f} files/s steady = **{r['steady_files_per_s'] * 3600:,.0f} files per hour** on this "
            f"machine (total {r['wall_s']:.0f} s with Ray start {r['ray_start_s']:.1f} s, first rows after {r['first_row_s']:.1f} s).",
        ]
    c = doc["listing"]
    ten = c["ten_million"]
    lines += [
        "",
        "## Listing and resume, scaled to 10 million paths",
        "",
        _load(c),
        "",
        f"Listing {c['files_listed']:,} local files (scandir + stat, page cache warm): {c['list_s']:.2f} s, "
        f"{c['list_us_per_path']:.1f} us per path; resume anti-join over {c['synthetic_paths']:,} synthetic paths "
        f"(half done): {c['resume_join_s']:.2f} s; {c['arrow_bytes_per_path']:.0f} bytes of Arrow per path.",
        "",
        f"10 million paths, on paper: listing {ten['list_s'] / 60:.1f} min, resume join {ten['resume_join_s']:.0f} s, "
        f"listing table {ten['listing_gib']:.2f} GiB in the driver.",
        "",
        f"Last command: `{doc['command']}`",
        "",
    ]
    return "\n".join(lines)


def plot(doc: dict, path: Path) -> None:
    plt = report.pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    rows = doc["throughput"]["rows"]
    labels = [f"{r['run']}\n{r['threads']} thr, batch {r['batch']}" for r in rows]
    a.barh(range(len(rows)), [r["steady_files_per_s"] for r in rows])
    a.set_yticks(range(len(rows)), labels, fontsize=7)
    a.invert_yaxis()
    a.set_xlabel("files/s (steady state)")
    m = doc["memory"]["rows"]
    files = [r["files"] for r in m]
    b.plot(files, [r["driver_peak_mib"] for r in m], "o-", label="driver")
    b.plot(files, [r["job_peak_mib"] for r in m], "s-", label="all processes")
    b.set_xscale("log")
    b.set_xlabel("files")
    b.set_ylabel("peak RSS (MiB)")
    b.set_ylim(bottom=0)
    b.legend()
    fig.suptitle(f"ast-deploy batch ({doc['machine']})")
    fig.tight_layout()
    report.save_figure(fig, path, dpi=120)


PARTS = ("throughput", "memory", "base", "listing")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--files", type=int, default=80, help="10-s clips for the throughput runs")
    p.add_argument("--rss-files", default="1000,10000", help="short-file counts for the memory runs")
    p.add_argument("--base-files", type=int, default=24, help="10-s clips for AST-base")
    p.add_argument("--synthetic-paths", type=int, default=1_000_000)
    p.add_argument(
        "--parts", default=",".join(PARTS), help="what to run; the others are kept from --out's results.json"
    )
    p.add_argument("--out", type=Path, help="default benchmarks/results/<machine>/batch")
    args = p.parse_args(argv)
    parts = args.parts.split(",")
    command = "python " + " ".join(["benchmarks/batch.py", *(sys.argv[1:] if argv is None else argv)])
    env_doc = environment.collect(command.split()[1:])
    machine = environment.machine_name(env_doc, "cpu")
    out = args.out or REPO / "benchmarks" / "results" / machine / "batch"
    previous = json.loads((out / "results.json").read_text()) if (out / "results.json").is_file() else {}
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "COLUMNS": "200"}
    import pyarrow
    import ray

    doc: dict = {"machine": machine, "command": command, "environment": env_doc, "ray": ray.__version__,
                 "pyarrow": pyarrow.__version__, "lscpu_flags": lscpu_flags()}  # fmt: skip
    for part in PARTS:  # kept from an earlier run, with that run's command and load
        if part not in parts and part in previous:
            doc[part] = previous[part]

    def stamp(part: str, before: tuple) -> None:
        # The machine is shared: how busy it was (load average over 1, 5, 15 min) before and after.
        doc[part].update(command=command, load_average=[list(before), list(os.getloadavg())])

    with tempfile.TemporaryDirectory(prefix="ast-batch-bench-") as tmp:
        work = Path(tmp)
        if "throughput" in parts:
            before = os.getloadavg()
            model = work / "ast-tiny-1024"
            subprocess.run(
                [cli(), "init", str(model), "--size", "tiny", "--frames", "1024"], check=True, capture_output=True
            )
            clips = write_corpus(work / "clips", args.files, 10.0)
            rows = []
            for threads in (2, 1):
                r = run_predict_loop(model, clips, threads, 1, env, work)
                rows.append({"run": "predict loop", "threads": threads, "batch": 1, **r})
                print(rows[-1], file=sys.stderr)
                for batch in (1, 8) if threads == 2 else (1,):
                    r = run_batch(model, work / "clips", work / "out", 1, threads, batch, env)
                    rows.append({"run": "batch, 1 actor", "threads": threads, "batch": batch, **r})
                    print(rows[-1], file=sys.stderr)
            r = run_batch(model, work / "clips", work / "out", 2, 1, 1, env)
            rows.append({"run": "batch, 2 actors", "threads": 1, "batch": 1, **r})
            print(rows[-1], file=sys.stderr)
            doc["throughput"] = {"model": "AST tiny, 1024 frames, 527 labels (init)", "files": args.files, "rows": rows}
            stamp("throughput", before)

        counts = [int(c) for c in args.rss_files.split(",")]
        if "memory" in parts or "listing" in parts:
            write_corpus(work / "short", max(counts), 0.5, seed=1)
        if "memory" in parts:
            before = os.getloadavg()
            tiny = work / "tiny"
            subprocess.run([cli(), "convert", str(TINY_FIXTURE), str(tiny), "--input-tdim", "100", "--fstride", "10",
                            "--tstride", "10"], check=True, capture_output=True)  # fmt: skip
            mem_rows = []
            every = sorted(p for sub in sorted((work / "short").iterdir()) for p in sub.iterdir())
            for count in counts:
                listing = work / f"short_{count}.txt"  # the first `count` files, as a list of paths
                listing.write_text("\n".join(map(str, every[:count])))
                r = run_batch(tiny, listing, work / "out", 1, 1, 16, env)
                mem_rows.append({"files": count, **r})
                print(mem_rows[-1], file=sys.stderr)
            doc["memory"] = {"model": "tests/fixtures/tiny_t100_f10t10.pth (1.015 s windows, 10 labels)",
                             "seconds": 0.5, "rows": mem_rows}  # fmt: skip
            stamp("memory", before)
        if "base" in parts:
            before = os.getloadavg()
            base = work / "ast-base"
            subprocess.run([cli(), "init", str(base), "--size", "base"], check=True, capture_output=True)
            write_corpus(work / "base_clips", args.base_files, 10.0, seed=2)
            doc["base"] = run_batch(base, work / "base_clips", work / "out", 1, 2, 8, env)
            print(doc["base"], file=sys.stderr)
            stamp("base", before)
        if "listing" in parts:
            before = os.getloadavg()
            doc["listing"] = listing_cost(work / "short", args.synthetic_paths)
            stamp("listing", before)
    report.write_outputs(out / "results", doc, markdown(doc), plot)
    print(markdown(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
