"""Where a model's first weights come from: scratch, ImageNet DeiT, or any AST checkpoint.

* ``scratch``: timm's ViT initialisation (``ASTModel.reset_parameters``), seeded.
* ``imagenet``: a distilled DeiT in timm's layout, from a state-dict file or, when timm is
  installed and online, by timm model name (the paper: ``deit_base_distilled_patch16_384``).
  Patch filters are summed over RGB and the positional grid is cut/interpolated
  (``ast_deploy.checkpoints.adapt``, checked against the authors' code in the core tests).
* ``checkpoint``: the authors' AudioSet ``.pth`` (the ESC-50 recipe), a Hugging Face AST
  directory or one of ours. The positional grid is fitted to the new frame count; the head is new
  when the label count changes.

With pretrained weights the architecture (width, depth, heads, strides for checkpoints) is the
weights', whatever ``model_size``/``depth`` say; a new classifier head is always seeded.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ast_deploy.checkpoints import Checkpoint, LoadOptions, load_checkpoint, load_weights, torch_load
from ast_deploy.checkpoints.adapt import state_dict_for_new_grid, state_dict_from_deit
from ast_deploy.errors import InputError
from ast_deploy.model import MODEL_SIZES, ASTConfig, ASTModel

from .config import TrainConfig


def scratch_config(config: TrainConfig, num_labels: int) -> ASTConfig:
    """The ASTConfig a recipe describes: a DeiT size, optionally with its width/heads overridden."""
    width, heads = MODEL_SIZES[config.model_size]
    try:
        return ASTConfig(
            embed_dim=config.embed_dim or width,
            num_heads=config.num_heads or heads,
            depth=config.depth,
            fstride=config.fstride,
            tstride=config.tstride,
            num_mel_bins=config.num_mel_bins,
            target_length=config.target_length,
            num_labels=num_labels,
            activation=config.activation,
        )
    except ValueError as e:
        raise InputError(f"config: {e}") from None


def initial_model(config: TrainConfig, num_labels: int) -> tuple[ASTModel, str]:
    """The model to start training from and a one-line note saying where its weights came from."""
    torch.manual_seed(config.seed)  # the new head (and everything, from scratch) is reproducible
    if config.init == "scratch":
        ast_config = scratch_config(config, num_labels)
        return ASTModel(ast_config), f"from scratch ({_describe(ast_config)})"
    if config.init == "imagenet":
        deit, source = load_deit(config.init_weights)
        ast_config = config_from_deit(deit, config, num_labels)
        model = ASTModel(ast_config)
        load_into(model, state_dict_from_deit(deit, ast_config), source, new_head=True)
        return model, f"ImageNet DeiT weights from {source} ({_describe(ast_config)})"
    ckpt = load_source_checkpoint(config)
    if ckpt.config.num_mel_bins != config.num_mel_bins:
        raise InputError(
            f"{config.init_weights}: checkpoint has {ckpt.config.num_mel_bins} mel bins, the config {config.num_mel_bins}"
        )
    ast_config = ckpt.config.replace(
        target_length=config.target_length, num_labels=num_labels, activation=config.activation
    )
    model = ASTModel(ast_config)
    new_head = ckpt.config.num_labels != num_labels
    load_into(model, state_dict_for_new_grid(ckpt.state_dict, ckpt.config, ast_config), str(ckpt.source), new_head)
    head = "new head" if new_head else "its head kept"
    return model, f"{ckpt.format} checkpoint {ckpt.source}, {head} ({_describe(ast_config)})"


def load_source_checkpoint(config: TrainConfig) -> Checkpoint:
    """Any checkpoint; an authors' file whose grid is ambiguous is read with the config's strides."""
    try:
        return load_checkpoint(config.init_weights)
    except InputError as first:
        if "--fstride" not in str(first):
            raise
        return load_checkpoint(config.init_weights, LoadOptions(fstride=config.fstride, tstride=config.tstride))


def _describe(c: ASTConfig) -> str:
    return f"width {c.embed_dim}, {c.depth} blocks, {c.num_heads} heads, strides {c.fstride}/{c.tstride}, {c.target_length} frames"


def load_into(model: ASTModel, state_dict: dict[str, torch.Tensor], where: str, new_head: bool) -> None:
    """Load every tensor except a new head; any other missing, extra or mis-shaped key is an error."""
    full = model.state_dict()
    if new_head:
        state_dict = {k: v for k, v in state_dict.items() if not k.startswith("head.")}
        state_dict.update({k: v for k, v in full.items() if k.startswith("head.")})
    load_weights(model, state_dict, where)


def load_deit(name_or_path: str) -> tuple[dict[str, torch.Tensor], str]:
    """A timm-layout DeiT state dict from a file, or from timm by model name (needs timm and a network)."""
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return torch_load(path), str(path)
    try:
        import timm
    except ImportError:
        raise InputError(
            f"init_weights {name_or_path!r}: no such file, and timm is not installed to fetch it by name "
            "(pip install timm, or give a DeiT state-dict file)"
        ) from None
    try:
        model = timm.create_model(name_or_path, pretrained=True)
    except Exception as e:  # unknown name, no network, hub errors: all one line for the user
        raise InputError(
            f"init_weights {name_or_path!r}: timm could not provide it ({e.__class__.__name__}: {e})"
        ) from None
    return model.state_dict(), f"timm:{name_or_path}"


def config_from_deit(deit: dict[str, torch.Tensor], config: TrainConfig, num_labels: int) -> ASTConfig:
    if "pos_embed" not in deit or "blocks.0.mlp.fc1.weight" not in deit:
        raise InputError(f"init_weights {config.init_weights}: not a DeiT state dict in timm's layout")
    width = deit["pos_embed"].shape[-1]
    heads = config.num_heads or dict(MODEL_SIZES.values()).get(width)
    if heads is None:
        raise InputError(f"init_weights {config.init_weights}: width {width} is not a DeiT size; set num_heads")
    depth = 1 + max(int(k.split(".")[1]) for k in deit if k.startswith("blocks."))
    base = scratch_config(config, num_labels)
    return base.replace(
        embed_dim=width,
        num_heads=heads,
        depth=depth,
        mlp_ratio=deit["blocks.0.mlp.fc1.weight"].shape[0] / width,
        qkv_bias="blocks.0.attn.qkv.bias" in deit,
    )
