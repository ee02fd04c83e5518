"""What parity compares on: windows of real audio (files, a labelled manifest) or seeded signals.

The seeded signals cover what a deployment sees: speech-like harmonic sounds, noise at several
levels, tones and sweeps, near-silence, and clips shorter than the window (which exercise
feature-domain padding); the :data:`HARD_SIGNALS` are its edges, where reduced precision breaks
first. INT8 calibration (``ast_deploy.export.calibration``) draws on the same signals.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..audio import load_audio
from ..labels import LABEL_SETS, LabelSet, builtin_label_set
from ..windows import cut_windows, window_length


@dataclass
class ParityInputs:
    """Waveform windows (and their valid lengths) plus optional labels (indices per clip)."""

    windows: np.ndarray  # (N, samples)
    lengths: np.ndarray  # (N,)
    description: str
    labels: list[list[int]] | None = None


def synthetic_signals(n: int, num_samples: int, sample_rate: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` seeded test signals of up to ``num_samples`` (every 4th shorter than the window)."""
    rng = np.random.default_rng(seed)
    t = np.arange(num_samples) / sample_rate
    out = np.zeros((n, num_samples), dtype=np.float32)
    lengths = np.full(n, num_samples, dtype=np.int64)
    for i in range(n):
        kind = i % 5
        if kind == 0:  # speech-like: a gliding harmonic source through formant-ish peaks, syllable envelope
            f0 = rng.uniform(90, 220) * (1 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t))
            phase = 2 * np.pi * np.cumsum(f0) / sample_rate
            formants = rng.uniform([300, 900, 2200], [900, 2000, 3200])
            x = sum(
                np.sin(k * phase) * np.exp(-((k * f0.mean() - formants[:, None]) ** 2).min(0) / 2e5)
                for k in range(1, 30)
            )
            x *= np.clip(np.sin(2 * np.pi * rng.uniform(2, 5) * t), 0, None) ** 2
        elif kind == 1:  # white or brown noise at a random level
            x = rng.standard_normal(num_samples)
            if rng.random() < 0.5:
                x = np.cumsum(x)
                x -= x.mean()
        elif kind == 2:  # tones and a sweep
            x = sum(np.sin(2 * np.pi * f * t) for f in rng.uniform(100, 6000, size=3))
            x += np.sin(2 * np.pi * (100 + 3000 * t / t[-1]) * t)
        elif kind == 3:  # near-silence with a click train
            x = rng.standard_normal(num_samples) * 1e-4
            x[:: int(sample_rate * rng.uniform(0.05, 0.3))] += 0.5
        else:  # impulsive events in noise
            x = rng.standard_normal(num_samples) * 0.01
            for start in rng.integers(0, num_samples - 2000, size=5):
                x[start : start + 2000] += rng.standard_normal(2000) * np.hanning(2000)
        x = x / (np.abs(x).max() + 1e-9) * rng.uniform(0.05, 0.9)
        if i % 4 == 3:  # a clip shorter than the window: padded in the feature domain
            lengths[i] = int(rng.integers(num_samples // 4, num_samples))
            x[lengths[i] :] = 0.0
        out[i] = x.astype(np.float32)
    return out, lengths


HARD_SIGNALS = (
    "silence", "dc offset", "clipped noise", "clipped square wave", "very quiet noise",
    "very loud sweep over a noise floor", "speech-like in noise", "speech-like over mains hum",
)  # fmt: skip


def hard_signals(num_samples: int, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """:data:`HARD_SIGNALS`: the edges of what a deployment sees, where reduced precision breaks first.

    Digital silence and a DC offset (the front end subtracts the mean: the log-mel floor everywhere),
    full-scale clipping (broadband, maximal energy in every bin), audio 100 dB down (spectra near the
    floor), a full-scale sweep, and mixtures. A static int8 scale calibrated on ordinary audio clips
    the loud ones and drowns the quiet ones; an int16-saturating int8 kernel fails on the loud ones.

    The sweep lies over a noise floor 60 dB down, as any recording does: an exactly digital sinusoid
    at full scale has spectral valleys ~140 dB down, below float32's DFT rounding noise, where every
    float32 front end computes noise of its own (two correct ones, PyTorch's and ONNX Runtime's, ended
    1.1e-4 logits apart on a trained model: the float32 gate is 1e-4; with the floor, 6e-6).
    """
    rng = np.random.default_rng(12345)  # fixed: the same signals everywhere, unlike the seeded ones
    t = np.arange(num_samples) / sample_rate
    speech, _ = synthetic_signals(1, num_samples, sample_rate, seed=99)
    signals = [
        np.zeros(num_samples),
        np.full(num_samples, 0.3),
        np.clip(rng.standard_normal(num_samples) * 3, -1, 1),
        np.sign(np.sin(2 * np.pi * 150 * t)),
        rng.standard_normal(num_samples) * 1e-5,
        0.99 * np.sin(2 * np.pi * (50 + 7000 * t / max(t[-1], 1e-9)) * t) + rng.standard_normal(num_samples) * 1e-3,
        speech[0] + rng.standard_normal(num_samples) * 0.05,
        speech[0] + 0.3 * np.sin(2 * np.pi * 50 * t),
    ]
    return np.stack(signals).astype(np.float32), np.full(len(signals), num_samples, dtype=np.int64)


def synthetic_inputs(artifacts, n: int = 16, seed: int = 0, hard: bool = True) -> ParityInputs:
    """What :func:`run_parity` compares on when given no inputs: ``n`` seeded signals of the artifact's window,
    plus (``hard``) the :data:`HARD_SIGNALS`."""
    window = window_length(artifacts.spec.num_samples, artifacts.frontend_config)
    windows, lengths = synthetic_signals(n, window, artifacts.spec.sample_rate, seed)
    description = f"{n} seeded synthetic signals (seed {seed})"
    if hard:
        hard_windows, hard_lengths = hard_signals(window, artifacts.spec.sample_rate)
        windows, lengths = np.concatenate([windows, hard_windows]), np.concatenate([lengths, hard_lengths])
        description += f" + {len(hard_windows)} hard signals"
    return ParityInputs(windows, lengths, description)


def audio_inputs(paths: list[Path], window: int, sample_rate: int) -> ParityInputs:
    windows, lengths = [], []
    for path in paths:
        w, n, _ = cut_windows(load_audio(path, sample_rate), window, window)
        windows.append(w)
        lengths.append(n)
    return ParityInputs(np.concatenate(windows), np.concatenate(lengths), f"{len(paths)} audio files")


def model_label_set(labels: list[str]) -> LabelSet:
    """The model's labels; with the machine ids of the shipped set they come from, if any, so that the
    authors' JSON manifests (which name labels by mid) resolve."""
    for name in LABEL_SETS:
        known = builtin_label_set(name)
        if known.names == labels:
            return known
    return LabelSet(list(labels), list(labels))


def manifest_inputs(
    manifest: Path, labels: list[str], window: int, sample_rate: int, limit: int | None
) -> ParityInputs:
    """The first window of each clip of a labelled manifest (any format ``ast_deploy.manifests`` reads)."""
    from ..manifests import read_split

    examples = read_split(manifest, model_label_set(labels), multi_label=True).examples[:limit]
    windows, lengths = [], []
    for example in examples:
        w, n, _ = cut_windows(load_audio(example.path, sample_rate, head=window), window, window)
        windows.append(w)  # one window: only that much of the file is decoded
        lengths.append(n)
    targets = [list(e.labels) for e in examples]
    return ParityInputs(
        np.concatenate(windows), np.concatenate(lengths), f"{len(examples)} clips of {manifest}", targets
    )


__all__ = [
    "HARD_SIGNALS",
    "ParityInputs",
    "audio_inputs",
    "hard_signals",
    "manifest_inputs",
    "model_label_set",
    "synthetic_inputs",
    "synthetic_signals",
]
