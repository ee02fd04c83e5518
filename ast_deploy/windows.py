"""The window rule, in one place: how long a model's window is, where windows start, how audio is cut.

Audio longer than the model's window is cut into windows ``hop`` samples apart (default hop: one
window); the last window is aligned to the end of the audio, so the end is always covered; audio
shorter than the window is one window, zero padded (in the feature domain, as in training). The C++
library follows the same rule (``cpp/src/streaming.cpp``), and golden cases check both.

A leaf module: NumPy only, so that the front end, export, the stream and the C++-facing manifest all
take their windows from here without importing each other.
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np

from .errors import InputError


class FrameGeometry(Protocol):
    """What the window rule needs of a front end (``ast_deploy.frontend.FrontEndConfig``)."""

    @property
    def window_samples(self) -> int: ...  # the samples the model's frames span at its rate


def window_length(graph_samples: int | None, frontend: FrameGeometry) -> int:
    """Samples per window: the exported graph's fixed input length (``InputSpec.num_samples``, a waveform
    graph's ``--clip-seconds``), else exactly the model's frames."""
    return graph_samples or frontend.window_samples


def hop_samples(hop_seconds: float | None, sample_rate: int) -> int | None:
    """Seconds -> samples, ``max(1, round(hop * rate))`` (round half to even, as C's nearbyint); ``None`` stays
    ``None`` (one window)."""
    if hop_seconds is None:
        return None
    if not math.isfinite(hop_seconds) or hop_seconds <= 0:
        raise InputError(f"hop must be positive, got {hop_seconds}")
    return max(1, round(hop_seconds * sample_rate))


def window_starts(num_samples: int, window: int, hop: int) -> list[int]:
    """Window starts covering ``num_samples``; the last window ends exactly at the end."""
    if num_samples <= window:
        return [0]
    starts = list(range(0, num_samples - window + 1, hop))
    if starts[-1] + window < num_samples:
        starts.append(num_samples - window)
    return starts


def window_count(num_samples: int, window: int, hop: int) -> int:
    """``len(window_starts(...))`` without building the list (an hour at a small hop is many windows)."""
    if num_samples <= window:
        return 1
    full = (num_samples - window) // hop + 1
    return full + ((full - 1) * hop + window < num_samples)


def cut_windows(samples: np.ndarray, window: int, hop: int) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """(windows (W, window) zero padded, valid lengths (W,), starts)."""
    starts = window_starts(len(samples), window, hop)
    out = np.zeros((len(starts), window), dtype=np.float32)
    lengths = np.zeros(len(starts), dtype=np.int64)
    for i, s in enumerate(starts):
        chunk = samples[s : s + window]
        out[i, : len(chunk)] = chunk
        lengths[i] = len(chunk)
    return out, lengths, starts


__all__ = ["cut_windows", "hop_samples", "window_count", "window_length", "window_starts"]
