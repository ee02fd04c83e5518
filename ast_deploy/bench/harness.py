"""Timing any :class:`Backend`: inputs, warm-up, the timed loop, statistics, memory, isolation.

One *row* of results is one (backend, input kind, batch size). By default each row runs in a fresh
worker process (``python -m ast_deploy.bench JOB RESULT``), so that its peak RSS, GPU peak
allocation and first-call time belong to it alone and nothing (allocator caches, compiled kernels,
thread pools) leaks from one backend into the next.

Timing. Each iteration takes the next of ``input_sets`` pre-generated batches (so that caches do
not flatter), calls the backend and waits for it (``backend.synchronize()``); the latency is the
``time.perf_counter`` difference, and on CUDA the device time between two CUDA events is kept too.
The first call (compilation, lazy initialisation) is reported on its own and, like the rest of the
warm-up, is not part of the statistics. On CUDA, ``h2d="include"`` starts every iteration from
pinned host memory (what a server sees); ``"exclude"`` stages inputs on the device beforehand.
Optional CUDA-graph capture applies to backends that run torch kernels on the current stream.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ..checkpoints import LoadOptions
from ..errors import InputError
from ..runtime.base import Backend, InputKind, InputSpec
from .memory import peak_rss_mib, rss_mib
from .sources import BenchSource, open_source

EVENT_PREFIX = "@bench "  # worker -> parent progress lines on the worker's stdout
Emit = Callable[[dict], None]


@dataclass(frozen=True)
class Timing:
    """How long and on what each row is measured."""

    warmup: int = 3  # calls before timing starts (at least 1: the first call is always reported apart)
    iters: int | None = None  # a fixed number of timed calls ...
    seconds: float | None = 10.0  # ... or as many as fit in this time (at least ``min_iters``)
    min_iters: int = 5
    input_sets: int = 4
    h2d: str = "include"  # include | exclude host->device copies in the timed call (CUDA)
    cuda_graphs: bool = False
    seed: int = 0

    def check(self) -> Timing:
        if self.iters is not None and self.seconds is not None:
            raise InputError("give --iters or --seconds, not both")
        if self.iters is None and self.seconds is None:
            raise InputError("give --iters or --seconds")
        if self.iters is not None and self.iters < 1:
            raise InputError(f"--iters {self.iters}: must be at least 1")
        if self.seconds is not None and not self.seconds > 0:
            raise InputError(f"--seconds {self.seconds}: must be positive")
        if self.warmup < 0 or self.input_sets < 1:
            raise InputError("--warmup must be >= 0 and --input-sets >= 1")
        if self.h2d not in ("include", "exclude"):
            raise InputError(f"--h2d {self.h2d!r}: expected include or exclude")
        return self


@dataclass(frozen=True)
class Job:
    """What one worker measures: one backend on one input kind at one or more batch sizes."""

    source: str
    load_options: dict
    backend: str
    input: InputKind
    batch_sizes: tuple[int, ...]
    device: str
    threads: int | None
    timing: Timing
    isolation: str

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> Job:
        data = {**data, "timing": Timing(**data["timing"]), "batch_sizes": tuple(data["batch_sizes"])}
        return cls(**data)


# --- inputs and statistics -----------------------------------------------------------------------


def make_inputs(
    spec: InputSpec, batch: int, clip_samples: int, timing: Timing, device: torch.device
) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
    """``timing.input_sets`` seeded batches: audio-like waveforms (noise plus tones) or fbank features.

    On CUDA they are pinned host memory (``h2d="include"``) or already on the device (``"exclude"``);
    ``num_samples`` stays in pinned host memory either way (a few bytes, copied without a
    synchronisation, where a device copy would make the input check read back from the GPU).
    """
    g = torch.Generator().manual_seed(timing.seed * 1009 + batch)
    sets = []
    for _ in range(timing.input_sets):
        if spec.kind == "waveform":
            t = torch.arange(clip_samples) / spec.sample_rate
            freqs = 100 + 4000 * torch.rand(batch, 1, generator=g)
            x = 0.1 * torch.randn(batch, clip_samples, generator=g) + 0.3 * torch.sin(2 * torch.pi * freqs * t)
            n: torch.Tensor | None = torch.full((batch,), clip_samples, dtype=torch.int64)
        else:
            x, n = 0.5 * torch.randn(batch, spec.num_frames, spec.num_mel_bins, generator=g), None
        sets.append((x.float().contiguous(), n))
    if device.type == "cuda":
        pinned = [(x.pin_memory(), n.pin_memory() if n is not None else None) for x, n in sets]
        sets = [(x.to(device) if timing.h2d == "exclude" else x, n) for x, n in pinned]
    return sets


def latency_stats(samples_ms: list[float]) -> dict[str, float]:
    a = np.asarray(samples_ms, dtype=np.float64)
    p50, p90, p99 = np.percentile(a, [50, 90, 99])
    return {
        "min": float(a.min()),
        "p50": float(p50),
        "p90": float(p90),
        "p99": float(p99),
        "max": float(a.max()),
        "mean": float(a.mean()),
        "std": float(a.std(ddof=1)) if len(a) > 1 else 0.0,
    }


def batch_out_of_range(spec: InputSpec, batch: int) -> str | None:
    if batch < spec.min_batch or (spec.max_batch is not None and batch > spec.max_batch):
        return f"batch {batch} outside the exported range {spec.min_batch}..{spec.max_batch}"
    return None


# --- measuring one backend -----------------------------------------------------------------------


def new_row(backend: str, kind: InputKind, batch: int, device: str, isolation: str) -> dict:
    """A result row with every field present (``None`` until measured), as the schema requires."""
    return {
        "backend": backend,
        "input": kind,
        "batch": batch,
        "status": "ok",
        "reason": None,
        "precision": None,
        "compute_precision": None,
        "device": device,
        "isolation": isolation,
        "clip_seconds": None,
        "iterations": None,
        "warmup_iterations": None,
        "load_s": None,
        "first_call_s": None,
        "warmup_s": None,
        "timed_s": None,
        "latency_ms": None,
        "device_latency_ms": None,
        "throughput_clips_per_s": None,
        "real_time_factor": None,
        "memory": None,
        "cuda_graph": None,
        "h2d": None,
        "threads": None,
        "latencies_ms": None,
        "speedup": None,
        "roofline_fraction": None,
        "quality": None,
    }


def one_line(error: BaseException) -> str:
    if isinstance(error, InputError):
        return str(error)
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}".strip().rstrip(":")


def _capture_cuda_graph(backend: Backend, example: tuple[torch.Tensor, torch.Tensor | None]):
    """A replay function over static device buffers, equivalent to ``backend(x, n)``.

    The graph records ``backend._run``: the input check of ``backend.__call__`` reads values on
    the host (a synchronisation, which capture forbids) and has already passed in the warm-up.
    """
    device = backend.device
    static = [t.to(device).clone() if t is not None else None for t in example]
    stream = torch.cuda.Stream(device)
    stream.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(stream):  # warm-up on a side stream, as capture requires
        for _ in range(3):
            backend._run(*static)
    torch.cuda.current_stream(device).wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_out = backend._run(*static)

    def replay(x: torch.Tensor, n: torch.Tensor | None) -> torch.Tensor:
        static[0].copy_(x, non_blocking=True)
        if n is not None:
            static[1].copy_(n, non_blocking=True)
        graph.replay()
        return static_out

    return replay


def measure(
    backend: Backend,
    batch: int,
    timing: Timing,
    clip_samples: int,
    emit: Emit | None = None,
    graph_capturable: bool | None = None,
    run_device: str | torch.device | None = None,
) -> dict:
    """Warm up and time ``backend`` at ``batch``; the measured fields of a result row.

    Works on any :class:`Backend`. ``graph_capturable`` (default: ``backend.graph_capturable``)
    says whether CUDA-graph capture applies. ``run_device`` is the device
    asked for (default ``backend.device``; ONNX Runtime on CUDA has host inputs and outputs).
    """
    emit = emit or (lambda event: None)
    device = backend.device
    cuda = device.type == "cuda"
    on_gpu = torch.device(run_device or device).type == "cuda"
    sets = make_inputs(backend.spec, batch, clip_samples, timing, device)
    capturable = cuda and (backend.graph_capturable if graph_capturable is None else graph_capturable)

    def call(x: torch.Tensor, n: torch.Tensor | None) -> torch.Tensor:
        return backend(x, n) if backend.spec.kind == "waveform" else backend(x)

    emit({"phase": "warm-up"})
    warm_start = time.perf_counter()
    first_call_s = None
    for i in range(max(1, timing.warmup)):
        t0 = time.perf_counter()
        call(*sets[i % len(sets)])
        backend.synchronize()
        if i == 0:
            first_call_s = time.perf_counter() - t0
    graph_state = "off" if capturable else "not applicable"
    if timing.cuda_graphs and capturable:
        try:
            call = _capture_cuda_graph(backend, sets[0])
            call(*sets[0])
            backend.synchronize()
            graph_state = "on"
        except Exception as e:  # not every graph can be captured: say why, time without
            graph_state = f"failed: {one_line(e)}"
            torch.cuda.synchronize(device)
    warmup_s = time.perf_counter() - warm_start

    wall_ms: list[float] = []
    device_ms: list[float] = []
    start = last_emit = time.perf_counter()
    while True:
        done = len(wall_ms)
        if timing.iters is not None and done >= timing.iters:
            break
        if timing.seconds is not None and done >= timing.min_iters and time.perf_counter() - start >= timing.seconds:
            break
        x, n = sets[done % len(sets)]
        if cuda:
            events = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            events[0].record()
        t0 = time.perf_counter()
        call(x, n)
        if cuda:
            events[1].record()
        backend.synchronize()
        wall_ms.append((time.perf_counter() - t0) * 1e3)
        if cuda:
            device_ms.append(events[0].elapsed_time(events[1]))
        now = time.perf_counter()
        if now - last_emit > 0.25:
            emit(
                {
                    "phase": "timing",
                    "done": len(wall_ms),
                    "total": timing.iters,
                    "elapsed": now - start,
                    "seconds": timing.seconds,
                }
            )
            last_emit = now
    timed_s = time.perf_counter() - start

    stats = latency_stats(wall_ms)
    clip_seconds = clip_samples / backend.spec.sample_rate
    mean_s = stats["mean"] / 1e3
    if not on_gpu:
        h2d = "not applicable"
    else:  # a backend with host inputs and outputs (ONNX Runtime) copies inside the call whatever was asked
        h2d = "included" if timing.h2d == "include" or not cuda else "excluded"
    return {
        "precision": backend.precision,
        "compute_precision": backend.compute_precision,  # the roofline floor's precision mix
        "clip_seconds": clip_seconds,
        "iterations": len(wall_ms),
        "warmup_iterations": max(1, timing.warmup),
        "first_call_s": first_call_s,
        "warmup_s": warmup_s,
        "timed_s": timed_s,
        "latency_ms": stats,
        "device_latency_ms": latency_stats(device_ms) if device_ms else None,
        "throughput_clips_per_s": batch / mean_s,
        "real_time_factor": batch * clip_seconds / mean_s,
        "cuda_graph": graph_state,
        "h2d": h2d,
        "latencies_ms": wall_ms,
    }


# --- memory --------------------------------------------------------------------------------------


def gpu_used_mib(device: torch.device) -> float:
    free, total = torch.cuda.mem_get_info(device)
    return (total - free) / 2**20


# --- a worker: one job, in this process ----------------------------------------------------------


def run_job(job: Job, source: BenchSource | None = None, emit: Emit | None = None) -> list[dict]:
    """Load ``job.backend`` and measure it at each batch size; one row per batch size.

    Failures (a backend that does not load, a batch that raises) become rows with status
    ``failed`` and a one-line reason; the other rows are still measured.
    """
    emit = emit or (lambda event: None)
    source = source or open_source(job.source, LoadOptions(**job.load_options))
    isolated = job.isolation != "none"
    device = torch.device(job.device)
    cuda = device.type == "cuda"
    if job.threads:
        torch.set_num_threads(job.threads)
    threads = {"torch": torch.get_num_threads(), "onnxruntime": job.threads}
    rows = [new_row(job.backend, job.input, b, job.device, job.isolation) for b in job.batch_sizes]
    for row in rows:
        row["threads"] = threads
        row["clip_seconds"] = source.clip_seconds(job.input)
    rss_baseline = rss_mib() if isolated else None
    if cuda:
        torch.cuda.init()
        torch.cuda.reset_peak_memory_stats(device)
        gpu_baseline = gpu_used_mib(device)

    emit({"phase": "loading"})
    t0 = time.perf_counter()
    try:
        backend = source.open(job.backend, job.input, job.device, job.threads)
    except Exception as e:
        for row in rows:
            row.update(status="failed", reason=f"loading failed: {one_line(e)}")
        return rows
    load_s = time.perf_counter() - t0
    try:
        for row in rows:
            row["load_s"] = load_s
            emit({"phase": "start", "batch": row["batch"]})
            skip = batch_out_of_range(backend.spec, row["batch"])
            if skip:
                row.update(status="skipped", reason=skip, precision=backend.precision)
                emit({"phase": "row", "status": "skipped"})
                continue
            if cuda:
                torch.cuda.reset_peak_memory_stats(device)
            try:
                row.update(
                    measure(backend, row["batch"], job.timing, source.clip_samples(job.input), emit, run_device=device)
                )
            except Exception as e:
                row.update(status="failed", reason=one_line(e), precision=backend.precision)
            if isolated:
                row["memory"] = {
                    "rss_baseline_mib": rss_baseline,
                    "rss_peak_mib": peak_rss_mib(),
                    "gpu_peak_allocated_mib": torch.cuda.max_memory_allocated(device) / 2**20 if cuda else None,
                    "gpu_used_mib": gpu_used_mib(device) - gpu_baseline if cuda else None,
                }
            emit({"phase": "row", "status": row["status"]})
    finally:
        backend.close()
    return rows


def worker_main(argv: list[str]) -> int:
    """``python -m ast_deploy.bench JOB.json RESULT.json``: run one job, write its rows."""
    job_path, result_path = argv

    def emit(event: dict) -> None:
        print(EVENT_PREFIX + json.dumps(event), flush=True)

    job = Job.from_json(json.loads(Path(job_path).read_text(encoding="utf-8")))
    rows = run_job(job, emit=emit)
    Path(result_path).write_text(json.dumps(rows), encoding="utf-8")
    return 0


# --- the parent's side of a worker --------------------------------------------


def _worker_env(threads: int | None) -> dict[str, str]:
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    if threads:  # thread pools are sized when the libraries load: tell them before they do
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = str(threads)
    return env


def run_isolated(job: Job, emit: Emit) -> list[dict]:
    """``job`` in a fresh ``python -m ast_deploy.bench`` process; a crash fails its rows."""
    with tempfile.TemporaryDirectory(prefix="ast-deploy-bench-") as tmp:
        job_path, result_path, stderr_path = Path(tmp, "job.json"), Path(tmp, "rows.json"), Path(tmp, "stderr")
        job_path.write_text(json.dumps(job.to_json()), encoding="utf-8")
        cmd = [sys.executable, "-m", "ast_deploy.bench", str(job_path), str(result_path)]
        with open(stderr_path, "w+", encoding="utf-8") as stderr:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=stderr, text=True, env=_worker_env(job.threads))
            finished = 0
            try:
                for line in proc.stdout:
                    if line.startswith(EVENT_PREFIX):
                        event = json.loads(line[len(EVENT_PREFIX) :])
                        finished += event["phase"] == "row"
                        emit(event)
                status = proc.wait()
            except BaseException:
                proc.kill()
                proc.wait()
                raise
            stderr.seek(0)
            tail = [line.strip() for line in stderr.read().splitlines() if line.strip()]
        if status == 0 and result_path.is_file():
            return json.loads(result_path.read_text(encoding="utf-8"))
    killed = f" (killed by signal {-status}{': out of memory?' if status == -9 else ''})" if status < 0 else ""
    reason = f"worker exited with status {status}{killed}" + (f": {tail[-1]}" if tail else "")
    rows = [new_row(job.backend, job.input, b, job.device, job.isolation) for b in job.batch_sizes]
    for row in rows:
        row.update(status="failed", reason=reason)
    for _ in rows[finished:]:
        emit({"phase": "row", "status": "failed"})
    return rows


__all__ = [
    "Job",
    "Timing",
    "latency_stats",
    "measure",
    "new_row",
    "run_isolated",
    "run_job",
]
