"""The window rule, in one place: how long a model's window is, where windows start, how audio is cut.

Audio longer than the model's window is cut into windows ``hop`` samples apart (default hop: one
window); the last window is aligned to the end of the audio, so the end is always covered; audio
shorter than the window is one window, zero padded (in the feature domain, as in training); audio
shorter than one analysis frame has no window at all. docs/streaming.md (section 3) specifies it,
the C++ library follows it (``cpp/include/ast/windows.h``), and the golden cases of
``tests/golden/windows.json`` hold both to it.

The rule is written in two halves so that the stream can apply it as samples arrive:
:func:`regular_window_count` (the windows ``0, H, 2H, ...`` that fit whole) and
:func:`closing_window` (what the end of the audio adds). :func:`window_starts` is the two together.

A leaf module: NumPy only, so that the front end, export, the stream and the manifest all take their
windows from here without importing each other.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from .errors import InputError


class FrameGeometry(Protocol):
    """What the window rule needs of a front end (``ast_deploy.frontend.FrontEndConfig``)."""

    @property
    def window_samples(self) -> int: ...  # the samples the model's frames span at its rate

    @property
    def window_size(self) -> int: ...  # one analysis frame, in samples

    @property
    def frame_length_ms(self) -> float: ...  # the same frame in milliseconds (25), for messages


# --- lengths: seconds and the model -------------------------------------------------------------


def window_length(graph_samples: int | None, frontend: FrameGeometry) -> int:
    """Samples per window: the exported graph's fixed input length (``InputSpec.num_samples``, a waveform
    graph's ``--clip-seconds``), else exactly the model's frames."""
    return graph_samples or frontend.window_samples


def frame_samples(frontend: FrameGeometry) -> int:
    """Samples of one analysis frame: the shortest audio that has any features (and so a window)."""
    return int(frontend.window_size)


def seconds_to_samples(seconds: float, sample_rate: int) -> int:
    """``round(seconds * rate)``, half to even (C's ``nearbyint`` in the default rounding mode): the one
    conversion of a duration into samples, here and in C++."""
    return round(seconds * sample_rate)


def _positive_seconds(name: str, seconds: float) -> float:
    if not math.isfinite(seconds) or seconds <= 0:
        raise InputError(f"{name} must be positive, got {seconds}")
    return seconds


def hop_samples(hop_seconds: float | None, sample_rate: int) -> int | None:
    """The hop in samples, at least 1; ``None`` stays ``None`` (one window: hop = window)."""
    if hop_seconds is None:
        return None
    return max(1, seconds_to_samples(_positive_seconds("hop", hop_seconds), sample_rate))


def hop_length(hop_seconds: float | None, sample_rate: int, window: int) -> int:
    """Samples between window starts: :func:`hop_samples` of ``hop_seconds``, else one window."""
    return hop_samples(hop_seconds, sample_rate) or window


def window_in_samples(window_seconds: float | None, sample_rate: int) -> int | None:
    """A window asked for in seconds, in samples; ``None`` stays ``None`` (the model's window). Whether it
    fits the model is the stream's check (between one frame and the model's window)."""
    if window_seconds is None:
        return None
    return seconds_to_samples(_positive_seconds("window", window_seconds), sample_rate)


def check_audio_length(num_samples: int, frame_samples: int, frame_ms: float, sample_rate: int, where: str) -> None:
    """Refuse audio without a single analysis frame (and so without a window): one line naming ``where``."""
    if num_samples == 0:
        raise InputError(f"{where}: audio has no samples")
    if num_samples < frame_samples:
        raise InputError(
            f"{where}: audio is {num_samples / sample_rate * 1000:.1f} ms long, "
            f"shorter than one {frame_ms:g} ms analysis frame"
        )


# --- where windows start ------------------------------------------------------------------------


def regular_window_count(num_samples: int, window: int, hop: int) -> int:
    """Windows ``0, H, 2H, ...`` that fit whole in ``num_samples``: all a stream can emit before its end."""
    return 0 if num_samples < window else (num_samples - window) // hop + 1


def closing_window(num_samples: int, window: int, hop: int) -> int | None:
    """The start of the window the end of the audio adds after the regular ones, or ``None``: ``0`` (one
    short window) when none fits whole, ``num_samples - window`` when audio is left after the last."""
    regular = regular_window_count(num_samples, window, hop)
    if regular == 0:
        return 0
    return num_samples - window if (regular - 1) * hop + window < num_samples else None


def window_starts(num_samples: int, window: int, hop: int) -> list[int]:
    """Window starts covering ``num_samples``; the last window ends exactly at the end."""
    starts = list(range(0, regular_window_count(num_samples, window, hop) * hop, hop))
    last = closing_window(num_samples, window, hop)
    return starts if last is None else [*starts, last]


def window_count(num_samples: int, window: int, hop: int) -> int:
    """``len(window_starts(...))`` without building the list (an hour at a small hop is many windows)."""
    return regular_window_count(num_samples, window, hop) + (closing_window(num_samples, window, hop) is not None)


def window_end(start: int, window: int, num_samples: int) -> int:
    """The end (exclusive) of the window at ``start``: a window never reaches past the audio."""
    return min(start + window, num_samples)


def window_ends(starts: Sequence[int], window: int, num_samples: int) -> list[int]:
    return [window_end(s, window, num_samples) for s in starts]


# --- cutting --------------------------------------------------------------------------------------


def pack_windows(pieces: Sequence[np.ndarray], window: int) -> tuple[np.ndarray, np.ndarray]:
    """Pieces of audio (each at most ``window`` samples) as model input: (rows (B, window) float32, zero
    padded past each piece, valid lengths (B,) int64). Only these rows are allocated, so callers cut one
    batch at a time."""
    rows = np.zeros((len(pieces), window), np.float32)
    lengths = np.zeros(len(pieces), np.int64)
    for row, piece in enumerate(pieces):
        rows[row, : len(piece)] = piece
        lengths[row] = len(piece)
    return rows, lengths


def cut_windows(samples: np.ndarray, window: int, hop: int) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Every window of ``samples`` at once: (windows (W, window) zero padded, valid lengths (W,), starts).
    For short clips (parity, calibration); long audio goes through the stream."""
    starts = window_starts(len(samples), window, hop)
    rows, lengths = pack_windows([samples[s : s + window] for s in starts], window)
    return rows, lengths, starts


__all__ = [
    "FrameGeometry",
    "check_audio_length",
    "closing_window",
    "cut_windows",
    "frame_samples",
    "hop_length",
    "hop_samples",
    "pack_windows",
    "regular_window_count",
    "seconds_to_samples",
    "window_count",
    "window_end",
    "window_ends",
    "window_in_samples",
    "window_length",
    "window_starts",
]
