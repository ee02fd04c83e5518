"""``ast-deploy stream``: tag audio as it arrives (raw PCM on stdin, or a file, optionally at real-time speed).

One JSON line per window and per event, a summary line at the end (per-hop latency, real-time
factor), also after Ctrl-C. The line formats are specified in docs/streaming.md, section 5.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from ..errors import InputError
from ..windows import seconds_to_samples
from .app import app
from .event_options import EventOptions, with_event_options
from .options import (
    Runtime,
    TopKOption,
    Windows,
    audio_paths,
    print_json_line,
    with_load_options,
    with_runtime_options,
    with_window_options,
)
from .rollup_option import RollupOption, model_rollup

PCM_FORMATS = {"s16le": np.dtype("<i2"), "f32le": np.dtype("<f4")}
POLL_S = 0.05  # how often a blocked read wakes up to notice Ctrl-C


class _Interrupt:
    """SIGINT sets a flag (instead of raising inside a model call) while the stream runs."""

    def __init__(self) -> None:
        self.stopped = False

    def _handle(self, signum, frame) -> None:
        self.stopped = True

    @contextlib.contextmanager
    def installed(self):
        try:
            previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread (embedded use): Ctrl-C behaves as usual
            yield self
            return
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, previous)


def _pcm_chunks(source, dtype: np.dtype, channels: int, frames: int, interrupt: _Interrupt) -> Iterator[np.ndarray]:
    """(frames, channels) arrays from raw interleaved PCM, as the bytes arrive; whole frames only."""
    frame_bytes = dtype.itemsize * channels
    want = frames * frame_bytes
    try:
        fd = source.fileno()
    except (AttributeError, OSError, ValueError):
        fd = None
    pending = b""
    while not interrupt.stopped:
        if fd is not None:
            ready, _, _ = select.select([fd], [], [], POLL_S)
            if not ready:
                continue
            data = os.read(fd, want)
        else:
            data = source.read(want)
        if not data:
            break
        pending += data
        whole = len(pending) - len(pending) % frame_bytes
        if whole:
            yield np.frombuffer(pending[:whole], dtype).reshape(-1, channels)
            pending = pending[whole:]
    if pending and not interrupt.stopped:
        raise InputError(
            f"stdin: {len(pending)} trailing byte(s) do not make a whole frame "
            f"({channels} channel(s) x {dtype.itemsize} bytes)"
        )


def _file_chunks(f, frames: int, realtime: bool, interrupt: _Interrupt, where: str) -> Iterator[np.ndarray]:
    from ..audio import read_blocks

    begin, sent = time.perf_counter(), 0
    for block in read_blocks(f, frames, where):
        if interrupt.stopped:
            return
        if realtime:  # release audio no faster than it would arrive live
            while not interrupt.stopped:
                ahead = sent / f.samplerate + len(block) / f.samplerate - (time.perf_counter() - begin)
                if ahead <= 0:
                    break
                time.sleep(min(ahead, POLL_S))
            if interrupt.stopped:
                return
        sent += len(block)
        yield block


def one_audio_file(source: str) -> Path:
    """The one audio file that ``source`` (a file, or a folder or pattern naming just one) stands for."""
    files = audio_paths([source])
    if len(files) > 1:
        raise InputError(f"{source}: {len(files)} audio files; stream plays one (predict takes many)")
    return files[0]


@app.command()
@with_load_options
@with_event_options()
@with_runtime_options
@with_window_options(window=True)
def stream(
    model: Annotated[Path, typer.Argument(help="Checkpoint (.pth, Hugging Face dir) or exported artifact dir.")],
    source: Annotated[
        str, typer.Argument(help="Audio file (a folder or pattern naming one file), or - for raw PCM on stdin.")
    ] = "-",
    pcm_format: Annotated[str, typer.Option("--format", help="Raw PCM on stdin: s16le | f32le.")] = "s16le",
    rate: Annotated[int, typer.Option(help="Sample rate of the PCM on stdin (resampled to the model's).")] = 16000,
    channels: Annotated[int, typer.Option(help="Interleaved channels of the PCM on stdin (averaged).")] = 1,
    realtime: Annotated[bool, typer.Option("--realtime", help="Play a file at real-time speed.")] = False,
    chunk: Annotated[float, typer.Option(help="Seconds of audio per read.")] = 0.1,
    top_k: TopKOption = 5,
    rollup: RollupOption = None,
    options=None,
    runtime: Runtime | None = None,
    windows: Windows | None = None,
    event_options: EventOptions | None = None,
) -> None:
    """Tag audio as it arrives: one JSON line per window and per event, a summary at the end."""
    from .. import load
    from ..audio import open_audio
    from ..events import EventTracker
    from ..pipeline import top_scores

    if pcm_format not in PCM_FORMATS:
        raise InputError(f"--format must be one of {', '.join(PCM_FORMATS)}, not {pcm_format!r}")
    if rate <= 0 or channels <= 0:
        raise InputError(f"--rate and --channels must be positive, got {rate} and {channels}")
    if not chunk > 0:
        raise InputError(f"--chunk must be positive, got {chunk}")
    from_stdin = source == "-"
    if realtime and from_stdin:
        raise InputError("--realtime paces a file; audio on stdin already arrives in real time")
    runtime.check_device()
    if not from_stdin:
        source = str(one_audio_file(source))
    audio_file = None if from_stdin else open_audio(source)
    clf = load(model, device=runtime.device, options=options, backend=runtime.backend)
    interrupt = _Interrupt()
    try:
        parents = model_rollup(clf.labels, rollup)
        input_rate = rate if audio_file is None else audio_file.samplerate
        input_channels = channels if audio_file is None else audio_file.channels
        s = clf.stream(hop=windows.hop, window=windows.window, sample_rate=input_rate, batch_size=windows.batch_size)
        s.where = "stdin" if audio_file is None else source
        tracker = None
        if event_options.wanted:  # with --rollup, events of the parents
            config = event_options.config(clf.labels, model, parents)
            tracker = EventTracker(clf.labels if parents is None else parents.labels, config, s.hop, clf.sample_rate)
        print_json_line(
            {
                "type": "start",
                "model": str(model),
                "backend": clf.backend.name,
                "sample_rate": clf.sample_rate,
                "input_rate": input_rate,
                "channels": input_channels,
                "window": s.window / clf.sample_rate,
                "hop": s.hop / clf.sample_rate,
                "labels": len(clf.labels),
            }
        )
        frames = max(1, seconds_to_samples(chunk, input_rate))  # audio frames (all channels) per read
        counts = {"windows": 0, "events": 0}
        latencies: list[float] = []
        compute = 0.0

        def event_line(e) -> dict:
            return {"type": "event", **(e.to_json() if parents is None else parents.event_json(e))}

        def emit(windows, took: float, final: bool) -> None:
            for w in windows:
                top = top_scores(w.scores, clf.labels, top_k)
                line = {"type": "window", "index": w.index, "start": w.start, "end": w.end, "top": top}
                if parents is not None:
                    line["rollup"] = parents.to_json(w.scores)
                print_json_line(line)
                latencies.append(took)
                counts["windows"] += 1
                if tracker is not None:
                    scores = w.scores if parents is None else parents.apply(w.scores)
                    for e in tracker.update(w.start_sample, w.end_sample, scores):
                        print_json_line(event_line(e))
                        counts["events"] += 1
            if final and tracker is not None:
                for e in tracker.flush():
                    print_json_line(event_line(e))
                    counts["events"] += 1

        with interrupt.installed():
            if audio_file is None:
                chunks = _pcm_chunks(sys.stdin.buffer, PCM_FORMATS[pcm_format], channels, frames, interrupt)
            else:
                chunks = _file_chunks(audio_file, frames, realtime, interrupt, source)
            for x in chunks:
                begin = time.perf_counter()
                done = s.push(x)
                took = time.perf_counter() - begin
                compute += took
                emit(done, took, final=False)
            begin = time.perf_counter()
            try:
                done = s.flush()
            except InputError:
                if not interrupt.stopped:  # too little audio: an error, unless the user stopped early
                    raise
                done = []
            took = time.perf_counter() - begin
            compute += took
            emit(done, took, final=True)
        lat_ms = np.asarray(latencies) * 1000
        print_json_line(
            {
                "type": "summary",
                **counts,
                "duration": s.duration,
                "compute_s": compute,
                "rtf": compute / s.duration if s.duration else None,
                "latency_ms": {
                    "p50": float(np.percentile(lat_ms, 50)) if len(lat_ms) else None,
                    "p99": float(np.percentile(lat_ms, 99)) if len(lat_ms) else None,
                    "max": float(lat_ms.max()) if len(lat_ms) else None,
                },
                "interrupted": interrupt.stopped,
            }
        )
    finally:
        clf.close()
        if audio_file is not None:
            audio_file.close()
