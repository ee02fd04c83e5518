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
from typing import TYPE_CHECKING

import numpy as np
import soxr

from .audio import RESAMPLE_QUALITY, check_rate, open_audio, read_blocks, to_mono
from .errors import InputError
from .windows import hop_samples

if TYPE_CHECKING:
    from .pipeline import Classifier

ProgressCallback = Callable[[int, int], None]  # (windows done, windows expected in all)


def num_windows(num_samples: int, window: int, hop: int) -> int:
    """``len(pipeline.window_starts(num_samples, window, hop))`` without building the list."""
    if num_samples <= window:
        return 1
    regular = (num_samples - window) // hop + 1
    return regular + int((regular - 1) * hop + window < num_samples)


@dataclass
class StreamWindow:
    """One scored window: samples ``[start_sample, end_sample)`` of the stream at ``sample_rate``."""

    index: int
    start_sample: int
    end_sample: int
    sample_rate: int
    scores: np.ndarray = field(repr=False)  # float32 (labels,): the model's activation of its logits

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
    slices of the window list as when the whole file was windowed at once.
    """

    def __init__(
        self,
        classifier: Classifier,
        hop: int | None = None,
        window: int | None = None,
        sample_rate: int | None = None,
        batch_size: int = 8,
        where: str = "stream",
        eager: bool = True,
    ):
        self.classifier = classifier
        self.where = where
        self.sample_rate = classifier.sample_rate
        self.input_rate = self.sample_rate if sample_rate is None else check_rate(sample_rate, where)
        self.model_window = classifier.window
        self.frame_length = int(classifier.frontend_config.window_size)
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
        max_batch = classifier.backend.spec.max_batch or batch_size
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
        self._last_start: int | None = None
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
        if n == 0:
            raise InputError(f"{self.where}: audio has no samples")
        if n < self.frame_length:
            raise InputError(
                f"{self.where}: audio is {n / self.sample_rate * 1000:.1f} ms long, shorter than one "
                f"{self.classifier.frontend_config.frame_length_ms:g} ms analysis frame"
            )
        self._enqueue_regular()
        if self._last_start is None:  # shorter than one window: one window, zero padded
            self._pending.append((0, n))
        elif self._last_start + self.window < n:  # audio left over: a last window ending at the end
            self._pending.append((n - self.window, n))
        return self._advance(final=True)

    # --- windows -----------------------------------------------------------------------------

    def _enqueue_regular(self) -> None:
        while self._regular * self.hop + self.window <= self.num_samples:
            start = self._regular * self.hop
            self._pending.append((start, start + self.window))
            self._last_start = start
            self._regular += 1

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
        if self.eager or self._scored == 0 or not self.classifier.backend.static_batch_shapes:
            return rows
        return self.batch

    def _score(self, batch: list[tuple[int, int]], pad_to: int = 1) -> list[StreamWindow]:
        # Cut this batch's windows only: (batch, model window), zero padded past each valid length.
        windows = np.zeros((len(batch), self.model_window), np.float32)
        lengths = np.zeros(len(batch), np.int64)
        for row, (start, end) in enumerate(batch):
            windows[row, : end - start] = self._buf[start - self._buf_start : end - self._buf_start]
            lengths[row] = end - start
        scores = self.classifier.score_batch(windows, lengths, pad_to)
        out = []
        for (start, end), row in zip(batch, scores, strict=True):
            out.append(StreamWindow(self._scored, start, end, self.sample_rate, row))
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


def _block_frames(stream: AudioStream, input_rate: int) -> int:
    """Input frames per block: about one batch of hops (so most blocks complete one batch), >= 4096."""
    model_samples = stream.batch * stream.hop
    return max(4096, min(1 << 20, math.ceil(model_samples * input_rate / stream.sample_rate)))


def _collect(stream: AudioStream, blocks, expected: int, progress: ProgressCallback | None) -> Scored:
    scores, starts = [], []

    def take(windows: list[StreamWindow]) -> None:
        for w in windows:
            scores.append(w.scores)
            starts.append(w.start_sample)
        if windows and progress is not None:
            progress(len(starts), max(expected, len(starts)))

    for block in blocks:
        take(stream.push(block))
    take(stream.flush())
    return Scored(np.stack(scores), starts, stream.num_samples)


def expected_windows(stream: AudioStream, input_frames: int) -> int:
    """Windows a signal of ``input_frames`` at the stream's input rate will give (for progress bars)."""
    n = round(input_frames * stream.sample_rate / stream.input_rate)
    return num_windows(max(n, 1), stream.window, stream.hop)


def score_file(
    classifier: Classifier,
    path: str | Path,
    hop: int | None = None,
    batch_size: int = 8,
    progress: ProgressCallback | None = None,
) -> Scored:
    """Per-window scores of a sound file, decoded block by block (never held whole)."""
    where = str(path)
    with open_audio(path) as f:
        stream = AudioStream(classifier, hop, sample_rate=f.samplerate, batch_size=batch_size, where=where, eager=False)
        frames = f.frames if f.frames > 0 else 0
        return _collect(
            stream,
            read_blocks(f, _block_frames(stream, f.samplerate), where),
            expected_windows(stream, frames),
            progress,
        )


def score_array(
    classifier: Classifier,
    samples: np.ndarray,
    sample_rate: int | None = None,
    hop: int | None = None,
    batch_size: int = 8,
    where: str = "<array>",
    progress: ProgressCallback | None = None,
) -> Scored:
    """Per-window scores of an in-memory signal ((N,) or (N, channels)), fed as views block by block:
    neither the array nor its windows are copied whole."""
    x = np.asarray(samples)
    stream = AudioStream(classifier, hop, sample_rate=sample_rate, batch_size=batch_size, where=where, eager=False)
    if x.dtype.kind in "fiu" and x.ndim in (1, 2) and x.shape[0] == 0:
        raise InputError(f"{where}: audio has no samples")
    if x.ndim not in (1, 2):  # let the stream name the problem
        stream.push(x)
    step = _block_frames(stream, stream.input_rate)
    blocks = (x[i : i + step] for i in range(0, len(x), step))
    return _collect(stream, blocks, expected_windows(stream, len(x)), progress)


__all__ = ["AudioStream", "Scored", "StreamWindow", "hop_samples", "num_windows", "score_array", "score_file"]
