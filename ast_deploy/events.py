"""Sound events from per-window scores: thresholds with hysteresis, merge gap, minimum duration.

:func:`detect_events` is the offline function over all windows of a signal; :class:`EventTracker`
gives the same events window by window as a stream produces them, each as soon as it is final.
The algorithm and the time convention (a window stands for ``[centre - hop/2, centre + hop/2]``
clipped to itself, computed in half samples) are specified in docs/streaming.md, section 4.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import InputError
from .windows import hop_length


@dataclass(frozen=True)
class Event:
    label: str
    index: int
    onset: float  # seconds
    offset: float  # seconds
    peak: float  # the highest score of the label over the event's windows

    def to_json(self) -> dict:
        return {"label": self.label, "index": self.index, "onset": self.onset, "offset": self.offset, "peak": self.peak}


@dataclass(frozen=True)
class EventConfig:
    """``threshold`` / ``off_threshold`` for every label, ``thresholds`` {label index: (on, off)} for some."""

    threshold: float = 0.5
    off_threshold: float | None = None  # default: the on threshold (no hysteresis)
    thresholds: dict[int, tuple[float, float]] = field(default_factory=dict)
    min_duration: float = 0.0
    merge_gap: float = 0.0

    def __post_init__(self) -> None:
        for name in ("threshold", "off_threshold", "min_duration", "merge_gap"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise InputError(f"{name.replace('_', '-')} must be a finite number, got {value}")
        if self.min_duration < 0 or self.merge_gap < 0:
            raise InputError("min-duration and merge-gap must not be negative")
        if self.off_threshold is not None and self.off_threshold > self.threshold:
            raise InputError(f"off threshold {self.off_threshold} is above the on threshold {self.threshold}")
        for index, (on, off) in self.thresholds.items():
            if not (math.isfinite(on) and math.isfinite(off)):
                raise InputError(f"thresholds of label {index} must be finite numbers")
            if off > on:
                raise InputError(f"off threshold {off} of label {index} is above its on threshold {on}")

    def on_off(self, num_labels: int) -> tuple[np.ndarray, np.ndarray]:
        """(on, off) thresholds per label, float64."""
        on = np.full(num_labels, self.threshold, np.float64)
        off = np.full(num_labels, self.threshold if self.off_threshold is None else self.off_threshold, np.float64)
        for index, (a, b) in self.thresholds.items():
            if not 0 <= index < num_labels:
                raise InputError(f"threshold for label index {index}, but the model has {num_labels} labels")
            on[index], off[index] = a, b
        return on, off


def read_thresholds(path: str | Path, labels: Sequence[str], off_threshold: float | None = None) -> dict:
    """Rows ``label,on[,off]`` of a CSV -> {label index: (on, off)} (docs/streaming.md, section 4).

    A label is its display name, or an integer index when no label has that name. A row without
    ``off`` uses ``min(on, off_threshold)`` when ``off_threshold`` is given, else ``on``.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read thresholds ({e})") from None
    by_name = {name: i for i, name in enumerate(labels)}
    out: dict[int, tuple[float, float]] = {}
    first = True  # the header, if any, is the first row that is neither blank nor a comment
    for line_no, row in enumerate(csv.reader(text.splitlines()), 1):
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        row = [c.strip() for c in row]
        header, first = first and row[0].lower() == "label" and "label" not in by_name, False
        if header:
            continue
        where = f"{path}:{line_no}"
        if len(row) not in (2, 3):
            raise InputError(f"{where}: expected label,on[,off], got {len(row)} fields")
        name = row[0]
        if name in by_name:
            index = by_name[name]
        elif name.isdigit() and int(name) < len(labels):
            index = int(name)
        else:
            raise InputError(f"{where}: unknown label {name!r}")
        try:
            on = float(row[1])
            off = float(row[2]) if len(row) == 3 else (on if off_threshold is None else min(on, off_threshold))
        except ValueError:
            raise InputError(f"{where}: thresholds must be numbers, got {','.join(row[1:])!r}") from None
        if not (math.isfinite(on) and math.isfinite(off)):
            raise InputError(f"{where}: thresholds must be finite numbers")
        if off > on:
            raise InputError(f"{where}: off threshold {off} is above the on threshold {on}")
        out[index] = (on, off)
    return out


def segment(start: int, end: int, hop: int) -> tuple[int, int]:
    """The part of window ``[start, end)`` (samples) that stands for it in an event, in half samples:
    ``[centre - hop/2, centre + hop/2]`` clipped to the window."""
    return max(2 * start, start + end - hop), min(2 * end, start + end + hop)


class EventTracker:
    """Events window by window: ``update(start, end, scores)`` returns the events that became final,
    ``flush()`` the rest. Labels are tracked independently (docs/streaming.md, section 4)."""

    def __init__(self, labels: Sequence[str], config: EventConfig, hop: int, sample_rate: int):
        self.labels = list(labels)
        self.config = config
        self.hop = int(hop)
        self.rate2 = 2.0 * sample_rate  # half samples per second
        self.on, self.off = config.on_off(len(self.labels))
        n = len(self.labels)
        self._active = np.zeros(n, bool)
        self._cur: list[list | None] = [None] * n  # [a2, b2, peak] of the open raw event
        self._pend: list[list | None] = [None] * n  # closed (possibly merged) event not yet final
        self.closed = False

    def _emit(self, index: int, e: list, out: list[Event]) -> None:
        a2, b2, peak = e
        if (b2 - a2) / self.rate2 >= self.config.min_duration:
            out.append(Event(self.labels[index], index, a2 / self.rate2, b2 / self.rate2, float(peak)))

    def _close(self, index: int) -> None:
        cur, pend = self._cur[index], self._pend[index]
        # A pending event is still there only when the gap to this one is <= merge_gap: merge.
        self._pend[index] = cur if pend is None else [pend[0], max(pend[1], cur[1]), max(pend[2], cur[2])]
        self._cur[index] = None
        self._active[index] = False

    def update(self, start: int, end: int, scores: np.ndarray) -> list[Event]:
        if self.closed:
            raise InputError("event tracker was flushed; no more windows can be added")
        a2, b2 = segment(start, end, self.hop)
        x = np.asarray(scores, np.float32).astype(np.float64)
        out: list[Event] = []
        for i in range(len(self.labels)):
            score = x[i]
            if self._active[i]:
                if score >= self.off[i]:
                    cur = self._cur[i]
                    cur[1] = b2
                    cur[2] = max(cur[2], score)
                else:
                    self._close(i)
                continue
            pend = self._pend[i]
            if pend is not None and (a2 - pend[1]) / self.rate2 > self.config.merge_gap:
                self._emit(i, pend, out)
                self._pend[i] = None
            if score >= self.on[i]:
                self._cur[i] = [a2, b2, score]
                self._active[i] = True
        return out

    def flush(self) -> list[Event]:
        out: list[Event] = []
        if self.closed:
            return out
        self.closed = True
        for i in range(len(self.labels)):
            if self._active[i]:
                self._close(i)
            if self._pend[i] is not None:
                self._emit(i, self._pend[i], out)
                self._pend[i] = None
        return out


def detect_events(
    starts: Iterable[int],
    ends: Iterable[int],
    scores: np.ndarray,
    labels: Sequence[str],
    config: EventConfig,
    hop: int,
    sample_rate: int,
) -> list[Event]:
    """Events of a whole signal from its windows (sample ranges, in order) and their scores
    (windows, labels), sorted by (onset, label index).

    Written independently of :class:`EventTracker` (raw runs, then merge, then duration filter),
    so that the tests can hold one against the other.
    """
    scores = np.asarray(scores, np.float32).astype(np.float64)
    segs = [segment(s, e, hop) for s, e in zip(starts, ends, strict=True)]
    if len(segs) != len(scores):
        raise ValueError("one row of scores per window")
    on, off = config.on_off(len(labels))
    rate2 = 2.0 * sample_rate
    events: list[Event] = []
    for j in range(len(labels)):
        runs: list[list] = []  # raw events: runs of windows active under hysteresis
        active = False
        for (a2, b2), x in zip(segs, scores[:, j], strict=True):
            if active and x >= off[j]:
                runs[-1][1], runs[-1][2] = b2, max(runs[-1][2], x)
            elif active:
                active = False
            elif x >= on[j]:
                runs.append([a2, b2, x])
                active = True
        merged: list[list] = []
        for run in runs:
            if merged and (run[0] - merged[-1][1]) / rate2 <= config.merge_gap:
                merged[-1][1], merged[-1][2] = max(merged[-1][1], run[1]), max(merged[-1][2], run[2])
            else:
                merged.append(list(run))
        events.extend(
            Event(labels[j], j, a2 / rate2, b2 / rate2, float(peak))
            for a2, b2, peak in merged
            if (b2 - a2) / rate2 >= config.min_duration
        )
    events.sort(key=lambda e: (e.onset, e.index))
    return events


def prediction_events(prediction, config: EventConfig, hop_seconds: float | None = None) -> list[Event]:
    """Events of an offline :class:`~ast_deploy.pipeline.Prediction` made with ``hop_seconds``."""
    hop = hop_length(hop_seconds, prediction.sample_rate, prediction.window)
    return detect_events(
        prediction.starts,
        prediction.ends,
        prediction.window_scores,
        prediction.labels,
        config,
        hop,
        prediction.sample_rate,
    )


__all__ = ["Event", "EventConfig", "EventTracker", "detect_events", "prediction_events", "read_thresholds", "segment"]
