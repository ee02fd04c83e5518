"""``ast-deploy init``: a randomly initialised AST in this project's format."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import InputError
from .app import app, err_console


@app.command()
def init(
    out: Annotated[Path, typer.Argument(help="Directory to write (this project's format).")],
    size: Annotated[str, typer.Option(help="tiny | small | base")] = "base",
    frames: Annotated[int, typer.Option(help="Input frames (target_length); 1024 = 10.24 s.")] = 1024,
    depth: Annotated[int, typer.Option(min=1)] = 12,
    fstride: Annotated[int, typer.Option(min=1)] = 10,
    tstride: Annotated[int, typer.Option(min=1)] = 10,
    labels: Annotated[
        str, typer.Option(help="audioset | esc50 | speechcommands, a label CSV, or a number.")
    ] = "audioset",
    seed: Annotated[int, typer.Option()] = 0,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing OUT.")] = False,
) -> None:
    """Write a randomly initialised AST (timm's ViT initialisation), e.g. to benchmark or train from scratch."""
    import torch

    from ..checkpoints import PRESET_ACTIVATION, save_checkpoint
    from ..frontend import NORM_PRESETS, FrontEndConfig
    from ..labels import LABEL_SETS, builtin_label_set, generic_labels, read_label_csv
    from ..model import ASTConfig, ASTModel

    if labels in LABEL_SETS:
        names, preset = builtin_label_set(labels).names, labels
    elif labels.isdigit():
        names, preset = generic_labels(int(labels)), "audioset"
    else:
        names, preset = read_label_csv(labels).names, "audioset"
    try:
        config = ASTConfig.from_size(
            size,
            depth=depth,
            fstride=fstride,
            tstride=tstride,
            target_length=frames,
            num_labels=len(names),
            activation=PRESET_ACTIVATION.get(preset, "sigmoid"),
        )
    except ValueError as e:
        raise InputError(f"init: {e}") from None
    torch.manual_seed(seed)
    mean, std = NORM_PRESETS[preset]
    frontend = FrontEndConfig(num_mel_bins=config.num_mel_bins, target_length=frames, mean=mean, std=std)
    model = ASTModel(config)
    save_checkpoint(out, config, model.state_dict(), names, frontend, overwrite=force)
    params = sum(p.numel() for p in model.parameters())
    err_console.print(
        f"wrote {out}: AST-{size}, {config.depth} blocks, {frames} frames, {len(names)} labels, "
        f"{params / 1e6:.1f} M parameters"
    )
