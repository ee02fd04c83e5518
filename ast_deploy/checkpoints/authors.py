"""The AST authors' ``.pth`` files: a pickled state dict of ``ASTModel`` saved through
``nn.DataParallel`` (keys ``module.v.*`` and ``module.mlp_head.*``).

The file stores neither the strides nor the frame count; they are recovered from the length of
the positional embedding (the released files are in :data:`RELEASED_GRIDS`), or given by the user.
"""

from __future__ import annotations

import torch

from ..errors import InputError
from ..model import MODEL_SIZES, ASTConfig

# Positional-embedding length of the released checkpoints -> (fstride, tstride, frames), 128 mel bins.
RELEASED_GRIDS: dict[int, tuple[int, int, int]] = {
    2 + 12 * 101: (10, 10, 1024),  # audioset_10_10_*.pth
    2 + 10 * 85: (12, 12, 1024),  # audioset_12_12_0.4467.pth
    2 + 9 * 73: (14, 14, 1024),  # audioset_14_14_0.4431.pth
    2 + 8 * 64: (16, 16, 1024),  # audioset_16_16_0.4422.pth
    2 + 12 * 12: (10, 10, 128),  # speechcommands_10_10_0.9812.pth
}

# Our parameter names are timm's, so only the head is renamed.
HEAD_KEYS = {
    "mlp_head.0.weight": "head.norm.weight",
    "mlp_head.0.bias": "head.norm.bias",
    "mlp_head.1.weight": "head.fc.weight",
    "mlp_head.1.bias": "head.fc.bias",
}
UNUSED_PREFIXES = ("v.head.", "v.head_dist.")  # the ImageNet heads timm leaves in the model


def is_authors_state_dict(state_dict: dict) -> bool:
    return any(strip_module_prefix(k).startswith("v.pos_embed") for k in state_dict)


def strip_module_prefix(key: str) -> str:
    return key[len("module.") :] if key.startswith("module.") else key


def to_model_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Authors' keys -> ``ASTModel`` keys; unknown keys are kept so that loading reports them."""
    out = {}
    for key, value in state_dict.items():
        key = strip_module_prefix(key)
        if key.startswith(UNUSED_PREFIXES):
            continue
        if key in HEAD_KEYS:
            out[HEAD_KEYS[key]] = value
        elif key.startswith("v."):
            out[key[2:]] = value
        else:
            out[key] = value
    return out


def from_model_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``ASTModel`` keys -> the authors' layout (``module.`` prefix), for users of their code."""
    inverse = {v: k for k, v in HEAD_KEYS.items()}
    return {"module." + inverse.get(k, "v." + k): v for k, v in state_dict.items()}


def infer_grid(
    num_patches: int,
    num_mel_bins: int,
    patch_size: int,
    input_tdim: int | None,
    fstride: int | None,
    tstride: int | None,
) -> tuple[int, int, int]:
    """(fstride, tstride, frames) consistent with ``num_patches``, preferring what the user gave."""
    nothing_given = input_tdim is None and fstride is None and tstride is None
    if nothing_given and num_mel_bins == 128 and num_patches + 2 in RELEASED_GRIDS:
        return RELEASED_GRIDS[num_patches + 2]
    candidates = []
    for fs in [fstride] if fstride else range(1, patch_size + 1):
        f_dim = (num_mel_bins - patch_size) // fs + 1
        if num_patches % f_dim:
            continue
        t_dim = num_patches // f_dim
        for ts in [tstride] if tstride else range(1, patch_size + 1):
            if tstride is None and fstride is None and ts != fs:
                continue  # with nothing given, only equal strides (as every released model has)
            if input_tdim is not None:
                if (input_tdim - patch_size) // ts + 1 == t_dim:
                    candidates.append((fs, ts, input_tdim))
            else:
                candidates.append((fs, ts, (t_dim - 1) * ts + patch_size))
    if len(candidates) == 1:
        return candidates[0]
    given = ", ".join(
        f"{n}={v}" for n, v in (("input_tdim", input_tdim), ("fstride", fstride), ("tstride", tstride)) if v
    )
    what = "no" if not candidates else f"{len(candidates)} possible"
    raise InputError(
        f"positional embedding of {num_patches} patches fits {what} (fstride, tstride, frames)"
        + (f" with {given}" if given else "")
        + "; pass --input-tdim, --fstride and --tstride"
    )


def config_from_state_dict(
    state_dict: dict[str, torch.Tensor],
    *,
    input_tdim: int | None = None,
    fstride: int | None = None,
    tstride: int | None = None,
    num_mel_bins: int | None = None,
    num_heads: int | None = None,
    activation: str = "sigmoid",
) -> ASTConfig:
    """Infer an :class:`ASTConfig` from tensor shapes (``state_dict`` in ``ASTModel`` keys)."""
    try:
        pos_embed = state_dict["pos_embed"]
        proj = state_dict["patch_embed.proj.weight"]
        fc1 = state_dict["blocks.0.mlp.fc1.weight"]
        head = state_dict["head.fc.weight"]
    except KeyError as e:
        raise InputError(f"checkpoint has no {e.args[0]!r} tensor (not an AST state dict?)") from None
    embed_dim = pos_embed.shape[-1]
    if num_heads is None:
        widths = {dim: heads for dim, heads in MODEL_SIZES.values()}
        if embed_dim not in widths:
            raise InputError(f"width {embed_dim} is not a DeiT size ({sorted(widths)}); pass --num-heads")
        num_heads = widths[embed_dim]
    depth = 1 + max(int(k.split(".")[1]) for k in state_dict if k.startswith("blocks."))
    patch_size = proj.shape[-1]
    mel_bins = num_mel_bins or 128
    fs, ts, frames = infer_grid(pos_embed.shape[1] - 2, mel_bins, patch_size, input_tdim, fstride, tstride)
    return ASTConfig(
        embed_dim=embed_dim,
        depth=depth,
        num_heads=num_heads,
        mlp_ratio=fc1.shape[0] / embed_dim,
        patch_size=patch_size,
        fstride=fs,
        tstride=ts,
        num_mel_bins=mel_bins,
        target_length=frames,
        num_labels=head.shape[0],
        qkv_bias="blocks.0.attn.qkv.bias" in state_dict,
        activation=activation,
    )
