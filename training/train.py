"""Training AST, top to bottom: runtime -> data -> model -> optimizer -> (resume) -> epochs -> finish.

One function per phase; :func:`train` at the bottom strings them together. Run it as
``ast-deploy train RECIPE``, ``python -m ast_deploy_training RECIPE``, or on several processes and nodes as
``torchrun --nproc_per_node=N -m ast_deploy_training RECIPE`` (NCCL on GPUs, gloo on CPUs).

What a run writes into its output directory::

    config.json            the TrainConfig of the run
    log.jsonl              one JSON object per log line (train steps, epochs, the end)
    epoch_NNN/             the model after each epoch (Hugging Face AST layout: ``ast-deploy
                           predict``, ``export`` and ``transformers`` load it)
    best/                  the epoch with the best validation metric
    last/                  the latest epoch plus train_state.pt (optimizer, RNGs, counters) for --resume
    wa/                    weights averaged over epochs wa_start..wa_end (when configured)
    summary.json           final metrics: best, last, checkpoint ensemble, weight averaging, test

Every write is atomic (temporary name, then rename), so a kill at any moment leaves either the
previous or the next complete checkpoint. Resuming is exact: the data order, augmentation draws
and learning rate are pure functions of (seed, epoch, position, step), and everything else that
evolves (weights, optimizer, grad scaler, RNG states, counters, ensemble sums) is in the state file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from torch.nn.parallel import DistributedDataParallel

from ast_deploy.checkpoints import load_checkpoint, save_checkpoint
from ast_deploy.errors import InputError
from ast_deploy.fileio import atomic_dir, write_json
from ast_deploy.frontend import FrontEndConfig
from ast_deploy.labels import LabelSet, read_label_csv
from ast_deploy.manifests import Split, read_split
from ast_deploy.model import ASTModel

from .augment import AugmentConfig, balanced_weights
from .config import TrainConfig, apply, config_from_dict, for_fold, load_config, parse_overrides
from .data import AudioDataset, EpochSampler, ShardSampler, check_files, make_loader
from .evaluate import autocast, predict, scores_from_logits
from .init_weights import initial_model
from .metrics import compute_metrics

STATE_FILE = "train_state.pt"
STATE_VERSION = 1
console = Console(stderr=True)


# --- runtime: device, processes, precision ---------------------------------------------------


@dataclass
class Runtime:
    device: torch.device
    amp_dtype: torch.dtype | None
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def setup_runtime(config: TrainConfig) -> Runtime:
    """Device and process group from torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK), if any."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(config.device, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if config.threads:
        torch.set_num_threads(config.threads)
    return Runtime(device, mixed_precision(config.precision, device), rank, world_size)


def pick_device(name: str, local_rank: int) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InputError(f"config key device: {name!r} requested but CUDA is not available")
        return torch.device(name if ":" in name else f"cuda:{local_rank}")
    if name != "cpu":
        raise InputError(f"config key device: {name!r} is not auto, cpu, cuda or cuda:N")
    return torch.device("cpu")


def cpu_supports_bf16() -> bool:
    """Whether the CPU has bf16 arithmetic (AVX512-BF16 or AMX; ``ast_deploy.cpu``, which honours ISA caps);
    otherwise bf16 is emulated and slower than fp32. (oneDNN's own check also says yes for AVX-512 without
    BF16, where it emulates.)"""
    from ast_deploy.cpu import cpu_info

    return cpu_info().bf16


def mixed_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device``; None means float32."""
    if precision == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if cpu_supports_bf16() else None
    if precision == "fp16" and device.type != "cuda":
        raise InputError("config key precision: fp16 mixed precision needs CUDA; use bf16 on CPUs")
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def barrier(runtime: Runtime) -> None:
    if runtime.distributed:
        dist.barrier()


def all_mean(value: torch.Tensor, runtime: Runtime) -> float:
    if runtime.distributed:
        value = value.clone()
        dist.all_reduce(value)
        value /= runtime.world_size
    return float(value)


def gather_rows(rows: np.ndarray, total: int, runtime: Runtime) -> np.ndarray:
    """Concatenate every rank's equal-sized shard in rank order and drop the padding (ShardSampler)."""
    if not runtime.distributed:
        return rows[:total]
    device = runtime.device if dist.get_backend() == "nccl" else torch.device("cpu")
    local = torch.from_numpy(np.ascontiguousarray(rows)).to(device)
    shards = [torch.empty_like(local) for _ in range(runtime.world_size)]
    dist.all_gather(shards, local)
    return torch.cat(shards).cpu().numpy()[:total]


# --- data -----------------------------------------------------------------------------------


@dataclass
class Data:
    labels: LabelSet
    frontend: FrontEndConfig
    sampler: EpochSampler
    train: torch.utils.data.DataLoader
    micro_batch: int
    eval_batch: int
    splits: dict[str, Split]  # train, valid, test (those configured)


def build_data(config: TrainConfig, runtime: Runtime, out: Path) -> Data:
    """Read and check the manifests, then build the training loader (validation loaders come later)."""
    label_set = read_label_csv(config.label_csv) if config.label_csv else None
    splits = {"train": read_split(config.train_data, label_set, config.multi_label)}
    labels = splits["train"].labels  # with no label CSV: the training manifest's labels, sorted
    for name in ("valid", "test"):
        path = getattr(config, f"{name}_data")
        if path:
            splits[name] = read_split(path, labels, config.multi_label)
    for name, split in splits.items():
        report = out / f"bad_files_{name}.txt" if runtime.is_main else None
        splits[name] = check_files(split, config.skip_bad_files, report, open_headers=config.check_audio)

    per_step = runtime.world_size * config.grad_accum
    if config.batch_size % per_step:
        raise InputError(
            f"config key batch_size: {config.batch_size} is not divisible by {runtime.world_size} processes "
            f"x grad_accum {config.grad_accum}"
        )
    frontend = FrontEndConfig(
        num_mel_bins=config.num_mel_bins,
        target_length=config.target_length,
        mean=config.norm_mean,
        std=config.norm_std,
    )
    augment = AugmentConfig(config.freqm, config.timem, config.mixup, config.mixup_alpha, config.noise)
    train = splits["train"]
    weights = balanced_weights([e.labels for e in train.examples], len(labels)) if config.balanced_sampling else None
    sampler = EpochSampler(
        len(train),
        config.batch_size,
        seed=config.seed,
        weights=weights,
        rank=runtime.rank,
        world_size=runtime.world_size,
        max_batches=config.max_steps_per_epoch,
    )
    dataset = AudioDataset(train.examples, len(labels), frontend, augment, config.seed, config.label_smoothing)
    micro_batch = config.batch_size // per_step
    loader = make_loader(dataset, sampler, micro_batch, config.num_workers, config.seed)
    eval_batch = config.eval_batch_size or max(16, micro_batch)
    return Data(labels, frontend, sampler, loader, micro_batch, eval_batch, splits)


def eval_loader(data: Data, name: str, config: TrainConfig, runtime: Runtime, persistent: bool = True):
    """A loader over this process's shard of a validation or test split (no augmentation)."""
    split = data.splits[name]
    dataset = AudioDataset(split.examples, len(data.labels), data.frontend)
    sampler = ShardSampler(len(dataset), runtime.rank, runtime.world_size)
    workers = config.num_workers if persistent else min(config.num_workers, 1)
    return make_loader(dataset, sampler, data.eval_batch, workers, config.seed)


# --- model, optimizer, learning rate, loss --------------------------------------------------


def build_model(config: TrainConfig, num_labels: int, runtime: Runtime) -> tuple[ASTModel, str]:
    model, origin = initial_model(config, num_labels)
    return model.to(runtime.device), origin


def wrap_distributed(model: ASTModel, runtime: Runtime) -> torch.nn.Module:
    """DistributedDataParallel across processes (it broadcasts rank 0's weights), else the model itself."""
    if not runtime.distributed:
        return model
    device_ids = [runtime.device.index] if runtime.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)


def build_optimizer(config: TrainConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    """Adam as in the paper (weight decay on every parameter), or AdamW without decay on norms, biases, tokens."""
    betas = tuple(config.betas)
    if config.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=config.lr, betas=betas, weight_decay=config.weight_decay)
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (decay if p.ndim >= 2 and "pos_embed" not in name else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=config.lr, betas=betas)


def learning_rate(config: TrainConfig, step: int, epoch: int, total_steps: int) -> float:
    """The learning rate of optimizer step ``step`` (0-based) in epoch ``epoch`` (1-based).

    ``step``: the authors' MultiStepLR, stepped after each epoch with milestones
    ``lr_decay_start, +every, ...``, so epoch ``e`` runs at ``lr * gamma^k`` with ``k`` the
    milestones ``<= e - 1``. ``cosine``: from ``lr`` down to ``min_lr`` over all steps after warm-up.
    Both are multiplied by a linear warm-up over the first ``warmup_steps`` steps.
    """
    warm = min(1.0, (step + 1) / config.warmup_steps) if config.warmup_steps else 1.0
    if config.lr_schedule == "step":
        done = epoch - 1
        k = 0 if done < config.lr_decay_start else (done - config.lr_decay_start) // config.lr_decay_every + 1
        return config.lr * warm * config.lr_decay_gamma**k
    span = max(1, total_steps - config.warmup_steps)
    progress = min(1.0, max(0.0, (step - config.warmup_steps) / span))
    return warm * (config.min_lr + 0.5 * (config.lr - config.min_lr) * (1 + math.cos(math.pi * progress)))


def loss_function(config: TrainConfig) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """BCE on logits (multi-label, and the Speech Commands recipe) or CE with soft targets (mixup-aware)."""
    if config.loss_name == "bce":
        return F.binary_cross_entropy_with_logits
    return lambda logits, target: F.cross_entropy(logits, target)


# --- training state: what --resume restores ------------------------------------------------


@dataclass
class TrainState:
    epoch: int = 0  # last completed epoch
    step: int = 0  # optimizer steps taken
    best_metric: float = -math.inf
    best_epoch: int = 0
    history: list[dict] = field(default_factory=list)  # per-epoch metrics
    ensemble_sum: torch.Tensor | None = None  # sum of every epoch's validation scores
    ensemble_count: int = 0


def rng_state() -> dict:
    """torch, CUDA, numpy and Python RNG states as tensors and plain containers (``weights_only`` loads them)."""
    _, keys, pos, has_gauss, gauss = np.random.get_state()
    version, py_state, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": pos, "has_gauss": has_gauss, "gauss": gauss},
        "python": {"version": version, "state": torch.tensor(py_state, dtype=torch.int64), "gauss": py_gauss},
    }


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"].tolist()), p["gauss"]))


def training_state(
    model: ASTModel, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler, state: TrainState
) -> dict:
    return {
        "version": STATE_VERSION,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict(),
        "rng": rng_state(),
        **dataclasses.asdict(state),
    }


def restore(out: Path, model: ASTModel, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler) -> TrainState:
    """Load ``out/last/train_state.pt`` into the model, optimizer and scaler; return the counters."""
    path = out / "last" / STATE_FILE
    if not path.is_file():
        raise InputError(f"{out}: nothing to resume (no {Path('last') / STATE_FILE}); start without --resume")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated or foreign file: one line, not a traceback
        raise InputError(f"{path}: cannot read the training state ({e.__class__.__name__}: {e})") from None
    if saved.get("version") != STATE_VERSION:
        raise InputError(f"{path}: training state version {saved.get('version')}, expected {STATE_VERSION}")
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    scaler.load_state_dict(saved["scaler"])
    set_rng_state(saved["rng"])
    return TrainState(**{f.name: saved[f.name] for f in dataclasses.fields(TrainState)})


# --- logging and progress -------------------------------------------------------------------


class RunLog:
    """JSON lines in ``log.jsonl`` (and TensorBoard scalars when tensorboard is installed); rank 0 only."""

    def __init__(self, out: Path, enabled: bool):
        self.enabled = enabled
        self.path = out / "log.jsonl"
        self.tensorboard = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tensorboard = SummaryWriter(str(out / "tensorboard"))
            except ImportError:
                pass

    def write(self, event: str, step: int, **fields) -> None:
        if not self.enabled:
            return
        record = {"event": event, "time": time.time(), "step": step, **fields}
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, default=_json_default) + "\n")
        if self.tensorboard is not None:
            for key, value in _flat_numbers(fields).items():
                self.tensorboard.add_scalar(f"{event}/{key}", value, step)

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()


def _json_default(x):
    return float(x) if isinstance(x, (np.floating, np.integer)) else str(x)


def _flat_numbers(fields: dict, prefix: str = "") -> dict[str, float]:
    out = {}
    for key, value in fields.items():
        if isinstance(value, dict):
            out.update(_flat_numbers(value, f"{prefix}{key}/"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            out[f"{prefix}{key}"] = value
    return out


def progress_bar(enabled: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]}  lr {task.fields[lr]}  {task.fields[speed]} clips/s"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        disable=not enabled,
        transient=False,
    )


# --- one epoch of training ------------------------------------------------------------------


def train_one_epoch(
    epoch: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    data: Data,
    config: TrainConfig,
    runtime: Runtime,
    state: TrainState,
    log: RunLog,
    total_steps: int,
) -> dict:
    """One pass over this epoch's share of the data; returns the mean loss and the throughput."""
    model.train()
    data.sampler.set_epoch(epoch)
    loss_fn = loss_function(config)
    accum = config.grad_accum
    steps = len(data.train) // accum
    loss_sum = torch.zeros((), device=runtime.device)  # summed on the device: no sync per step
    window_sum, window_n, window_start = torch.zeros((), device=runtime.device), 0, time.perf_counter()
    start, lr = time.perf_counter(), 0.0
    with progress_bar(runtime.is_main) as bar:
        task = bar.add_task(f"epoch {epoch}/{config.epochs}", total=steps, loss="-", lr="-", speed="-")
        for i, (fbank, target) in enumerate(data.train):
            if i % accum == 0:
                lr = learning_rate(config, state.step, epoch, total_steps)
                for group in optimizer.param_groups:
                    group["lr"] = lr
            last_micro = (i + 1) % accum == 0
            # Between accumulation steps DDP need not all-reduce gradients.
            no_sync = model.no_sync() if runtime.distributed and not last_micro else contextlib.nullcontext()
            with no_sync:
                with autocast(runtime.device, runtime.amp_dtype):
                    logits = model(fbank.to(runtime.device, non_blocking=True))
                loss = loss_fn(logits.float(), target.to(runtime.device, non_blocking=True))
                scaler.scale(loss / accum).backward()
            loss_sum += loss.detach()
            window_sum += loss.detach()
            window_n += 1
            if not last_micro:
                continue
            if config.grad_clip:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            state.step += 1
            step_in_epoch = (i + 1) // accum
            if state.step % config.log_every == 0 or step_in_epoch == steps:
                mean_loss = all_mean(window_sum / window_n, runtime)
                elapsed = time.perf_counter() - window_start
                speed = window_n * data.micro_batch * runtime.world_size / max(elapsed, 1e-9)
                log.write("train", state.step, epoch=epoch, loss=mean_loss, lr=lr, clips_per_s=speed)
                bar.update(task, loss=f"{mean_loss:.4f}", lr=f"{lr:.2e}", speed=f"{speed:.1f}")
                window_sum.zero_()
                window_n, window_start = 0, time.perf_counter()
            bar.update(task, completed=step_in_epoch)
    seconds = time.perf_counter() - start
    clips = steps * config.batch_size
    return {
        "loss": all_mean(loss_sum / max(1, steps * accum), runtime),
        "seconds": seconds,
        "clips_per_s": clips / seconds,
    }


# --- validation -----------------------------------------------------------------------------


def score_split(model: torch.nn.Module, loader, split_size: int, config: TrainConfig, runtime: Runtime):
    """Logits and targets of a whole split, gathered from every process in dataset order."""
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not runtime.is_main,
        transient=True,
    ) as bar:
        task = bar.add_task("evaluating", total=len(loader.sampler) * runtime.world_size)
        logits, targets = predict(
            model,
            loader,
            runtime.device,
            runtime.amp_dtype,
            progress=lambda n: bar.advance(task, n * runtime.world_size),
        )
    return gather_rows(logits, split_size, runtime), gather_rows(targets, split_size, runtime)


def evaluation(logits: np.ndarray, targets: np.ndarray, config: TrainConfig, per_class: bool = False) -> dict:
    """Metrics of logits against targets, plus the loss the run trains with."""
    metrics = compute_metrics(scores_from_logits(logits, config.activation), targets, per_class)
    metrics["loss"] = float(loss_function(config)(torch.from_numpy(logits), torch.from_numpy(targets)))
    return metrics


def metric_value(metrics: dict, name: str) -> float:
    """The best-checkpoint criterion, oriented so that larger is better."""
    return -metrics["loss"] if name == "loss" else metrics[name]


# --- checkpoints ----------------------------------------------------------------------------


def save_model(path: Path, model: ASTModel, data: Data, config: TrainConfig, info: dict) -> None:
    """The project's checkpoint format (Hugging Face AST directory) plus ``training.json``."""
    extra = {
        "training.json": {
            **info,
            "label_mids": data.labels.mids,
            "config": config.to_dict(),
        }
    }
    save_checkpoint(path, model.config, model.state_dict(), data.labels.names, data.frontend, True, extra)


def save_epoch(
    out: Path,
    model: ASTModel,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    data: Data,
    config: TrainConfig,
    state: TrainState,
    is_best: bool,
) -> None:
    """epoch_NNN/, best/ (when it is) and last/ with the training state; rank 0 calls this."""
    info = {"epoch": state.epoch, "step": state.step, "metrics": state.history[-1]}
    save_model(out / f"epoch_{state.epoch:03d}", model, data, config, info)
    if is_best:
        save_model(out / "best", model, data, config, info)
    with atomic_dir(out / "last", overwrite=True) as tmp:  # model + state appear together or not at all
        save_model(tmp, model, data, config, info)
        torch.save(training_state(model, optimizer, scaler, state), tmp / STATE_FILE)
    previous = state.epoch - 1  # kept when weight averaging will need it
    if not config.keep_epoch_checkpoints and not config.wa_start <= previous <= config.wa_end:
        shutil.rmtree(out / f"epoch_{previous:03d}", ignore_errors=True)


# --- the end: weight averaging, test set, summary -------------------------------------------


def average_weights(out: Path, first: int, last: int) -> dict[str, torch.Tensor]:
    """Mean of the weights saved after epochs ``first..last`` (float64 sums)."""
    total: dict[str, torch.Tensor] = {}
    for epoch in range(first, last + 1):
        path = out / f"epoch_{epoch:03d}"
        if not path.is_dir():
            raise InputError(f"{path}: missing; weight averaging over epochs {first}..{last} needs every one")
        for key, value in load_checkpoint(path).state_dict.items():
            total[key] = total.get(key, 0) + value.double()
    n = last - first + 1
    return {key: (value / n).float() for key, value in total.items()}


def finish(out: Path, model: ASTModel, data: Data, config: TrainConfig, runtime: Runtime, state: TrainState) -> dict:
    """Weight averaging and the test set, then ``summary.json``."""
    history = state.history
    summary: dict = {"epochs": state.epoch, "steps": state.step, "best_metric": config.best_metric_name}
    if history:
        summary["last"] = history[-1]
        summary["best"] = next(h for h in history if h["epoch"] == state.best_epoch) if state.best_epoch else None
    candidates = {"best": out / "best"}
    if config.wa_start:
        model.load_state_dict(average_weights(out, config.wa_start, config.wa_end))
        if runtime.is_main:
            info = {"epoch": state.epoch, "step": state.step, "weight_averaged": [config.wa_start, config.wa_end]}
            save_model(out / "wa", model, data, config, info)
        barrier(runtime)
        candidates["weight_averaged"] = out / "wa"
        if "valid" in data.splits:
            loader = eval_loader(data, "valid", config, runtime, persistent=False)
            summary["weight_averaged"] = evaluation(
                *score_split(model, loader, len(data.splits["valid"]), config, runtime), config
            )
    if "test" in data.splits:
        summary["test"] = {}
        loader = eval_loader(data, "test", config, runtime, persistent=False)
        for name, path in candidates.items():
            model.load_state_dict(load_checkpoint(path).state_dict)
            logits, targets = score_split(model, loader, len(data.splits["test"]), config, runtime)
            summary["test"][name] = evaluation(logits, targets, config, per_class=True)
        summary["test"]["labels"] = data.labels.names
    return summary


def print_epoch(record: dict, config: TrainConfig) -> None:
    parts = [f"epoch {record['epoch']}", f"train loss {record['train']['loss']:.4f}"]
    for name in ("valid", "ensemble"):
        m = record.get(name)
        if m:
            parts.append(f"{name} mAP {m['mAP']:.4f} AUC {m['mAUC']:.4f} d' {m['d_prime']:.3f} acc {m['accuracy']:.4f}")
    parts.append(f"{record['train']['clips_per_s']:.1f} clips/s")
    console.print("  ".join(parts), highlight=False)


# --- the run --------------------------------------------------------------------------------


def train(config: TrainConfig, out: Path, resume: bool = False) -> dict:
    """Train one model; returns the summary (also written to ``out/summary.json``)."""
    out = Path(out)
    runtime = setup_runtime(config)
    if not resume and (out / "last").exists():
        raise InputError(f"{out}: holds a training run already; continue it with --resume or choose another --out")
    if runtime.is_main:
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "config.json", config.to_dict())
    log = RunLog(out, runtime.is_main)

    data = build_data(config, runtime, out)
    raw_model, origin = build_model(config, len(data.labels), runtime)
    optimizer = build_optimizer(config, raw_model)
    scaler = torch.amp.GradScaler(runtime.device.type, enabled=runtime.amp_dtype == torch.float16)
    state = restore(out, raw_model, optimizer, scaler) if resume else TrainState()
    model = wrap_distributed(raw_model, runtime)  # after restoring: DDP starts from the loaded weights

    steps_per_epoch = len(data.train) // config.grad_accum
    total_steps = steps_per_epoch * config.epochs
    if runtime.is_main:
        precision = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[runtime.amp_dtype]
        console.print(
            f"{'resuming after epoch ' + str(state.epoch) if resume else 'training'}: {origin}; "
            f"{len(data.splits['train'])} clips, {len(data.labels)} labels, {steps_per_epoch} steps/epoch of "
            f"{config.batch_size} on {runtime.world_size} x {runtime.device} ({precision})",
            highlight=False,
        )
        log.write("start", state.step, resume=resume, origin=origin, world_size=runtime.world_size)
    valid = eval_loader(data, "valid", config, runtime) if "valid" in data.splits else None

    for epoch in range(state.epoch + 1, config.epochs + 1):
        record = {"epoch": epoch}
        record["train"] = train_one_epoch(
            epoch, model, optimizer, scaler, data, config, runtime, state, log, total_steps
        )
        record["lr"] = optimizer.param_groups[0]["lr"]
        state.epoch = epoch
        if valid is not None:
            logits, targets = score_split(raw_model, valid, len(data.splits["valid"]), config, runtime)
            record["valid"] = evaluation(logits, targets, config)
            scores = torch.from_numpy(scores_from_logits(logits, config.activation)).double()
            state.ensemble_sum = scores if state.ensemble_sum is None else state.ensemble_sum + scores
            state.ensemble_count += 1
            ensemble = (state.ensemble_sum / state.ensemble_count).numpy()
            record["ensemble"] = compute_metrics(ensemble, targets)
            value = metric_value(record["valid"], config.best_metric_name)
        else:
            value = -record["train"]["loss"]  # no validation set: the lowest training loss is "best"
        is_best = value > state.best_metric
        if is_best:
            state.best_metric, state.best_epoch = value, epoch
        state.history.append(record)
        if runtime.is_main:
            save_epoch(out, raw_model, optimizer, scaler, data, config, state, is_best)
            log.write("epoch", state.step, **record)
            print_epoch(record, config)
        barrier(runtime)
        if epoch == config.stop_after_epoch and epoch < config.epochs:
            log.close()
            return {"stopped": True, "epoch": epoch, "step": state.step}

    summary = finish(out, raw_model, data, config, runtime, state)
    if runtime.is_main:
        write_json(out / "summary.json", summary)
        log.write("done", state.step, **{k: v for k, v in summary.items() if k != "test"})
    log.close()
    return summary


def run(config: TrainConfig, out: Path, resume: bool = False) -> dict:
    """Train, or with ``folds`` cross-validate (one run per fold in ``out/fold_K``, then per-fold and mean)."""
    out = Path(out)
    if not config.folds:
        return train(config, out, resume)
    fold_dirs = {fold: out / f"fold_{fold}" for fold in config.folds}
    if resume and not any(
        (d / "last" / STATE_FILE).is_file() or (d / "summary.json").is_file() for d in fold_dirs.values()
    ):
        raise InputError(f"{out}: nothing to resume (no fold has a checkpoint); start without --resume")
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "config.json", config.to_dict())
    results = {}
    for fold, fold_out in fold_dirs.items():
        if resume and (fold_out / "summary.json").is_file():
            results[fold] = json.loads((fold_out / "summary.json").read_text())
            continue
        fold_resume = resume and (fold_out / "last" / STATE_FILE).is_file()
        if int(os.environ.get("RANK", "0")) == 0:
            console.print(f"[bold]fold {fold}[/bold] ({len(results) + 1} of {len(fold_dirs)})")
        summary = train(for_fold(config, fold), fold_out, fold_resume)
        if summary.get("stopped"):
            return summary
        results[fold] = summary
    summary = cross_validation_summary(results, config.best_metric_name)
    if int(os.environ.get("RANK", "0")) == 0:
        write_json(out / "summary.json", summary)
        print_cross_validation(summary)
    return summary


def cross_validation_summary(results: dict[int, dict], metric: str) -> dict:
    """Per-fold and mean (± std) of the last epoch's and the best epoch's validation metric."""
    per_fold = {
        str(fold): {
            "last": (r.get("last") or {}).get("valid", {}).get(metric),
            "best": ((r.get("best") or {}).get("valid") or {}).get(metric),
        }
        for fold, r in results.items()
    }
    out = {"metric": metric, "folds": per_fold}
    for which in ("last", "best"):
        values = np.array([v[which] for v in per_fold.values() if v[which] is not None], dtype=np.float64)
        if values.size:
            out[f"mean_{which}"] = float(values.mean())
            out[f"std_{which}"] = float(values.std())
    return out


def print_cross_validation(summary: dict) -> None:
    table = Table(title=f"cross-validation: {summary['metric']}")
    for column in ("fold", "last epoch", "best epoch"):
        table.add_column(column, justify="right")
    for fold, v in summary["folds"].items():
        table.add_row(fold, *(f"{v[w]:.4f}" if v[w] is not None else "-" for w in ("last", "best")))
    if "mean_last" in summary:
        table.add_row(
            "mean",
            f"{summary['mean_last']:.4f} ± {summary['std_last']:.4f}",
            f"{summary['mean_best']:.4f} ± {summary['std_best']:.4f}" if "mean_best" in summary else "-",
        )
    console.print(table)


def resume_config(out: Path) -> TrainConfig:
    """The configuration a run in ``out`` was started with (``--resume`` without a recipe)."""
    path = Path(out) / "config.json"
    if not path.is_file():
        raise InputError(f"{out}: nothing to resume (no config.json); give the recipe, or start without --resume")
    return config_from_dict(json.loads(path.read_text(encoding="utf-8")), str(path))


def launch(recipe: str | None, overrides: list[str] | None, out: Path | None, resume: bool) -> dict:
    """What ``ast-deploy train`` and ``python -m ast_deploy_training`` do: resolve the config and the output, then run.

    Without a recipe the config is the defaults plus ``--set``; ``--resume`` without a recipe
    continues with the run's saved ``config.json`` (plus any ``--set``).
    """
    if resume and out is not None and not any(Path(out).glob(f"**/last/{STATE_FILE}")):
        raise InputError(f"{out}: nothing to resume (no checkpoint with a training state); start without --resume")
    if recipe is None and resume:
        if out is None:
            raise InputError("--resume needs --out DIR (the run to continue), or the recipe it was started with")
        config = resume_config(out)
        if overrides:
            config = apply(config, parse_overrides(overrides), "--set").validate()
    else:  # no recipe: the defaults plus --set
        config = load_config(recipe, overrides)
    name = Path(recipe).name.removesuffix(".toml") if recipe else "train"
    out = Path(out) if out is not None else Path("runs") / name
    try:
        return run(config, out, resume)
    finally:
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
