"""Scoring a dataset with a model: used every epoch by the training loop and by ``ast-deploy evaluate``."""

from __future__ import annotations

import contextlib
import math
from pathlib import Path

import numpy as np
import torch
from rich.table import Table

from ast_deploy.checkpoints import LoadOptions, load_checkpoint
from ast_deploy.errors import InputError
from ast_deploy.labels import LabelSet, read_label_csv
from ast_deploy.manifests import label_set_from_names, read_split
from ast_deploy.model import ASTModel, apply_activation

from .data import AudioDataset, ShardSampler, check_files, make_loader
from .metrics import compute_metrics


def autocast(device: torch.device, dtype: torch.dtype | None):
    """``torch.autocast`` for mixed precision, or nothing for float32."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


@torch.no_grad()
def predict(
    model: torch.nn.Module,
    loader,
    device: torch.device,
    amp_dtype: torch.dtype | None = None,
    progress=None,
) -> tuple[np.ndarray, np.ndarray]:
    """Float32 logits and the targets of every batch the loader yields, in order."""
    was_training = model.training
    model.eval()
    logits, targets = [], []
    for fbank, target in loader:
        with autocast(device, amp_dtype):
            out = model(fbank.to(device, non_blocking=True))
        logits.append(out.float().cpu())
        targets.append(target)
        if progress is not None:
            progress(len(fbank))
    model.train(was_training)
    return torch.cat(logits).numpy(), torch.cat(targets).numpy()


def scores_from_logits(logits: np.ndarray, activation: str) -> np.ndarray:
    return apply_activation(torch.from_numpy(logits), activation).numpy()


def per_class_table(metrics: dict, labels: list[str], limit: int = 50) -> Table:
    """Per-class AP, AUC, accuracy and support; with many classes only the best and worst ``limit / 2``."""
    table = Table(title="per class")
    for column in ("#", "label", "AP", "AUC", "accuracy", "support"):
        table.add_column(column, justify="left" if column == "label" else "right")
    rows = list(range(len(labels)))
    if len(rows) > limit:
        ranked = sorted(rows, key=lambda k: -np.nan_to_num(metrics["ap"][k], nan=-1.0))
        rows = ranked[: limit // 2] + ranked[-limit // 2 :]
    for k in rows:
        table.add_row(
            str(k),
            labels[k],
            *(_fmt(metrics[name][k]) for name in ("ap", "auc", "class_accuracy")),
            str(metrics["support"][k]),
        )
    return table


def _fmt(x: float) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.4f}"


def evaluate_checkpoint(
    checkpoint: Path,
    manifest: Path,
    label_csv: Path | None = None,
    batch_size: int = 16,
    num_workers: int = 2,
    device: str = "cpu",
    skip_bad_files: bool = False,
    multi_label: bool | None = None,
    options: LoadOptions | None = None,
) -> dict:
    """Metrics of a checkpoint (any format ``ast_deploy`` loads) on a manifest (any format ``training`` reads).

    Manifest labels are matched to the checkpoint's by mid or display name (through ``label_csv``
    when given, which must have the model's label count).
    """
    ckpt = load_checkpoint(checkpoint, options)
    if label_csv is not None:
        labels = read_label_csv(label_csv)
        if len(labels) != ckpt.config.num_labels:
            raise InputError(f"{label_csv}: {len(labels)} labels, but the model has {ckpt.config.num_labels} outputs")
    else:
        labels = label_set_from_names(ckpt.labels)
    multi = ckpt.config.activation == "sigmoid" if multi_label is None else multi_label
    split = check_files(read_split(manifest, LabelSet(labels.mids, labels.names), multi_label=multi), skip_bad_files)
    dataset = AudioDataset(split.examples, ckpt.config.num_labels, ckpt.frontend)
    loader = make_loader(dataset, ShardSampler(len(dataset)), batch_size, num_workers)
    model: ASTModel = ckpt.build_model().to(device)
    logits, targets = predict(model, loader, torch.device(device))
    metrics = compute_metrics(scores_from_logits(logits, ckpt.config.activation), targets, per_class=True)
    return {
        "checkpoint": str(checkpoint),
        "manifest": str(manifest),
        "labels": ckpt.labels,
        **metrics,
    }
