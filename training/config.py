"""Training configuration: one flat dataclass, recipes as TOML files, ``--set key=value`` overrides.

A recipe is a TOML file whose keys are :class:`TrainConfig` fields. Tables (``[data]``,
``[optim]``, ...) only group keys for the reader and are flattened, so ``--set lr=1e-4`` works
whatever table ``lr`` sits in. Every key is checked: a key that is not a field is an error that
names it, never a silently ignored typo.
"""

from __future__ import annotations

import dataclasses
import sys
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 (pyproject allows it): the same parser from PyPI
    import tomli as tomllib

from ast_deploy.errors import InputError
from ast_deploy.frontend import NORM_PRESETS
from ast_deploy.model import MODEL_SIZES

RECIPE_DIR = "recipes"


@dataclass
class TrainConfig:
    """Every knob of a training run. Defaults are the paper's common settings (Adam 0.95/0.999, wd 5e-7)."""

    # --- data: manifests are the authors' JSON, a CSV ``path,label[;label]``, or a folder per class.
    train_data: str = ""
    valid_data: str = ""  # validated every epoch; empty: no validation
    test_data: str = ""  # evaluated once at the end with the best and the averaged weights
    label_csv: str = ""  # ``index,mid,display_name``; needed for JSON manifests (their labels are mids)
    multi_label: bool = False  # several labels per clip (AudioSet): sigmoid outputs, mAP
    folds: list[int] = field(default_factory=list)  # cross-validation: one run per fold, "{fold}" in paths
    skip_bad_files: bool = False  # drop missing/unreadable audio instead of stopping
    check_audio: bool = True  # open every file's header before training (catches bad files early)
    num_workers: int = 2

    # --- features: the deployment front end (ast_deploy.frontend.KaldiFbank), bit for bit.
    target_length: int = 1024
    num_mel_bins: int = 128
    norm_mean: float = NORM_PRESETS["audioset"][0]
    norm_std: float = NORM_PRESETS["audioset"][1]

    # --- model
    model_size: str = "base"  # tiny | small | base (DeiT widths)
    embed_dim: int = 0  # 0: the size's width; set for non-DeiT widths (tests)
    num_heads: int = 0  # 0: the size's head count
    depth: int = 12
    fstride: int = 10
    tstride: int = 10
    init: str = "scratch"  # scratch | imagenet | checkpoint
    init_weights: str = ""  # DeiT state dict file or timm model name (imagenet); any AST checkpoint (checkpoint)

    # --- augmentation (all seeded per sample from (seed, epoch, position))
    freqm: int = 0  # SpecAugment frequency-mask width (max bins)
    timem: int = 0  # SpecAugment time-mask width (max frames)
    mixup: float = 0.0  # probability of mixing a clip with a random other one
    mixup_alpha: float = 10.0  # lambda ~ Beta(alpha, alpha)
    noise: bool = False  # uniform noise on the normalised fbank + time roll (Speech Commands recipe)
    balanced_sampling: bool = False  # draw clips with weight sum(1 / label count) (AudioSet full recipe)
    label_smoothing: float = 0.0

    # --- optimisation
    loss: str = ""  # bce | ce; empty: bce for multi-label, ce otherwise
    optimizer: str = "adam"  # adam | adamw
    lr: float = 1e-5
    betas: list[float] = field(default_factory=lambda: [0.95, 0.999])
    weight_decay: float = 5e-7
    lr_schedule: str = "step"  # step (the paper's) | cosine
    warmup_steps: int = 0  # linear warm-up over the first N optimizer steps
    lr_decay_start: int = 2  # step schedule: first epoch after which lr is multiplied by gamma
    lr_decay_every: int = 1
    lr_decay_gamma: float = 0.5
    min_lr: float = 0.0  # cosine schedule floor
    epochs: int = 5
    batch_size: int = 12  # global batch per optimizer step, over all processes and accumulation steps
    grad_accum: int = 1
    grad_clip: float = 0.0  # max gradient norm; 0: off (the paper does not clip)
    precision: str = "auto"  # auto | fp32 | bf16 | fp16 (auto: bf16/fp16 on CUDA, bf16 on CPUs with bf16)

    # --- evaluation and checkpoints
    best_metric: str = ""  # mAP | accuracy; empty: mAP for multi-label, accuracy otherwise
    wa_start: int = 0  # weight averaging over epochs wa_start..wa_end (inclusive); 0: off
    wa_end: int = 0
    eval_batch_size: int = 0  # 0: same as the per-process micro-batch, at least 16
    keep_epoch_checkpoints: bool = True

    # --- run
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    threads: int = 0  # torch intra-op threads of the main process; 0: torch's default
    log_every: int = 20  # optimizer steps between log lines
    max_steps_per_epoch: int = 0  # cap for smoke tests and benchmarks; 0: the whole epoch
    stop_after_epoch: int = 0  # stop (as if killed) once this epoch's checkpoint is written; for resume tests

    # -------------------------------------------------------------------------------------------

    @property
    def loss_name(self) -> str:
        return self.loss or ("bce" if self.multi_label else "ce")

    @property
    def activation(self) -> str:
        """What turns logits into scores in the saved model: sigmoid for multi-label tasks, else softmax."""
        return "sigmoid" if self.multi_label else "softmax"

    @property
    def best_metric_name(self) -> str:
        return self.best_metric or ("mAP" if self.multi_label else "accuracy")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def validate(self) -> TrainConfig:
        """Check values that the type alone does not; raise InputError naming the key."""
        choices = {
            "model_size": tuple(MODEL_SIZES),
            "init": ("scratch", "imagenet", "checkpoint"),
            "loss": ("", "bce", "ce"),
            "optimizer": ("adam", "adamw"),
            "lr_schedule": ("step", "cosine"),
            "precision": ("auto", "fp32", "bf16", "fp16"),
            "best_metric": ("", "mAP", "accuracy", "mAUC", "loss"),
        }
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                shown = ", ".join(a for a in allowed if a)
                raise InputError(f"config key {key}: {getattr(self, key)!r} is not one of {shown}")
        positive = (
            "target_length",
            "num_mel_bins",
            "depth",
            "fstride",
            "tstride",
            "epochs",
            "batch_size",
            "grad_accum",
        )
        for key in positive:
            if getattr(self, key) < 1:
                raise InputError(f"config key {key}: must be at least 1, got {getattr(self, key)}")
        non_negative = ("num_workers", "freqm", "timem", "warmup_steps", "lr", "weight_decay", "min_lr", "log_every")
        for key in non_negative:
            if getattr(self, key) < 0:
                raise InputError(f"config key {key}: must not be negative, got {getattr(self, key)}")
        if not 0.0 <= self.mixup <= 1.0:
            raise InputError(f"config key mixup: a probability in [0, 1], got {self.mixup}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise InputError(f"config key label_smoothing: must be in [0, 1), got {self.label_smoothing}")
        if self.norm_std <= 0:
            raise InputError(f"config key norm_std: must be positive, got {self.norm_std}")
        if len(self.betas) != 2:
            raise InputError(f"config key betas: two numbers, got {self.betas}")
        if self.init != "scratch" and not self.init_weights:
            raise InputError(f"config key init_weights: init={self.init!r} needs init_weights (a file or name)")
        if (self.wa_start or self.wa_end) and not 1 <= self.wa_start <= self.wa_end <= self.epochs:
            raise InputError(
                f"config keys wa_start/wa_end: need 1 <= wa_start <= wa_end <= epochs ({self.epochs}), "
                f"got {self.wa_start}..{self.wa_end}"
            )
        if self.batch_size % self.grad_accum:
            raise InputError(f"config key grad_accum: {self.grad_accum} does not divide batch_size {self.batch_size}")
        if not self.train_data:
            raise InputError("config key train_data: no training manifest given (--set train_data=PATH)")
        return self


FIELD_TYPES: dict[str, object] = typing.get_type_hints(TrainConfig)
TRUE, FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def coerce(key: str, value: object, where: str) -> object:
    """Turn a TOML value or a command-line string into the type of field ``key``."""
    kind = FIELD_TYPES[key]
    try:
        if typing.get_origin(kind) is list:
            (item,) = typing.get_args(kind)
            if isinstance(value, str):
                text = value.strip().removeprefix("[").removesuffix("]")
                value = [v.strip() for v in text.split(",") if v.strip()]
            if not isinstance(value, list):
                raise ValueError("expected a list")
            return [_scalar(item, v) for v in value]
        return _scalar(kind, value)
    except (TypeError, ValueError) as e:
        raise InputError(f"{where}: config key {key}: {value!r} is not a valid {_type_name(kind)} ({e})") from None


def _scalar(kind, value):
    if kind is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in TRUE or text in FALSE:
            return text in TRUE
        raise ValueError("expected true or false")
    if kind is int:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError("expected an integer")
        return int(value)
    if kind is float:
        if isinstance(value, bool):
            raise ValueError("expected a number")
        return float(value)
    if kind is str:
        if not isinstance(value, (str, int, float)):
            raise ValueError("expected a string")
        return str(value)
    raise TypeError(f"unsupported field type {kind}")


def _type_name(kind) -> str:
    if typing.get_origin(kind) is list:
        return f"list of {typing.get_args(kind)[0].__name__}"
    return kind.__name__ if isinstance(kind, type) else str(kind)


def _flatten(table: dict, where: str, prefix: str = "") -> dict:
    flat = {}
    for key, value in table.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, where, f"{prefix}{key}."))
        elif key in flat:
            raise InputError(f"{where}: config key {key} appears twice")
        else:
            flat[key] = value
    return flat


def apply(config: TrainConfig, values: dict, where: str) -> TrainConfig:
    unknown = [k for k in values if k not in FIELD_TYPES]
    if unknown:
        raise InputError(f"{where}: unknown config key {unknown[0]!r}" + _suggest(unknown[0]))
    return dataclasses.replace(config, **{k: coerce(k, v, where) for k, v in values.items()})


def _suggest(key: str) -> str:
    import difflib

    close = difflib.get_close_matches(key.split(".")[-1], list(FIELD_TYPES), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def recipe_names() -> list[str]:
    return sorted(
        p.name.removesuffix(".toml")
        for p in resources.files(__package__).joinpath(RECIPE_DIR).iterdir()
        if p.name.endswith(".toml")
    )


def read_recipe(name_or_path: str | Path) -> tuple[dict, str]:
    """A recipe's flat key table and where it came from: a file path, or a packaged recipe's name."""
    path = Path(name_or_path)
    if path.is_file():
        text, where = _read_text(path), str(path)
    elif path.suffix != ".toml" and path.name in recipe_names():
        resource = resources.files(__package__).joinpath(RECIPE_DIR, f"{path.name}.toml")
        text, where = resource.read_text(encoding="utf-8"), f"recipe {path.name}"
    elif path.exists():
        raise InputError(f"{path}: not a file (expected a TOML config or a recipe name)")
    else:
        raise InputError(f"{name_or_path}: no such config file or recipe (recipes: {', '.join(recipe_names())})")
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"{where}: not valid TOML ({e})") from None
    return _flatten(table, where), where


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read ({e})") from None


def parse_overrides(items: list[str] | None) -> dict[str, str]:
    """``["lr=1e-4", "folds=1,2"]`` -> ``{"lr": "1e-4", "folds": "1,2"}`` (values coerced later)."""
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--set {item!r}: expected key=value")
        out[key.strip()] = value
    return out


def load_config(recipe: str | Path | None, overrides: list[str] | dict | None = None) -> TrainConfig:
    """Recipe (name or TOML path) + ``--set`` overrides -> a validated :class:`TrainConfig`."""
    config = TrainConfig()
    if recipe is not None:
        table, where = read_recipe(recipe)
        config = apply(config, table, where)
    if overrides:
        values = overrides if isinstance(overrides, dict) else parse_overrides(overrides)
        config = apply(config, values, "--set")
    return config.validate()


def config_from_dict(data: dict, where: str) -> TrainConfig:
    """A config saved by a run (``config.json``), for ``--resume`` without the recipe."""
    return apply(TrainConfig(), data, where).validate()


def for_fold(config: TrainConfig, fold: int) -> TrainConfig:
    """The config of one cross-validation fold: ``{fold}`` filled in every data path."""
    paths = {k: getattr(config, k).replace("{fold}", str(fold)) for k in ("train_data", "valid_data", "test_data")}
    return dataclasses.replace(config, folds=[], **paths)
