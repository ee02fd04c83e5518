"""Audio files in, labels out: windowing, batching and score aggregation over any backend.

Audio longer than the model's window is cut into windows (default hop: one window; the last
window is aligned to the end of the audio); each window's scores are aggregated by mean and max.
A clip shorter than the window is zero padded in the feature domain, as in training. Files and
arrays go through the stream of :mod:`.streaming` (decoded, resampled, cut and scored one block and
one batch at a time); :mod:`.windows` holds the rule it follows (docs/streaming.md).

With ``embeddings=True`` each window also gets its clip embedding (what the classifier head reads:
:data:`ast_deploy.model.EMBEDDING_DEFINITION`), from the same model call as its scores, and a file's
embedding is their mean over windows.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .audio import check_rate
from .frontend import FrontEndConfig, KaldiFbank
from .model import apply_activation
from .runtime.base import Backend, Outputs
from .streaming import AudioStream, score_array, score_file
from .windows import hop_samples, window_ends, window_in_samples, window_length

AudioInput = str | Path | tuple[np.ndarray, int]


def top_scores(scores: np.ndarray, labels: list[str], k: int) -> list[dict]:
    """The ``k`` best of one window's scores, best first (ties in label order), as JSON objects."""
    order = np.argsort(-scores, kind="stable")[:k]
    return [{"index": int(i), "label": labels[i], "score": float(scores[i])} for i in order]


@dataclass
class Prediction:
    source: str
    sample_rate: int
    num_samples: int
    starts: list[int]
    window: int
    labels: list[str] = field(repr=False)
    window_scores: np.ndarray = field(repr=False)  # (windows, labels)
    window_embeddings: np.ndarray | None = field(default=None, repr=False)  # (windows, embed_dim), when asked

    @property
    def embedding(self) -> np.ndarray | None:
        """The file's clip embedding: the mean of its windows' (float32), or ``None`` when not computed."""
        return None if self.window_embeddings is None else self.window_embeddings.mean(axis=0)

    @property
    def duration(self) -> float:
        return self.num_samples / self.sample_rate

    @property
    def ends(self) -> list[int]:
        """Where each window ends (exclusive, samples): a window never reaches past the audio."""
        return window_ends(self.starts, self.window, self.num_samples)

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
        """The file and its timeline of windows; with embeddings, ``embedding`` after each ``top``
        (the file's: the mean over windows)."""
        timeline = []
        for i, (start, end, scores) in enumerate(zip(self.starts, self.ends, self.window_scores, strict=False)):
            window = {
                "start": start / self.sample_rate,
                "end": end / self.sample_rate,
                "top": top_scores(scores, self.labels, k),
            }
            if self.window_embeddings is not None:
                window["embedding"] = self.window_embeddings[i].tolist()
            timeline.append(window)
        out = {"source": self.source, "duration": self.duration, "aggregate": aggregate, "top": self.top(k, aggregate)}
        if self.window_embeddings is not None:
            out["embedding"] = self.embedding.tolist()
        return {**out, "windows": timeline}


class Classifier:
    """Front end + backend + labels. ``clf.predict(["a.wav"], top_k=5)``.

    What the stream needs of it is :class:`~ast_deploy.streaming.WindowScorer`."""

    def __init__(self, backend: Backend, frontend: FrontEndConfig, labels: list[str], activation: str):
        self.backend = backend
        self.frontend_config = frontend
        self.labels = labels
        self.activation = activation
        # Backends that take features get them from our front end, on the backend's device.
        self.frontend = KaldiFbank(frontend).to(backend.device) if backend.spec.kind == "fbank" else None
        self.window = window_length(backend.spec.num_samples, frontend)

    @property
    def sample_rate(self) -> int:
        return self.frontend_config.sample_rate

    @property
    def max_batch(self) -> int | None:
        return self.backend.spec.max_batch

    @property
    def static_batch_shapes(self) -> bool:
        return self.backend.static_batch_shapes

    @property
    def has_embedding(self) -> bool:
        """Whether the model gives clip embeddings (every checkpoint and artifact exported since they were)."""
        return self.backend.has_embedding

    def check_embedding(self) -> None:
        """One :class:`~ast_deploy.errors.InputError` line where the model has no embedding output."""
        self.backend.check_embedding()

    def run(self, windows: np.ndarray, lengths: np.ndarray, pad_to: int = 1, embedding: bool = False) -> Outputs:
        """The backend's outputs of windows (B, window) with valid lengths (B,): logits, and with ``embedding``
        the clip embeddings; ``pad_to``: run at least that batch size (:meth:`~ast_deploy.runtime.base.Backend.run`)."""
        x = torch.from_numpy(windows)
        n = torch.from_numpy(lengths)
        if self.frontend is not None:
            with torch.inference_mode():
                x = self.frontend(x.to(self.backend.device), n.to(self.backend.device))
            return self.backend.run(x, None, embedding, pad_to)
        return self.backend.run(x, n, embedding, pad_to)

    def logits(self, windows: np.ndarray, lengths: np.ndarray, pad_to: int = 1) -> torch.Tensor:
        """Logits of windows (B, window) with valid lengths (B,) (:meth:`run`)."""
        return self.run(windows, lengths, pad_to).logits

    def score_batch(self, windows: np.ndarray, lengths: np.ndarray, pad_to: int = 1) -> np.ndarray:
        """Scores (activation of the logits) of one batch of windows (B, window) with valid lengths (B,)."""
        return self.outputs(windows, lengths, pad_to, embedding=False)[0]

    def outputs(
        self, windows: np.ndarray, lengths: np.ndarray, pad_to: int = 1, embedding: bool = True
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """(scores (B, labels), clip embeddings (B, embed_dim) float32 or ``None`` without ``embedding``) of one
        batch of windows: one model call. Embeddings from a model without them are an InputError."""
        out = self.run(windows, lengths, pad_to, embedding)
        scores = apply_activation(out.logits.float(), self.activation).cpu().numpy()
        return scores, None if out.embedding is None else out.embedding.float().cpu().numpy()

    def stream(
        self,
        hop: float | None = None,
        window: float | None = None,
        sample_rate: int | None = None,
        batch_size: int = 8,
        embeddings: bool = False,
    ) -> AudioStream:
        """A live stream: ``push(chunk)`` returns the windows each chunk completes, ``flush()`` ends it.

        ``hop`` and ``window`` in seconds (default: the model's window, and hop = window);
        ``sample_rate``: the rate of the pushed audio (default: the model's; others are resampled);
        ``embeddings``: each window carries its clip embedding too.
        """
        if embeddings:
            self.check_embedding()
        return AudioStream(
            self,
            hop_samples(hop, self.sample_rate),
            window_in_samples(window, self.sample_rate),
            sample_rate,
            batch_size=batch_size,
            eager=True,
            embeddings=embeddings,
        )

    def scores(self, samples: np.ndarray, hop: int | None = None, batch_size: int = 8) -> tuple[np.ndarray, list[int]]:
        """Per-window scores of one mono signal at the model's rate: ((windows, labels), starts).

        Windows are cut and scored one batch at a time (never all at once).
        """
        scored = score_array(self, samples, hop=hop, batch_size=batch_size, where="audio")
        return scored.scores, scored.starts

    def predict(
        self,
        inputs: list[AudioInput] | AudioInput,
        top_k: int = 5,
        hop_seconds: float | None = None,
        batch_size: int = 8,
        progress: Callable[[str, int, int], None] | None = None,
        embeddings: bool = False,
    ) -> list[Prediction]:
        """Predictions for files or ``(samples, rate)`` arrays, each streamed through the model one
        block and one batch at a time. ``progress(source, windows done, windows expected)``.
        ``embeddings``: each prediction also holds its windows' clip embeddings (``window_embeddings``)
        and their mean (``embedding``); a model without them is one InputError, before any audio is read."""
        if embeddings:
            self.check_embedding()
        if isinstance(inputs, (str, Path, tuple)):
            inputs = [inputs]
        hop = hop_samples(hop_seconds, self.sample_rate)
        results = []
        for item in inputs:
            source = "<array>" if isinstance(item, tuple) else str(item)
            report = None if progress is None else functools.partial(progress, source)
            if isinstance(item, tuple):
                samples, rate = item
                check_rate(rate, source)
                scored = score_array(
                    self, samples, rate, hop, batch_size, where=source, progress=report, embeddings=embeddings
                )
            else:
                scored = score_file(self, item, hop, batch_size, progress=report, embeddings=embeddings)
            results.append(
                Prediction(
                    source, self.sample_rate, scored.num_samples, scored.starts, self.window, self.labels,
                    scored.scores, scored.embeddings,
                )
            )  # fmt: skip
        return results

    def close(self) -> None:
        self.backend.close()
