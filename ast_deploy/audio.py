"""Audio in: any file soundfile reads (WAV, FLAC, OGG/Vorbis, MP3, ...) or an in-memory array,
mixed down to mono and resampled with a band-limited resampler (soxr) to the model's rate."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from .errors import InputError

SAMPLE_RATE = 16000
# libsoxr's quality for every resampling here (one-shot and streaming: the same filter).
RESAMPLE_QUALITY = "HQ"


def to_mono(samples, where: str = "audio", first_sample: int = 0) -> np.ndarray:
    """(N,) or (N, channels) numeric samples -> mono float32 (N,) at the same rate, checked.

    Integer PCM is scaled to [-1, 1); a 2-D array is read as (frames, channels), soundfile's layout,
    and its channels are averaged. ``first_sample`` is the position of ``samples[0]`` in a longer
    signal (a stream's chunk, a file's block), so that errors name the sample in the whole signal.
    """
    x = np.asarray(samples)
    if x.dtype.kind not in "fiu":
        raise InputError(f"{where}: samples must be numeric, got dtype {x.dtype}")
    if x.dtype.kind in "iu":  # integer PCM -> [-1, 1)
        info = np.iinfo(x.dtype)
        x = (x.astype(np.float64) - (info.max + info.min + 1) / 2) / (2.0 ** (info.bits - 1))
    x = x.astype(np.float32, copy=False)
    if x.ndim == 2:
        x = x.mean(axis=1)
    elif x.ndim != 1:
        raise InputError(f"{where}: expected samples of shape (N,) or (N, channels), got {x.shape}")
    if not np.isfinite(x).all():
        bad = first_sample + int(np.flatnonzero(~np.isfinite(x))[0])
        raise InputError(f"{where}: audio contains NaN or infinite samples (first at sample {bad})")
    return x


def check_rate(sample_rate, where: str = "audio") -> int:
    if not isinstance(sample_rate, (int, np.integer)) or isinstance(sample_rate, bool) or sample_rate <= 0:
        raise InputError(f"{where}: sample rate must be a positive integer, got {sample_rate!r}")
    return int(sample_rate)


def prepare_audio(samples, sample_rate: int, target_rate: int = SAMPLE_RATE, where: str = "audio") -> np.ndarray:
    """(N,) or (N, channels) samples at ``sample_rate`` -> mono float32 (N',) at ``target_rate``.

    A 2-D array is read as (frames, channels), soundfile's layout; channels are averaged.
    """
    check_rate(sample_rate, where)
    x = np.asarray(samples)
    if x.dtype.kind in "fiu" and x.ndim in (1, 2) and x.size == 0:
        raise InputError(f"{where}: audio has no samples")
    x = to_mono(x, where)
    if sample_rate != target_rate:
        x = soxr.resample(x, sample_rate, target_rate, quality=RESAMPLE_QUALITY).astype(np.float32, copy=False)
    return np.ascontiguousarray(x)


def open_audio(path: str | Path) -> sf.SoundFile:
    """An open sound file for block reads (:func:`read_blocks`); errors as one line."""
    path = Path(path)
    with _read_errors(path):
        return sf.SoundFile(path)


@contextlib.contextmanager
def _read_errors(path: Path) -> Iterator[None]:
    """A missing, directory or unreadable ``path`` as one :class:`InputError` line."""
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not an audio file")
    try:
        yield
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        raise InputError(f"{path}: not a readable audio file ({str(e).strip() or e.__class__.__name__})") from None
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror or e})") from None


def read_blocks(f: sf.SoundFile, frames: int, where: str) -> Iterator[np.ndarray]:
    """Mono float32 blocks of up to ``frames`` frames at the file's rate, decoded one at a time.

    Concatenated they equal ``to_mono(sf.read(path, dtype="float32", always_2d=True)[0])`` exactly.
    """
    position = 0
    while True:
        try:
            block = f.read(frames, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as e:
            raise InputError(f"{where}: cannot decode ({str(e).strip() or e.__class__.__name__})") from None
        if len(block) == 0:
            return
        yield to_mono(block, where, first_sample=position)
        position += len(block)


# Decoded past the end of a ``load_audio(..., head=N)`` request, so the resampler's filter sees the
# same neighbourhood for the samples kept as in a whole-file read (its edge effects fall in the margin).
HEAD_MARGIN_SECONDS = 0.5


def load_audio(path: str | Path, target_rate: int = SAMPLE_RATE, head: int | None = None) -> np.ndarray:
    """Read a sound file as mono float32 at ``target_rate``.

    ``head``: only the first ``head`` samples (at ``target_rate``) are wanted, and only about that
    much is decoded, whatever the file's length; they equal the whole-file read's first ``head``
    samples (exactly without resampling, within 1e-6 with it: tested).
    """
    path = Path(path)
    with _read_errors(path):
        if head is None:
            samples, sample_rate = sf.read(path, dtype="float32", always_2d=True)
        else:
            with sf.SoundFile(path) as f:
                sample_rate = f.samplerate
                frames = int(np.ceil((head / target_rate + HEAD_MARGIN_SECONDS) * sample_rate))
                samples = f.read(frames, dtype="float32", always_2d=True)
    x = prepare_audio(samples, sample_rate, target_rate, where=str(path))
    return x if head is None else x[:head]
