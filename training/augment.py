"""The paper's augmentations, each a small pure function of its inputs and a numpy Generator.

Every random draw comes from :func:`sample_rng` seeded by ``(seed, epoch, position)``: the
position of the draw in the epoch's global order. So the augmentation a clip receives does not
depend on which worker or which process loads it, and a resumed run sees exactly the draws an
uninterrupted one would.

Order, as in the authors' data loader: waveform mixup -> filter bank -> SpecAugment masks ->
(normalisation) -> noise + time roll. Our filter bank arrives normalised from the deployment
front end, so masks fill with the value a zero of the raw log-mel takes after normalisation,
``-mean / (2 std)``: exactly what masking before normalisation gives.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class AugmentConfig:
    freqm: int = 0
    timem: int = 0
    mixup: float = 0.0
    mixup_alpha: float = 10.0
    noise: bool = False


def sample_rng(seed: int, epoch: int, position: int) -> np.random.Generator:
    """The generator for one draw: independent streams for every (seed, epoch, position)."""
    return np.random.default_rng([seed, epoch, position])


def mix_waveforms(first: np.ndarray, second: np.ndarray, lam: float) -> np.ndarray:
    """``lam * first + (1 - lam) * second`` after removing each one's mean, as the authors do.

    ``second`` is zero-padded or cut to the length of ``first``; the mix has its mean removed again.
    """
    a = first - first.mean()
    b = second - second.mean()
    if len(b) < len(a):
        b = np.pad(b, (0, len(a) - len(b)))
    mixed = lam * a + (1.0 - lam) * b[: len(a)]
    return (mixed - mixed.mean()).astype(np.float32)


def mask_along_axis(fbank: torch.Tensor, width: int, axis: int, rng: np.random.Generator, fill: float) -> torch.Tensor:
    """One SpecAugment mask, drawn as ``torchaudio.functional.mask_along_axis`` draws it.

    Mask length ``floor(u * width)`` with u ~ U(0, 1), start ``floor(v * (size - length))``.
    """
    size = fbank.shape[axis]
    length = rng.random() * width
    start = int(rng.random() * (size - length))
    end = start + int(length)
    if end > start:
        index = [slice(None)] * fbank.ndim
        index[axis] = slice(start, end)
        fbank[tuple(index)] = fill
    return fbank


def spec_augment(fbank: torch.Tensor, freqm: int, timem: int, rng: np.random.Generator, fill: float) -> torch.Tensor:
    """One frequency mask (up to ``freqm`` bins) and one time mask (up to ``timem`` frames) on (T, F)."""
    if freqm:
        fbank = mask_along_axis(fbank, freqm, 1, rng, fill)
    if timem:
        fbank = mask_along_axis(fbank, timem, 0, rng, fill)
    return fbank


def noise_and_roll(fbank: torch.Tensor, rng: np.random.Generator, max_shift: int = 10) -> torch.Tensor:
    """Uniform noise scaled by U(0, 1) / 10, then a roll in time by U{-10..9} frames (Speech Commands)."""
    scale = rng.random() / 10.0
    noise = torch.from_numpy(rng.random(fbank.shape, dtype=np.float32))
    fbank = fbank + noise * scale
    return torch.roll(fbank, int(rng.integers(-max_shift, max_shift)), dims=0)


def balanced_weights(label_lists: Sequence[Sequence[int]], num_labels: int) -> np.ndarray:
    """Sampling weight per clip: the sum over its labels of 1 / (label count), as the authors' AudioSet recipe.

    Rare classes get drawn as often as common ones; a clip with several rare labels more often still.
    """
    counts = np.zeros(num_labels, dtype=np.float64)
    for labels in label_lists:
        counts[list(labels)] += 1
    per_label = np.divide(1.0, counts, out=np.zeros_like(counts), where=counts > 0)
    return np.array([per_label[list(labels)].sum() for labels in label_lists], dtype=np.float64)


def mixed_target(
    first: Sequence[int], second: Sequence[int] | None, lam: float, num_labels: int, smoothing: float = 0.0
) -> torch.Tensor:
    """Multi-hot target, mixed ``lam : 1 - lam`` with a partner's and optionally label-smoothed."""
    target = np.zeros(num_labels, dtype=np.float32)
    target[list(first)] += lam
    if second is not None:
        target[list(second)] += 1.0 - lam
    if smoothing:
        target = (1.0 - smoothing) * target + smoothing / num_labels
    return torch.from_numpy(target)
