"""One loader for every checkpoint format users bring, detected automatically.

* the AST authors' ``.pth`` (``audioset_10_10_0.4593.pth`` and friends): ``authors.py``;
* a Hugging Face AST directory, transformers 4.x or 5.x key layout: ``huggingface.py``;
* this project's own format, which *is* the Hugging Face layout (``save_checkpoint``).

Nothing is unpickled beyond tensors (``torch.load(..., weights_only=True)``).
"""

from __future__ import annotations

import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..errors import InputError
from ..fileio import atomic_dir, read_json_object, write_json
from ..frontend import NORM_PRESETS, FrontEndConfig
from ..labels import builtin_label_set, generic_labels, read_label_csv
from ..model import ASTConfig, ASTModel
from . import authors, huggingface

# Label count of the paper's tasks -> preset (label set, normalisation, activation).
TASK_PRESETS: dict[int, str] = {527: "audioset", 50: "esc50", 35: "speechcommands"}
PRESET_ACTIVATION = {"audioset": "sigmoid", "esc50": "softmax", "speechcommands": "softmax"}


@dataclass(frozen=True)
class LoadOptions:
    """User overrides for what a checkpoint does not store (CLI flags of the same names)."""

    input_tdim: int | None = None
    fstride: int | None = None
    tstride: int | None = None
    num_mel_bins: int | None = None
    num_heads: int | None = None
    label_csv: str | Path | None = None
    norm: str | None = None  # audioset | esc50 | speechcommands
    activation: str | None = None  # sigmoid | softmax


@dataclass
class Checkpoint:
    config: ASTConfig
    frontend: FrontEndConfig
    labels: list[str]
    state_dict: dict[str, torch.Tensor] = field(repr=False)
    source: Path
    format: str  # "authors" | "huggingface" | "ast-deploy"

    def build_model(self) -> ASTModel:
        # Built on the meta device: no random initialisation (seconds for AST-base) that the
        # checkpoint's tensors would overwrite anyway; float32 copies of those are assigned instead.
        with torch.device("meta"):
            model = ASTModel(self.config)
        weights = {k: v.to(torch.float32, copy=True) for k, v in self.state_dict.items()}  # no aliasing
        load_weights(model, weights, str(self.source), assign=True)
        return model.eval()


def torch_load(path: Path) -> dict:
    """``torch.load`` restricted to tensors and containers, with errors as one line."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # torch's weights-only unpickler says "Unsupported global: GLOBAL x.y ..." for an object it
        # refuses to build; anything else it cannot parse (e.g. random bytes) is a damaged file.
        unsafe = re.search(r"GLOBAL (\S+)", str(e))
        if unsafe:
            raise InputError(f"{path}: refusing to unpickle {unsafe.group(1)} (only tensors are loaded)") from None
        detail = str(e).split("WeightsUnpickler error:")[-1].strip().splitlines()
        raise InputError(
            f"{path}: corrupt or truncated checkpoint (unpickling failed: {detail[0] if detail else 'unknown'})"
        ) from None
    except Exception as e:  # the weights-only unpickler raises KeyError, IndexError, ... on garbage
        raise InputError(
            f"{path}: corrupt or truncated checkpoint ({e.__class__.__name__}: {str(e).splitlines()[0] if str(e) else ''})"
        ) from None
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        obj = obj["model"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise InputError(f"{path}: not a state dict of tensors")
    return obj


def load_weights(model: torch.nn.Module, state_dict: dict[str, torch.Tensor], where: str, assign: bool = False) -> None:
    """``load_state_dict(strict=True)`` with every missing, unexpected or mis-shaped key named."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    shapes = [
        f"{k} {tuple(state_dict[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state_dict and state_dict[k].shape != v.shape
    ]
    problems = []
    for what, names in (("missing", missing), ("unexpected", unexpected), ("wrong shape", shapes)):
        if names:
            problems.append(
                f"{what}: {', '.join(names[:4])}" + (f" (+{len(names) - 4} more)" if len(names) > 4 else "")
            )
    if problems:
        raise InputError(f"{where}: weights do not fit the model ({'; '.join(problems)})")
    model.load_state_dict(state_dict, assign=assign)


def _labels(n: int, options: LoadOptions, stored: list[str] | None) -> list[str]:
    if options.label_csv is not None:
        names = read_label_csv(options.label_csv).names
        if len(names) != n:
            raise InputError(f"{options.label_csv}: label CSV has {len(names)} labels but the model outputs {n}")
        return names
    if stored is not None:
        return stored
    return builtin_label_set(TASK_PRESETS[n]).names if n in TASK_PRESETS else generic_labels(n)


def _norm(options: LoadOptions, default: str) -> tuple[float, float]:
    name = options.norm or default
    if name not in NORM_PRESETS:
        raise InputError(f"unknown normalisation preset {name!r}; known: {', '.join(NORM_PRESETS)}")
    return NORM_PRESETS[name]


def _load_authors(path: Path, state_dict: dict, options: LoadOptions) -> Checkpoint:
    sd = authors.to_model_state_dict(state_dict)
    head = sd.get("head.fc.weight")
    preset = TASK_PRESETS.get(head.shape[0]) if head is not None else None
    activation = options.activation or PRESET_ACTIVATION.get(preset, "sigmoid")
    config = authors.config_from_state_dict(
        sd,
        input_tdim=options.input_tdim,
        fstride=options.fstride,
        tstride=options.tstride,
        num_mel_bins=options.num_mel_bins,
        num_heads=options.num_heads,
        activation=activation,
    )
    mean, std = _norm(options, preset or "audioset")
    frontend = FrontEndConfig(num_mel_bins=config.num_mel_bins, target_length=config.target_length, mean=mean, std=std)
    return Checkpoint(config, frontend, _labels(config.num_labels, options, None), sd, path, "authors")


def _load_huggingface(path: Path, options: LoadOptions) -> Checkpoint:
    config_path = path / "config.json"
    if not config_path.is_file():
        raise InputError(f"{path}: directory has no config.json (not a Hugging Face AST directory)")
    cfg = read_json_object(config_path)
    config = huggingface.config_from_json(cfg, str(config_path))
    if options.activation:
        config = config.replace(activation=options.activation)
    if options.input_tdim and options.input_tdim != config.target_length:
        raise InputError(
            f"{path}: --input-tdim {options.input_tdim} contradicts max_length {config.target_length} in config.json"
        )
    weights = _read_hf_weights(path)
    sd = huggingface.to_model_state_dict(weights, config.depth, str(path))
    pre_path = path / "preprocessor_config.json"
    pre = read_json_object(pre_path) if pre_path.is_file() else {}
    frontend = huggingface.frontend_from_json(pre, config, str(pre_path))
    if options.norm:
        mean, std = _norm(options, options.norm)
        frontend = FrontEndConfig(**{**frontend.to_dict(), "mean": mean, "std": std})
    if frontend.num_mel_bins != config.num_mel_bins or frontend.target_length != config.target_length:
        raise InputError(
            f"{pre_path}: feature extractor gives {frontend.target_length}x{frontend.num_mel_bins} "
            f"but the model expects {config.target_length}x{config.num_mel_bins}"
        )
    labels = _labels(config.num_labels, options, huggingface.labels_from_json(cfg, config.num_labels))
    fmt = "ast-deploy" if "ast_deploy" in cfg else "huggingface"
    return Checkpoint(config, frontend, labels, sd, path, fmt)


def _read_hf_weights(path: Path) -> dict[str, torch.Tensor]:
    st, pt = path / "model.safetensors", path / "pytorch_model.bin"
    if st.is_file():
        try:
            return load_file(st)
        except (SafetensorError, OSError, ValueError) as e:
            raise InputError(f"{st}: corrupt or truncated safetensors file ({e})") from None
    if pt.is_file():
        return torch_load(pt)
    raise InputError(f"{path}: no model.safetensors or pytorch_model.bin")


def load_checkpoint(path: str | Path, options: LoadOptions | None = None) -> Checkpoint:
    """Load any supported checkpoint; the format is detected from the path's content."""
    options = options or LoadOptions()
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or directory")
    if path.is_dir():
        return _load_huggingface(path, options)
    if path.suffix == ".safetensors" or path.name in ("config.json", "preprocessor_config.json"):
        raise InputError(f"{path}: give the Hugging Face model directory ({path.parent}), not one of its files")
    state_dict = torch_load(path)
    if authors.is_authors_state_dict(state_dict):
        return _load_authors(path, state_dict, options)
    if any(k.startswith(huggingface.PREFIX) for k in state_dict):
        raise InputError(f"{path}: Hugging Face weights; give the directory with its config.json")
    if "pos_embed" in state_dict and "patch_embed.proj.weight" in state_dict:
        if state_dict["patch_embed.proj.weight"].shape[1] == 3:
            raise InputError(f"{path}: an ImageNet (DeiT) state dict, not an AST; use it to initialise training")
        return _load_authors(path, state_dict, options)  # our ASTModel keys, e.g. saved with torch.save
    raise InputError(f"{path}: not an AST checkpoint (no positional embedding among {len(state_dict)} tensors)")


def save_checkpoint(
    out_dir: str | Path,
    config: ASTConfig,
    state_dict: dict[str, torch.Tensor],
    labels: list[str],
    frontend: FrontEndConfig,
    overwrite: bool = False,
    extra_files: dict[str, dict] | None = None,
) -> Path:
    """Write this project's format (a Hugging Face AST directory) atomically."""
    if len(labels) != config.num_labels:
        raise InputError(f"{len(labels)} labels for a model with {config.num_labels} outputs")
    out_dir = Path(out_dir)
    with atomic_dir(out_dir, overwrite=overwrite) as tmp:
        weights = huggingface.from_model_state_dict({k: v.float().cpu() for k, v in state_dict.items()}, config.depth)
        save_file(weights, tmp / "model.safetensors", metadata={"format": "pt"})
        write_json(tmp / "config.json", huggingface.config_to_json(config, labels))
        write_json(tmp / "preprocessor_config.json", huggingface.frontend_to_json(frontend))
        for name, data in (extra_files or {}).items():
            write_json(tmp / name, data)
    return out_dir


__all__ = ["Checkpoint", "LoadOptions", "load_checkpoint", "load_weights", "save_checkpoint", "torch_load"]
