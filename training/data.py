"""Datasets for training AST: checking files, the feature pipeline, samplers.

Manifests (the authors' JSON, CSV, a folder per class) are read by :mod:`ast_deploy.manifests`,
which parity shares.

Audio goes through ``ast_deploy``'s loader and the deployment front end (:class:`KaldiFbank`,
called exactly as :class:`ast_deploy.pipeline.Classifier` calls it on a clip's first window), so a
trained model sees in production the features it was trained on, bit for bit.

Data order is a pure function of ``(seed, epoch)``; the sampler yields ``(index, epoch,
position)`` keys and the dataset seeds each clip's augmentation from them (see ``augment.py``).
So neither the number of DataLoader workers nor the number of processes changes what a step sees.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ast_deploy.audio import load_audio
from ast_deploy.errors import InputError
from ast_deploy.frontend import FrontEndConfig, KaldiFbank
from ast_deploy.manifests import Example, Split

from .augment import AugmentConfig, mix_waveforms, mixed_target, noise_and_roll, sample_rng, spec_augment

SampleKey = tuple[int, int, int]  # (index, epoch, position in the epoch's global order)


# --- checking files before hours of training -------------------------------------------------


def file_problem(path: Path) -> str | None:
    """Why ``path`` cannot be trained on, or None. Reads only the header."""
    if not path.is_file():
        return "no such file" if not path.exists() else "not a file"
    try:
        info = sf.info(str(path))
    except Exception as e:  # libsndfile raises several types; any of them means "unreadable"
        return f"unreadable ({str(e).strip().splitlines()[0] if str(e).strip() else e.__class__.__name__})"
    if info.frames == 0:
        return "no samples"
    return None


def check_files(split: Split, skip: bool, report: Path | None = None, open_headers: bool = True) -> Split:
    """Find every missing or unreadable file of a split: stop with one line naming them, or drop them.

    The complete list goes to ``report`` (a text file) when given, since a line can only show a few.
    """
    check = file_problem if open_headers else (lambda p: None if p.is_file() else "no such file")
    with ThreadPoolExecutor(max_workers=8) as pool:  # header reads are I/O bound
        problems = list(pool.map(lambda e: check(e.path), split.examples, chunksize=64))
    bad = [(e, p) for e, p in zip(split.examples, problems, strict=True) if p]
    if not bad:
        return split
    if report is not None:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text("".join(f"{e.path}\t{p}\t{e.where}\n" for e, p in bad), encoding="utf-8")
    shown = "; ".join(f"{e.path} ({p})" for e, p in bad[:5]) + (f"; +{len(bad) - 5} more" if len(bad) > 5 else "")
    full = f" (full list: {report})" if report is not None else ""
    if not skip:
        raise InputError(
            f"{split.source}: {len(bad)} of {len(split)} audio files are missing or unreadable: {shown}{full}; "
            "set skip_bad_files=true to train without them"
        )
    kept = [e for e, p in zip(split.examples, problems, strict=True) if not p]
    if not kept:
        raise InputError(f"{split.source}: none of its {len(split)} audio files is readable: {shown}")
    print(f"warning: {split.source}: skipping {len(bad)} missing or unreadable files: {shown}{full}")
    return Split(kept, split.labels, split.source)


# --- the feature pipeline --------------------------------------------------------------------


class AudioDataset(Dataset):
    """Clips -> ``(normalised fbank (target_length, mel_bins), target (num_labels,))``.

    Indexed by a plain ``int`` (evaluation: no augmentation) or by a sampler's
    ``(index, epoch, position)`` key (training: augmentation seeded from the key).
    """

    def __init__(
        self,
        examples: Sequence[Example],
        num_labels: int,
        frontend: FrontEndConfig,
        augment: AugmentConfig | None = None,
        seed: int = 0,
        label_smoothing: float = 0.0,
    ):
        self.examples = list(examples)
        self.num_labels = num_labels
        self.frontend_config = frontend
        self.frontend = KaldiFbank(frontend)  # the deployment module itself
        self.augment = augment or AugmentConfig()
        self.seed = seed
        self.label_smoothing = label_smoothing
        self.window = frontend.window_samples
        # A masked cell holds what a raw log-mel zero becomes after normalisation (authors mask before it).
        self.mask_fill = -frontend.mean / (2 * frontend.std) if frontend.normalize else 0.0

    def __len__(self) -> int:
        return len(self.examples)

    def waveform(self, index: int) -> np.ndarray:
        """The clip's first window of samples (what deployment scores first), mono at the model's rate."""
        return load_audio(self.examples[index].path, self.frontend_config.sample_rate)[: self.window]

    @torch.no_grad()
    def features(self, samples: np.ndarray) -> torch.Tensor:
        """Exactly the deployment call: one zero-padded window plus its valid length."""
        window = np.zeros(self.window, dtype=np.float32)
        window[: len(samples)] = samples
        return self.frontend(torch.from_numpy(window)[None], torch.tensor([len(samples)]))[0]

    def __getitem__(self, key: int | SampleKey) -> tuple[torch.Tensor, torch.Tensor]:
        index, rng = (key, None) if isinstance(key, (int, np.integer)) else (key[0], sample_rng(self.seed, *key[1:]))
        samples = self.waveform(index)
        partner, lam = None, 1.0
        aug = self.augment
        if rng is not None and aug.mixup and rng.random() < aug.mixup:
            partner = int(rng.integers(len(self.examples)))
            lam = float(rng.beta(aug.mixup_alpha, aug.mixup_alpha))
            samples = mix_waveforms(samples, self.waveform(partner), lam)
        fbank = self.features(samples)
        if rng is not None:
            fbank = spec_augment(fbank, aug.freqm, aug.timem, rng, self.mask_fill)
            if aug.noise:
                fbank = noise_and_roll(fbank, rng)
        second = self.examples[partner].labels if partner is not None else None
        target = mixed_target(self.examples[index].labels, second, lam, self.num_labels, self.label_smoothing)
        return fbank, target


# --- samplers: the same global order on every process ----------------------------------------


class EpochSampler(Sampler[SampleKey]):
    """This process's share of an epoch's global order, which depends only on ``(seed, epoch)``.

    The global order is a permutation, or with ``weights`` a weighted draw with replacement
    (balanced sampling), cut to whole global batches (``drop_last``: every optimizer step then
    sees exactly ``global_batch`` clips, so gradient accumulation and any number of processes give
    the same mean loss). Process ``rank`` takes positions ``rank, rank + world_size, ...``: with
    per-process micro-batches of ``global_batch / world_size / accumulation``, optimizer step ``s``
    of every world size covers global positions ``[s * global_batch, (s + 1) * global_batch)``.
    """

    def __init__(
        self,
        num_examples: int,
        global_batch: int,
        seed: int = 0,
        weights: np.ndarray | None = None,
        rank: int = 0,
        world_size: int = 1,
        max_batches: int = 0,
    ):
        if global_batch % world_size:
            raise InputError(f"batch_size {global_batch} is not divisible by the {world_size} processes")
        self.num_examples = num_examples
        self.global_batch = global_batch
        self.seed = seed
        self.weights = None if weights is None else torch.as_tensor(weights, dtype=torch.float64)
        self.rank, self.world_size = rank, world_size
        self.num_batches = num_examples // global_batch
        if max_batches:
            self.num_batches = min(self.num_batches, max_batches)
        if self.num_batches == 0:
            raise InputError(f"{num_examples} training clips are fewer than one batch of {global_batch}")
        self.epoch = 1

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def global_order(self, epoch: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        n_used = self.num_batches * self.global_batch
        if self.weights is not None:
            return torch.multinomial(self.weights, self.num_examples, replacement=True, generator=g)[:n_used]
        return torch.randperm(self.num_examples, generator=g)[:n_used]

    def __iter__(self) -> Iterator[SampleKey]:
        order = self.global_order(self.epoch).tolist()
        for position in range(self.rank, len(order), self.world_size):
            yield (order[position], self.epoch, position)

    def __len__(self) -> int:
        return self.num_batches * self.global_batch // self.world_size


class ShardSampler(Sampler[int]):
    """Contiguous, equal shards of ``range(n)`` for evaluation; the last shard repeats the final index.

    Gathering all shards in rank order and cutting to ``n`` restores the dataset order.
    """

    def __init__(self, num_examples: int, rank: int = 0, world_size: int = 1):
        self.num_examples = num_examples
        self.per_rank = math.ceil(num_examples / world_size)
        self.start = rank * self.per_rank

    def __iter__(self) -> Iterator[int]:
        for i in range(self.start, self.start + self.per_rank):
            yield min(i, self.num_examples - 1)

    def __len__(self) -> int:
        return self.per_rank


def _seed_worker(worker_id: int) -> None:
    """Libraries that draw from the global RNGs get per-worker seeds derived from the loader's seed."""
    import random

    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def make_loader(dataset: Dataset, sampler: Sampler, batch_size: int, num_workers: int, seed: int = 0) -> DataLoader:
    """A DataLoader whose output depends on the sampler only, not on ``num_workers``."""
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        worker_init_fn=_seed_worker if num_workers else None,
        generator=torch.Generator().manual_seed(seed),
        persistent_workers=num_workers > 0,
        pin_memory=torch.cuda.is_available(),
        prefetch_factor=4 if num_workers else None,
    )
