"""Audio files in, labels out: windowing, batching and score aggregation over any backend.

Audio longer than the model's window is cut into windows (default hop: one window; the last
window is aligned to the end of the audio); each window's scores are aggregated by mean and max.
A clip shorter than the window is zero padded in the feature domain, as in training.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .audio import load_audio, prepare_audio
from .errors import InputError
from .frontend import FrontEndConfig, KaldiFbank
from .model import apply_activation
from .runtime.base import Backend

AudioInput = str | Path | tuple[np.ndarray, int]


def window_starts(num_samples: int, window: int, hop: int) -> list[int]:
    """Window starts covering ``num_samples``; the last window ends exactly at the end."""
    if num_samples <= window:
        return [0]
    starts = list(range(0, num_samples - window + 1, hop))
    if starts[-1] + window < num_samples:
        starts.append(num_samples - window)
    return starts


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


@dataclass
class Prediction:
    source: str
    sample_rate: int
    num_samples: int
    starts: list[int]
    window: int
    labels: list[str] = field(repr=False)
    window_scores: np.ndarray = field(repr=False)  # (windows, labels)

    @property
    def duration(self) -> float:
        return self.num_samples / self.sample_rate

    @property
    def mean_scores(self) -> np.ndarray:
        return self.window_scores.mean(axis=0)

    @property
    def max_scores(self) -> np.ndarray:
        return self.window_scores.max(axis=0)

    def top(self, k: int = 5, aggregate: str = "mean") -> list[dict]:
        ranked = self.mean_scores if aggregate == "mean" else self.max_scores
        order = np.argsort(-ranked, kind="stable")[:k]
        return [
            {
                "index": int(i),
                "label": self.labels[i],
                "score": float(ranked[i]),
                "mean": float(self.mean_scores[i]),
                "max": float(self.max_scores[i]),
            }
            for i in order
        ]

    def to_json(self, k: int = 5, aggregate: str = "mean") -> dict:
        timeline = []
        for start, scores in zip(self.starts, self.window_scores, strict=False):
            order = np.argsort(-scores, kind="stable")[:k]
            end = min(start + self.window, self.num_samples)
            timeline.append(
                {
                    "start": start / self.sample_rate,
                    "end": end / self.sample_rate,
                    "top": [{"index": int(i), "label": self.labels[i], "score": float(scores[i])} for i in order],
                }
            )
        return {
            "source": self.source,
            "duration": self.duration,
            "aggregate": aggregate,
            "top": self.top(k, aggregate),
            "windows": timeline,
        }


class Classifier:
    """Front end + backend + labels. ``clf.predict(["a.wav"], top_k=5)``."""

    def __init__(self, backend: Backend, frontend: FrontEndConfig, labels: list[str], activation: str):
        self.backend = backend
        self.frontend_config = frontend
        self.labels = labels
        self.activation = activation
        # Backends that take features get them from our front end, on the backend's device.
        self.frontend = KaldiFbank(frontend).to(backend.device) if backend.spec.kind == "fbank" else None
        self.window = backend.spec.num_samples or frontend.window_samples

    @property
    def sample_rate(self) -> int:
        return self.frontend_config.sample_rate

    def logits(self, windows: np.ndarray, lengths: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(windows)
        n = torch.from_numpy(lengths)
        if self.frontend is not None:
            with torch.inference_mode():
                x = self.frontend(x.to(self.backend.device), n.to(self.backend.device))
            return self.backend(x)
        return self.backend(x, n)

    def scores(self, samples: np.ndarray, hop: int | None = None, batch_size: int = 8) -> tuple[np.ndarray, list[int]]:
        """Per-window scores of one mono signal at the model's rate: ((windows, labels), starts)."""
        min_samples = int(self.frontend_config.window_size)
        if len(samples) < min_samples:
            raise InputError(
                f"audio is {len(samples) / self.sample_rate * 1000:.1f} ms long, shorter than one "
                f"{self.frontend_config.frame_length_ms:g} ms analysis frame"
            )
        windows, lengths, starts = cut_windows(samples, self.window, hop or self.window)
        max_batch = self.backend.spec.max_batch or batch_size
        step = max(1, min(batch_size, max_batch))
        out = []
        for i in range(0, len(windows), step):
            batch, n = windows[i : i + step], lengths[i : i + step]
            pad = self.backend.spec.min_batch - len(batch)
            if pad > 0:  # engines built for a minimum batch: repeat the last row, drop its result
                batch, n = (
                    np.concatenate([batch, np.repeat(batch[-1:], pad, 0)]),
                    np.concatenate([n, np.repeat(n[-1:], pad)]),
                )
            logits = self.logits(batch, n)[: len(windows[i : i + step])]
            out.append(apply_activation(logits.float(), self.activation).cpu().numpy())
        return np.concatenate(out), starts

    def predict(
        self,
        inputs: list[AudioInput] | AudioInput,
        top_k: int = 5,
        hop_seconds: float | None = None,
        batch_size: int = 8,
    ) -> list[Prediction]:
        if isinstance(inputs, (str, Path, tuple)):
            inputs = [inputs]
        hop = None
        if hop_seconds is not None:
            if hop_seconds <= 0:
                raise InputError(f"hop must be positive, got {hop_seconds}")
            hop = max(1, round(hop_seconds * self.sample_rate))
        results = []
        for item in inputs:
            if isinstance(item, tuple):
                samples, rate = item
                source = "<array>"
                samples = prepare_audio(samples, rate, self.sample_rate, where=source)
            else:
                source = str(item)
                samples = load_audio(item, self.sample_rate)
            try:
                window_scores, starts = self.scores(samples, hop, batch_size)
            except InputError as e:
                raise InputError(f"{source}: {e}") from None
            results.append(
                Prediction(source, self.sample_rate, len(samples), starts, self.window, self.labels, window_scores)
            )
        return results

    def close(self) -> None:
        self.backend.close()
