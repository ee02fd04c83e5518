"""Small generated datasets and tiny configs shared by the training tests (not a test module)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 16000
# Tiny but real: 2 blocks of width 64, 64 frames (0.65 s), fp32 so results are exact on CPU.
TINY = {
    "model_size": "tiny",
    "embed_dim": 64,
    "num_heads": 4,
    "depth": 1,
    "target_length": 64,
    "fstride": 16,
    "tstride": 16,
    "precision": "fp32",
    "num_workers": 0,
    "lr": 1e-3,
    "norm_mean": -6.0,
    "norm_std": 5.0,
    "log_every": 5,
}


def tone_clip(label: int, rng: np.random.Generator, seconds: float = 0.6) -> np.ndarray:
    """A noisy tone whose pitch band is the class: learnable in a few steps, not trivially."""
    t = np.arange(int(seconds * SR)) / SR
    freq = 250.0 * (2.0**label) * rng.uniform(0.93, 1.07)
    onset = rng.uniform(0, 0.2)
    env = (t > onset) * np.exp(-(t - onset).clip(0) * rng.uniform(1, 4))
    x = np.sin(2 * np.pi * freq * t + rng.uniform(0, 6.28)) * env
    x += rng.normal(0, rng.uniform(0.05, 0.2), len(t))
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


def write_tone_set(root: Path, n_per_class: int, num_classes: int = 4, seed: int = 0, name: str = "train") -> Path:
    """``root/name/*.wav`` and ``root/name.csv`` (path,label) with class names ``c0..``."""
    rng = np.random.default_rng(seed)
    (root / name).mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n_per_class * num_classes):
        label = i % num_classes
        path = root / name / f"{i:04d}.wav"
        sf.write(path, tone_clip(label, rng), SR, subtype="PCM_16")
        rows.append((f"{name}/{path.name}", f"c{label}"))
    manifest = root / f"{name}.csv"
    with open(manifest, "w", newline="") as f:
        csv.writer(f).writerows([("path", "label"), *rows])
    return manifest


def overrides(**extra) -> list[str]:
    """``--set`` items for the tiny config plus ``extra``."""
    values = {**TINY, **extra}
    return [f"{k}={','.join(map(str, v)) if isinstance(v, (list, tuple)) else v}" for k, v in values.items()]
