"""A batch job end to end: list, resume, run on Ray Data, commit shards, count.

The pipeline (Ray Data's batch-inference pattern)::

    from_arrow(files still to do)                  the listing, in blocks of a few dozen paths
      -> map(decode)            Ray tasks          decode, mix down, resample (ast_deploy.audio)
      -> map_batches(Scorer)    actor pool         the model, opened once per actor; windows cut
                                                   (predict's rule) and batched across files
      -> iter_batches           this process       one small row per file: shards committed here

Only the per-file results (a few hundred bytes each; more with --scores/--timeline) reach this
process; audio and windows stay in the workers and Ray's object store, whose streaming executor
bounds what is in flight (backpressure), so memory follows the actors and batches, not the number
of files. This process commits every shard (:mod:`.store`), so exactly-once needs no coordination.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from .. import __version__
from ..checkpoints import LoadOptions
from ..errors import InputError
from ..events import EventConfig
from .decode import decode
from .inputs import list_inputs
from .model import (
    ModelInfo,
    ModelSpec,
    ScoreSettings,
    default_threads,
    embeddings_unavailable,
    model_info,
    scorer_class,
)
from .schema import Columns, split_timeline
from .store import FORMAT, FORMAT_VERSION, opened

# Input blocks of the listing: at least MIN_BLOCK paths each, at most MAX_BLOCKS of them (enough
# decode tasks for 100 nodes; a driver cost that does not grow with the number of files).
MIN_BLOCK, MAX_BLOCKS = 4, 512
TARGET_BLOCK_BYTES = 16 * 2**20  # decoded audio per block between the decode tasks and the actors
DECODE_MEMORY = 256 * 2**20
# A shard is also committed when the rows waiting for it reach this size (--scores, --timeline of long
# files: a 10-minute file at a 0.25 s hop has 2,400 windows of 527 scores), so the driver's buffer is bounded.
SHARD_BYTES = 64 * 2**20
COMPACT_EVERY = 64  # result tables buffered before they are merged into one


class JobFailed(RuntimeError):
    """The Ray pipeline failed (not a file: those are error rows); what was received is committed."""


@dataclass
class BatchOptions:
    """Everything ``ast-deploy batch`` takes (the CLI flags of the same names)."""

    model: str
    inputs: list[str]
    out: str
    backend: str | None = None
    device: str = "cpu"
    load_options: LoadOptions | None = None
    address: str | None = None  # a Ray cluster; None: RAY_ADDRESS, else a local Ray for the job
    actors: int = 1
    threads_per_actor: int | None = None  # default: local cores / actors; 1 on a cluster
    gpus_per_actor: float = 0.0
    cpus: int | None = None  # the local Ray's logical CPUs (default: cores, at least actors*threads + 1)
    object_store_mib: int | None = None  # the local Ray's object store (default: Ray's)
    top_k: int = 5
    aggregate: str = "mean"
    hop: float | None = None
    batch_size: int = 8
    scores: str | None = None  # "float16" | "float32"
    embeddings: bool = False
    timeline: bool = False
    # ast_deploy.events.EventConfig, or a function of the model's labels that makes one (--thresholds);
    # with rollup, the config of the parents' events
    events: EventConfig | Callable[[list[str]], EventConfig] | None = None
    rollup: str | None = None  # --rollup: AudioSet parents per file (a depth or names; ast_deploy.ontology)
    retry_errors: bool = False
    shard_rows: int = 10000
    shard_seconds: float = 60.0


@dataclass
class Counts:
    """What a running job has done so far (its progress) and, at the end, its summary."""

    out: str = ""
    model: str = ""
    model_sha256: str = ""
    backend: str = ""
    listed: int = 0
    already_done: int = 0  # rows found in --out and kept
    replaced: int = 0  # rows removed because their file changed (or --retry-errors)
    todo: int = 0
    processed: int = 0
    ok: int = 0
    errors: int = 0
    windows: int = 0
    audio_seconds: float = 0.0
    shards: int = 0
    ray_start_s: float = 0.0
    run_s: float = 0.0  # from the pipeline's start to its last row
    first_row_s: float = 0.0  # from the pipeline's start to its first rows (actors started, model loaded)
    first_rows: int = 0  # how many rows came with the first
    wall_s: float = 0.0
    interrupted: bool = False
    warnings: list[str] = field(default_factory=list)

    @property
    def files_per_s(self) -> float:
        return self.processed / self.run_s if self.run_s > 0 else 0.0

    @property
    def windows_per_s(self) -> float:
        return self.windows / self.run_s if self.run_s > 0 else 0.0

    @property
    def steady_files_per_s(self) -> float:
        """Files/s after the first rows: without the actors' start and model load."""
        span = self.run_s - self.first_row_s
        return (self.processed - self.first_rows) / span if span > 0 and self.processed > self.first_rows else 0.0

    @property
    def eta_s(self) -> float | None:
        rate = self.files_per_s
        return (self.todo - self.processed) / rate if rate > 0 else None

    def to_json(self) -> dict:
        data = asdict(self)
        data.update(
            files_per_s=self.files_per_s,
            windows_per_s=self.windows_per_s,
            steady_files_per_s=self.steady_files_per_s,
            audio_hours=self.audio_seconds / 3600,
        )
        return data


def _check(opts: BatchOptions) -> None:
    if opts.aggregate not in ("mean", "max"):
        raise InputError(f"--aggregate must be mean or max, not {opts.aggregate!r}")
    if opts.scores not in (None, "float16", "float32"):
        raise InputError(f"--scores must be float16 or float32, not {opts.scores!r}")
    for name in ("actors", "top_k", "batch_size", "shard_rows"):
        if getattr(opts, name) < 1:
            raise InputError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(opts, name)}")
    if opts.threads_per_actor is not None and opts.threads_per_actor < 1:
        raise InputError(f"--threads-per-actor must be at least 1, got {opts.threads_per_actor}")
    if opts.gpus_per_actor < 0 or not math.isfinite(opts.gpus_per_actor):
        raise InputError(f"--gpus-per-actor must not be negative, got {opts.gpus_per_actor}")
    if opts.hop is not None and (not math.isfinite(opts.hop) or opts.hop <= 0):
        raise InputError(f"--hop must be positive, got {opts.hop}")
    if not opts.inputs:
        raise InputError("missing inputs: ast-deploy batch MODEL INPUT... --out DIR")


def _meta(opts: BatchOptions, info: ModelInfo, settings: ScoreSettings) -> dict:
    """``_batch.json``: the model's identity, its labels, and every setting that changes a row."""
    events = None
    if settings.events is not None:
        e = settings.events
        events = {
            "threshold": e.threshold,
            "off_threshold": e.off_threshold,
            "thresholds": {str(k): list(v) for k, v in sorted(e.thresholds.items())},
            "min_duration": e.min_duration,
            "merge_gap": e.merge_gap,
        }
    rollup = {}
    if settings.rollup is not None:  # only when given: datasets written before --rollup still resume
        from ..ontology import rollup_for

        parents = rollup_for(info.labels, settings.rollup)
        rollup = {
            "rollup": {
                "spec": settings.rollup,
                "parents": [{"label": n, "mid": m} for n, m in zip(parents.labels, parents.mids, strict=True)],
            }
        }
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "ast_deploy_version": __version__,
        "model": {
            "path": opts.model,
            "kind": info.kind,
            "sha256": info.sha256,
            "sha256_of": info.identity,
            "backend": info.backend,
        },
        "labels": info.labels,
        "settings": {
            "top_k": settings.top_k,
            "aggregate": settings.aggregate,
            "hop": settings.hop_seconds,
            "scores": settings.columns.scores,
            "embeddings": settings.columns.embeddings,
            "timeline": settings.columns.timeline,
            "events": events,
            **rollup,
        },
    }


def _todo(listing: pa.Table, done: pa.Table, retry_errors: bool) -> tuple[pa.Table, pa.Table, int]:
    """(files to process, committed rows to remove first, rows kept): the resume rule of :mod:`.store`."""
    listed_keys = listing.rename_columns(["path", "size_now", "mtime_now"])
    listed_done = done.join(listed_keys, keys="path", join_type="inner")
    stale = pc.or_(
        pc.or_(
            pc.not_equal(listed_done.column("size"), listed_done.column("size_now")),
            pc.not_equal(listed_done.column("mtime"), listed_done.column("mtime_now")),
        ),
        pc.and_(pa.scalar(retry_errors), pc.equal(listed_done.column("status"), "error")),
    )
    remove = listed_done.filter(stale).select(["path", "shard"])
    kept = listed_done.filter(pc.invert(stale)).select(["path", "size", "mtime"])
    todo = listing.join(kept, keys=["path", "size", "mtime"], join_type="left anti").sort_by("path")
    return todo, remove, kept.num_rows


@contextlib.contextmanager
def ray_session(opts: BatchOptions, threads: int) -> Iterator[None]:
    """Ray for the job: the one already initialised in this process, a cluster (``--address`` or
    ``RAY_ADDRESS``), or a local Ray started here and shut down at the end."""
    import ray

    quiet = {"log_to_driver": False, "logging_level": logging.ERROR, "include_dashboard": False}
    if ray.is_initialized():
        yield
        return
    address = opts.address or os.environ.get("RAY_ADDRESS")
    if address:
        try:
            ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)
        except (ConnectionError, ValueError, RuntimeError) as e:
            raise InputError(
                f"--address {address}: cannot connect to a Ray cluster ({' '.join(str(e).split())})"
            ) from None
    else:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        cpus = opts.cpus or max(os.cpu_count() or 1, opts.actors * threads + 1)
        store = None if opts.object_store_mib is None else opts.object_store_mib * 2**20
        # address="local": a new Ray for this job, never one that happens to run on this machine.
        ray.init(address="local", num_cpus=cpus, object_store_memory=store, _node_ip_address="127.0.0.1", **quiet)
    try:
        yield
    finally:
        ray.shutdown()


def _dataset(
    todo: pa.Table, info: ModelInfo, spec: ModelSpec, settings: ScoreSettings, opts: BatchOptions, threads: int
):
    import ray.data

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False  # ours is on stderr; Ray's would interleave with it
    ctx.execution_options.preserve_order = False
    ctx.target_max_block_size = TARGET_BLOCK_BYTES
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    # Input blocks: from_arrow costs the driver ~30 KB of Ray Data state per block (measured), and a task
    # per block costs ~10 ms, so their number is capped; a decode task of a large block still streams its
    # output in blocks of TARGET_BLOCK_BYTES, so that the actors start early and memory stays bounded.
    blocks = min(MAX_BLOCKS, math.ceil(todo.num_rows / MIN_BLOCK))
    per_block = math.ceil(todo.num_rows / blocks)
    ds = ray.data.from_arrow([todo.slice(i, per_block) for i in range(0, todo.num_rows, per_block)])
    ds = ds.map(
        decode,
        fn_kwargs={"sample_rate": info.sample_rate, "min_samples": info.frame_samples, "frame_ms": info.frame_ms},
        num_cpus=1,
        # A logical reservation (Ray schedules by it) for one decoded file in flight per task. It also
        # keeps Ray Data from fusing decoding into the actors, whose remote arguments then differ:
        # decoding must overlap the model, not take turns with it on the actors' threads.
        memory=DECODE_MEMORY,
    )
    return ds.map_batches(
        scorer_class(spec, settings),
        batch_size=settings.batch_size,  # files per call: one model batch when files are one window long
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=opts.actors),
        num_cpus=threads,
        num_gpus=opts.gpus_per_actor or None,
        zero_copy_batch=True,
    )


def run_batch(opts: BatchOptions, progress: Callable[[Counts], None] | None = None) -> Counts:
    """Run ``opts`` to the end (or to Ctrl-C); the counts of what was done. Input errors before anything runs."""
    begin = time.perf_counter()
    _check(opts)
    local = not (opts.address or os.environ.get("RAY_ADDRESS"))
    threads = opts.threads_per_actor or (default_threads(opts.actors) if local else 1)
    device = opts.device
    gpus = opts.gpus_per_actor or (1.0 if device.startswith("cuda") else 0.0)
    opts.gpus_per_actor = gpus
    spec = ModelSpec(str(opts.model), opts.backend, device, opts.load_options, threads)
    if opts.embeddings:
        why = embeddings_unavailable(spec)
        if why:
            raise InputError(f"--embeddings: {why}")
    info = model_info(spec, here=local)
    rollup = None
    if opts.rollup is not None:  # a label set without ontology ids is refused before anything runs
        from ..ontology import rollup_for

        rollup = rollup_for(info.labels, opts.rollup)
    if callable(opts.events):
        opts.events = opts.events(info.labels)
    if opts.events is not None:  # per-label thresholds against this model's labels (or the parents)
        opts.events.on_off(len(info.labels) if rollup is None else len(rollup))
    columns = Columns(opts.scores, opts.embeddings, opts.events is not None, opts.timeline, rollup is not None)
    settings = ScoreSettings(opts.top_k, opts.aggregate, opts.hop, opts.batch_size, columns, opts.events, opts.rollup)
    listing = list_inputs([str(i) for i in opts.inputs])
    counts = Counts(
        out=str(opts.out),
        model=str(opts.model),
        model_sha256=info.sha256,
        backend=info.backend,
        listed=len(listing),
        warnings=listing.warnings,
    )
    with opened(str(opts.out), _meta(opts, info, settings)) as store:
        todo, remove, counts.already_done = _todo(listing.table, store.done(), opts.retry_errors)
        del listing
        if remove.num_rows:
            counts.replaced = store.drop(remove)
        counts.todo = todo.num_rows
        if progress is not None:
            progress(counts)
        if todo.num_rows:
            _run(todo, store, info, spec, settings, opts, threads, counts, progress)
    counts.wall_s = time.perf_counter() - begin
    return counts


def _run(todo, store, info, spec, settings, opts, threads, counts: Counts, progress) -> None:
    start = time.perf_counter()
    with ray_session(opts, threads):
        counts.ray_start_s = time.perf_counter() - start
        ds = _dataset(todo, info, spec, settings, opts, threads)
        run_start = time.perf_counter()
        buffer: list[pa.Table] = []
        timeline: list[pa.Table] = []
        rows, size, last_commit = 0, 0, time.monotonic()

        def commit() -> None:
            nonlocal rows, size, last_commit
            if buffer:
                store.write(pa.concat_tables(buffer), pa.concat_tables(timeline) if timeline else None)
                counts.shards += 1
            buffer.clear()
            timeline.clear()
            rows, size, last_commit = 0, 0, time.monotonic()

        try:
            for table in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
                files, windows = split_timeline(table, settings.columns)
                buffer.append(files)
                if windows is not None:
                    timeline.append(windows)
                if len(buffer) >= COMPACT_EVERY:  # one table, not hundreds of small ones (~3 KB each)
                    buffer[:] = [pa.concat_tables(buffer).combine_chunks()]
                    if timeline:
                        timeline[:] = [pa.concat_tables(timeline).combine_chunks()]
                rows += files.num_rows
                size += files.nbytes + (windows.nbytes if windows is not None else 0)
                if not counts.processed:
                    counts.first_row_s, counts.first_rows = time.perf_counter() - run_start, files.num_rows
                errors = pc.sum(pc.equal(files.column("status"), "error")).as_py() or 0
                counts.processed += files.num_rows
                counts.errors += errors
                counts.ok += files.num_rows - errors
                counts.windows += pc.sum(files.column("windows")).as_py() or 0
                counts.audio_seconds += pc.sum(files.column("duration")).as_py() or 0.0
                counts.run_s = time.perf_counter() - run_start
                full = rows >= opts.shard_rows or size >= SHARD_BYTES
                if full or time.monotonic() - last_commit >= opts.shard_seconds:
                    commit()
                if progress is not None:
                    progress(counts)
        except KeyboardInterrupt:
            counts.interrupted = True
        except Exception as e:  # Ray's errors carry the remote traceback: its last line says what failed
            lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
            raise JobFailed(f"the Ray job failed: {type(e).__name__}: {lines[-1] if lines else ''}") from e
        finally:
            commit()  # the rows received are complete: keep them, interrupted or not
            counts.run_s = time.perf_counter() - run_start


__all__ = ["BatchOptions", "Counts", "JobFailed", "run_batch"]
