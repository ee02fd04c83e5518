"""Audio as it arrives: a stateful stream of windows, scored one batch at a time.

``clf.stream(hop=0.5)`` returns an :class:`AudioStream`; ``push(chunk)`` takes chunks of any size
(at the model's rate or another, resampled incrementally) and returns the windows that chunk
completed, scored; ``flush()`` ends the stream the way offline prediction ends a file (the last
window aligned to the end). Offline prediction of files and arrays is this stream over the file
(:func:`score_file`, :func:`score_array`), so memory is bounded by one window plus one block plus
one batch, however long the audio. The rules are specified in docs/streaming.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import soxr

from .audio import RESAMPLE_QUALITY, check_rate, open_audio, read_blocks, to_mono
from .errors import InputError
from .windows import (
    FrameGeometry,
    check_audio_length,
    closing_window,
    frame_samples,
    pack_windows,
    regular_window_count,
    window_count,
    window_end,
)

ProgressCallback = Callable[[int, int], None]  # (windows done, windows expected in all)


class WindowScorer(Protocol):
    """What a stream needs of a classifier (:class:`ast_deploy.pipeline.Classifier` is one): the model's
    rate, window and front end, its backend's batch limits, and one call that scores a batch of windows.
    The stream depends on this, not on the pipeline, which builds on the stream."""

    window: int  # samples per model window
    frontend_config: FrameGeometry

    @property
    def sample_rate(self) -> int: ...

    @property
    def max_batch(self) -> int | None: ...  # the largest batch the backend takes; None: any

    @property
    def static_batch_shapes(self) -> bool: ...  # one compilation per batch size (OpenVINO)

    def score_batch(self, windows: np.ndarray, lengths: np.ndarray, pad_to: int = 1) -> np.ndarray: ...

    # Scores and clip embeddings of one batch; called only by streams asked for embeddings.
    def outputs(
        self, windows: np.ndarray, lengths: np.ndarray, pad_to: int = 1, embedding: bool = True
    ) -> tuple[np.ndarray, np.ndarray | None]: ...


@dataclass
class StreamWindow:
    """One scored window: samples ``[start_sample, end_sample)`` of the stream at ``sample_rate``."""

    index: int
    start_sample: int
    end_sample: int
    sample_rate: int
    scores: np.ndarray = field(repr=False)  # float32 (labels,): the model's activation of its logits
    embedding: np.ndarray | None = field(default=None, repr=False)  # float32 (embed_dim,) when asked for

    @property
    def start(self) -> float:
        return self.start_sample / self.sample_rate

    @property
    def end(self) -> float:
        return self.end_sample / self.sample_rate


class AudioStream:
    """Windows of ``window`` samples every ``hop`` samples of a signal that arrives in chunks.

    ``eager=True`` (live use) scores every window as soon as a chunk completes it; ``eager=False``
    (offline) holds windows until a full batch is ready, so that batches are the same consecutive
    slices of the window list as when the whole file was windowed at once. ``embeddings=True``: each
    window also carries its clip embedding (from the same model call).
    """

    def __init__(
        self,
        classifier: WindowScorer,
        hop: int | None = None,
        window: int | None = None,
        sample_rate: int | None = None,
        batch_size: int = 8,
        where: str = "stream",
        eager: bool = True,
        embeddings: bool = False,
    ):
        self.classifier = classifier
        self.where = where
        self.embeddings = embeddings
        self.sample_rate = classifier.sample_rate
        self.input_rate = self.sample_rate if sample_rate is None else check_rate(sample_rate, where)
        self.model_window = classifier.window
        self.frame_length = frame_samples(classifier.frontend_config)
        self.window = self.model_window if window is None else int(window)
        if not self.frame_length <= self.window <= self.model_window:
            raise InputError(
                f"window must be between one {classifier.frontend_config.frame_length_ms:g} ms frame and the "
                f"model's window ({self.model_window / self.sample_rate:g} s), got {self.window / self.sample_rate:g} s"
            )
        if hop is not None and hop < 1:
            raise InputError(f"hop must be positive, got {hop} samples")
        self.hop = self.window if hop is None else int(hop)
        if batch_size < 1:
            raise InputError(f"batch size must be positive, got {batch_size}")
        max_batch = classifier.max_batch or batch_size
        self.batch = max(1, min(batch_size, max_batch))
        self.eager = eager
        # One resampler for the whole stream: its output equals one-shot soxr.resample of the whole
        # signal (docs/streaming.md, section 2), which is what offline load_audio does.
        self._resampler = (
            soxr.ResampleStream(self.input_rate, self.sample_rate, 1, dtype="float32", quality=RESAMPLE_QUALITY)
            if self.input_rate != self.sample_rate
            else None
        )
        self._buf = np.zeros(0, np.float32)
        self._buf_start = 0  # stream position (model rate) of _buf[0]
        self.num_samples = 0  # samples at the model's rate received so far
        self.input_samples = 0  # frames at the input rate received so far
        self._regular = 0  # regular windows (k*hop) enqueued
        self._pending: list[tuple[int, int]] = []  # (start, end) enqueued, not yet scored
        self._scored = 0
        self._channels: int | None = None
        self.closed = False

    # --- input -------------------------------------------------------------------------------

    @property
    def duration(self) -> float:
        return self.num_samples / self.sample_rate

    def _check_open(self) -> None:
        if self.closed:
            raise InputError(f"{self.where}: the stream was flushed; no more audio can be pushed")

    def _mono(self, samples) -> np.ndarray:
        x = np.asarray(samples)
        channels = x.shape[1] if x.ndim == 2 else 1
        if x.ndim in (1, 2):
            if self._channels is None:
                self._channels = channels
            elif channels != self._channels:
                raise InputError(
                    f"{self.where}: chunk has {channels} channel(s), the stream has {self._channels} "
                    f"(at sample {self.input_samples})"
                )
        x = to_mono(x, self.where, first_sample=self.input_samples)
        self.input_samples += len(x)
        return x

    def _append(self, x: np.ndarray) -> None:
        if len(x):
            self._buf = np.concatenate([self._buf, x]) if len(self._buf) else np.array(x, np.float32, copy=True)
            self.num_samples += len(x)

    def push(self, samples) -> list[StreamWindow]:
        """Append a chunk ((n,) or (n, channels), float or integer PCM, at the stream's input rate);
        returns the windows it completed, scored, in order."""
        self._check_open()
        x = self._mono(samples)
        if self._resampler is not None:
            x = self._resampler.resample_chunk(x)
        self._append(x)
        return self._advance(final=False)

    def flush(self) -> list[StreamWindow]:
        """End of input: drain the resampler, add the end-aligned (or single short) window, score the rest."""
        self._check_open()
        if self._resampler is not None:
            self._append(self._resampler.resample_chunk(np.zeros(0, np.float32), last=True))
        self.closed = True
        n = self.num_samples
        frontend = self.classifier.frontend_config
        check_audio_length(n, self.frame_length, frontend.frame_length_ms, self.sample_rate, self.where)
        self._enqueue_regular()
        last = closing_window(n, self.window, self.hop)  # the end-aligned window, or the one short window
        if last is not None:
            self._pending.append((last, window_end(last, self.window, n)))
        return self._advance(final=True)

    # --- windows -----------------------------------------------------------------------------

    def _enqueue_regular(self) -> None:
        regular = regular_window_count(self.num_samples, self.window, self.hop)  # never fewer than before
        self._pending.extend((k * self.hop, k * self.hop + self.window) for k in range(self._regular, regular))
        self._regular = regular

    def _advance(self, final: bool) -> list[StreamWindow]:
        self._enqueue_regular()
        out: list[StreamWindow] = []
        while len(self._pending) >= self.batch or (self._pending and (self.eager or final)):
            batch, self._pending = self._pending[: self.batch], self._pending[self.batch :]
            out.extend(self._score(batch, pad_to=self._padded_size(len(batch))))
        self._trim()
        return out

    def _padded_size(self, rows: int) -> int:
        """The batch size to run ``rows`` windows at. Offline, on a backend that compiles one static shape
        per batch size (OpenVINO: seconds and ~300 MB each for AST-base), a file's last partial batch
        runs padded to the full batch already run (a few wasted windows instead of a compilation).
        A file shorter than one batch runs its own size (padding it would cost compute on every such
        file), and so do live streams (latency)."""
        if self.eager or self._scored == 0 or not self.classifier.static_batch_shapes:
            return rows
        return self.batch

    def _score(self, batch: list[tuple[int, int]], pad_to: int = 1) -> list[StreamWindow]:
        # Cut this batch's windows only, each padded to the model's window (a shorter stream window is
        # fed as a short clip is).
        pieces = [self._buf[start - self._buf_start : end - self._buf_start] for start, end in batch]
        windows, lengths = pack_windows(pieces, self.model_window)
        if self.embeddings:
            scores, embeds = self.classifier.outputs(windows, lengths, pad_to)
        else:
            scores, embeds = self.classifier.score_batch(windows, lengths, pad_to), None
        out = []
        for i, ((start, end), row) in enumerate(zip(batch, scores, strict=True)):
            out.append(
                StreamWindow(self._scored, start, end, self.sample_rate, row, None if embeds is None else embeds[i])
            )
            self._scored += 1
        return out

    def _trim(self) -> None:
        """Drop samples no future window needs: keep from the next window's start, and always the
        last ``window`` samples (the end-aligned window at flush may need them)."""
        keep = min(self._regular * self.hop, self.num_samples - self.window)
        if self._pending:
            keep = min(keep, self._pending[0][0])
        keep = max(keep, self._buf_start)
        if keep > self._buf_start:
            self._buf = self._buf[keep - self._buf_start :]
            self._buf_start = keep


# --- offline: files and arrays through the stream -------------------------------------------------


@dataclass
class Scored:
    """Per-window scores of a whole signal: what offline prediction keeps."""

    scores: np.ndarray  # (windows, labels) float32
    starts: list[int]
    num_samples: int
    embeddings: np.ndarray | None = None  # (windows, embed_dim) float32, when asked for


def _block_frames(stream: AudioStream, input_rate: int) -> int:
    """Input frames per block: about one batch of hops (so most blocks complete one batch), >= 4096."""
    model_samples = stream.batch * stream.hop
    return max(4096, min(1 << 20, math.ceil(model_samples * input_rate / stream.sample_rate)))


def _collect(stream: AudioStream, blocks, expected: int, progress: ProgressCallback | None) -> Scored:
    # Scores are copied into one array sized for the expected windows (doubled if that falls short), not
    # kept as rows of each batch's result: those rows kept every batch's small score tensor alive,
    # scattered among the large buffers freed in between, and glibc could neither reuse nor return that
    # heap (peak RSS +340 MiB from 10 to 60 minutes of audio on a 10-label model at a 0.25 s hop).
    # Embeddings (when the stream computes them) are kept the same way, in a second array.
    scores = np.empty((0, 0), np.float32)
    embeds = np.empty((0, 0), np.float32) if stream.embeddings else None
    starts: list[int] = []

    def grow(array: np.ndarray, done: int, rows: int, width: int) -> np.ndarray:
        grown = np.empty((max(expected, 2 * len(array), done + rows), width), np.float32)
        if done:
            grown[:done] = array[:done]
        return grown

    def take(windows: list[StreamWindow]) -> None:
        nonlocal scores, embeds
        done = len(starts)
        if done + len(windows) > len(scores):
            scores = grow(scores, done, len(windows), len(windows[0].scores))
            if embeds is not None:
                embeds = grow(embeds, done, len(windows), len(windows[0].embedding))
        for row, w in enumerate(windows, done):
            scores[row] = w.scores
            if embeds is not None:
                embeds[row] = w.embedding
            starts.append(w.start_sample)
        if windows and progress is not None:
            progress(len(starts), max(expected, len(starts)))

    for block in blocks:
        take(stream.push(block))
    take(stream.flush())
    n = len(starts)

    def trimmed(array: np.ndarray | None) -> np.ndarray | None:
        return array if array is None or n == len(array) else array[:n].copy()

    return Scored(trimmed(scores), starts, stream.num_samples, trimmed(embeds))


def expected_windows(stream: AudioStream, input_frames: int) -> int:
    """Windows a signal of ``input_frames`` at the stream's input rate will give (for progress bars)."""
    n = round(input_frames * stream.sample_rate / stream.input_rate)
    return window_count(max(n, 1), stream.window, stream.hop)


def score_file(
    classifier: WindowScorer,
    path: str | Path,
    hop: int | None = None,
    batch_size: int = 8,
    progress: ProgressCallback | None = None,
    embeddings: bool = False,
) -> Scored:
    """Per-window scores (and with ``embeddings`` clip embeddings) of a sound file, decoded block by block
    (never held whole)."""
    where = str(path)
    with open_audio(path) as f:
        stream = AudioStream(
            classifier, hop, sample_rate=f.samplerate, batch_size=batch_size, where=where, eager=False,
            embeddings=embeddings,
        )  # fmt: skip
        frames = f.frames if f.frames > 0 else 0
        return _collect(
            stream,
            read_blocks(f, _block_frames(stream, f.samplerate), where),
            expected_windows(stream, frames),
            progress,
        )


def score_array(
    classifier: WindowScorer,
    samples: np.ndarray,
    sample_rate: int | None = None,
    hop: int | None = None,
    batch_size: int = 8,
    where: str = "<array>",
    progress: ProgressCallback | None = None,
    embeddings: bool = False,
) -> Scored:
    """Per-window scores (and with ``embeddings`` clip embeddings) of an in-memory signal ((N,) or
    (N, channels)), fed as views block by block: neither the array nor its windows are copied whole."""
    x = np.asarray(samples)
    stream = AudioStream(
        classifier, hop, sample_rate=sample_rate, batch_size=batch_size, where=where, eager=False, embeddings=embeddings
    )
    if x.dtype.kind in "fiu" and x.ndim in (1, 2) and x.shape[0] == 0:
        raise InputError(f"{where}: audio has no samples")
    if x.ndim not in (1, 2):  # let the stream name the problem
        stream.push(x)
    step = _block_frames(stream, stream.input_rate)
    blocks = (x[i : i + step] for i in range(0, len(x), step))
    return _collect(stream, blocks, expected_windows(stream, len(x)), progress)


__all__ = ["AudioStream", "Scored", "StreamWindow", "WindowScorer", "expected_windows", "score_array", "score_file"]
