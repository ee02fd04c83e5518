"""Weight adaptation as small pure functions: positional-embedding grids, ImageNet DeiT and
AudioSet-pretrained initialisation, exactly as the AST authors' ``ast_models.py`` does it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..errors import InputError
from ..model import ASTConfig

NUM_PREFIX_TOKENS = 2  # [CLS] and [DIST]


def adapt_pos_grid(grid: torch.Tensor, f_dim: int, t_dim: int) -> torch.Tensor:
    """Fit a (1, D, F0, T0) positional grid to (f_dim, t_dim), time axis first, then frequency.

    A shorter axis is cut from the middle; a longer one is bilinearly interpolated
    (``align_corners=False``, PyTorch's default, as the authors call it).
    """
    _, _, f0, t0 = grid.shape
    if t_dim <= t0:
        start = t0 // 2 - t_dim // 2
        grid = grid[:, :, :, start : start + t_dim]
    else:
        grid = F.interpolate(grid, size=(f0, t_dim), mode="bilinear")
    if f_dim <= f0:
        start = f0 // 2 - f_dim // 2
        grid = grid[:, :, start : start + f_dim, :]
    else:
        grid = F.interpolate(grid, size=(f_dim, t_dim), mode="bilinear")
    return grid


def adapt_pos_embed(pos_embed: torch.Tensor, old_grid: tuple[int, int], new_grid: tuple[int, int]) -> torch.Tensor:
    """(1, 2 + F0*T0, D) -> (1, 2 + f*t, D); the [CLS]/[DIST] positions are kept."""
    prefix, patches = pos_embed[:, :NUM_PREFIX_TOKENS], pos_embed[:, NUM_PREFIX_TOKENS:]
    dim = pos_embed.shape[-1]
    grid = patches.transpose(1, 2).reshape(1, dim, *old_grid)
    grid = adapt_pos_grid(grid, *new_grid)
    return torch.cat([prefix, grid.reshape(1, dim, -1).transpose(1, 2)], dim=1)


def square_grid(num_patches: int) -> tuple[int, int]:
    side = math.isqrt(num_patches)
    if side * side != num_patches:
        raise InputError(f"ImageNet positional embedding has {num_patches} patches, not a square grid")
    return side, side


def state_dict_from_deit(deit: dict[str, torch.Tensor], config: ASTConfig) -> dict[str, torch.Tensor]:
    """An AST encoder from ImageNet DeiT weights (timm layout); the classifier head is left out.

    RGB patch filters are summed into one input channel (bias kept), the positional grid is
    fitted to AST's patch grid, and the ImageNet heads are dropped.
    """
    required = ("pos_embed", "cls_token", "dist_token", "patch_embed.proj.weight")
    missing = [k for k in required if k not in deit]
    if missing:
        raise InputError(f"not a distilled DeiT state dict (timm layout): missing {', '.join(missing)}")
    out = {k: v for k, v in deit.items() if not k.startswith(("head.", "head_dist."))}
    out["patch_embed.proj.weight"] = deit["patch_embed.proj.weight"].sum(dim=1, keepdim=True)
    old_grid = square_grid(deit["pos_embed"].shape[1] - NUM_PREFIX_TOKENS)
    out["pos_embed"] = adapt_pos_embed(deit["pos_embed"], old_grid, config.grid)
    return out


def state_dict_for_new_grid(
    state_dict: dict[str, torch.Tensor], old: ASTConfig, new: ASTConfig
) -> dict[str, torch.Tensor]:
    """Re-use an AST (e.g. AudioSet-pretrained, 1024 frames) for another frame count / mel grid.

    Drops the classifier head when the label count changes (the new task gets a fresh head).
    """
    out = dict(state_dict)
    out["pos_embed"] = adapt_pos_embed(state_dict["pos_embed"], old.grid, new.grid)
    if old.num_labels != new.num_labels:
        out = {k: v for k, v in out.items() if not k.startswith("head.fc.")}
    return out
