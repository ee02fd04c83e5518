"""``ast-deploy stats``: the dataset mean and std that normalise AST's input, computed as the authors do.

The authors (``get_norm_stats.py``) run their training data loader with normalisation off and
average the per-batch mean and std of the padded fbank over batches of 1000 clips. We do the same
through the deployment front end, without SpecAugment (their script leaves masks on, which only
nudges the numbers towards zero), and also report the exact statistics over all frames.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ast_deploy.frontend import FrontEndConfig
from ast_deploy.labels import read_label_csv
from ast_deploy.manifests import read_split

from .data import AudioDataset, ShardSampler, check_files, make_loader


def dataset_stats(
    manifest: Path,
    label_csv: Path | None = None,
    target_length: int = 1024,
    num_mel_bins: int = 128,
    batch_size: int = 1000,
    num_workers: int = 2,
    limit: int = 0,
) -> dict:
    labels = read_label_csv(label_csv) if label_csv else None
    split = check_files(read_split(manifest, labels, multi_label=True), skip=False)
    examples = split.examples[:limit] if limit else split.examples
    frontend = FrontEndConfig(num_mel_bins=num_mel_bins, target_length=target_length, normalize=False)
    dataset = AudioDataset(examples, len(split.labels), frontend)
    loader = make_loader(dataset, ShardSampler(len(dataset)), batch_size, num_workers)
    batch_means, batch_stds = [], []
    total, total_sq, count = 0.0, 0.0, 0
    columns = (TextColumn("fbank statistics"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task("", total=len(dataset))
        for fbank, _ in loader:
            batch_means.append(float(fbank.mean()))
            batch_stds.append(float(fbank.std()))
            x = fbank.double()
            total += float(x.sum())
            total_sq += float((x * x).sum())
            count += x.numel()
            bar.advance(task, len(fbank))
    exact_mean = total / count
    exact_std = float(np.sqrt(max(total_sq / count - exact_mean**2, 0.0) * count / max(count - 1, 1)))
    return {
        "manifest": str(manifest),
        "num_clips": len(dataset),
        "num_batches": len(batch_means),
        "target_length": target_length,
        "num_mel_bins": num_mel_bins,
        "mean": float(np.mean(batch_means)),
        "std": float(np.mean(batch_stds)),
        "exact_mean": exact_mean,
        "exact_std": exact_std,
    }
