"""``ast-deploy convert``: any supported checkpoint to this project's format."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .app import app, err_console
from .options import with_load_options


@app.command()
@with_load_options
def convert(
    src: Annotated[Path, typer.Argument(help="Checkpoint in any supported format.")],
    dst: Annotated[Path, typer.Argument(help="Output directory (Hugging Face layout).")],
    force: Annotated[bool, typer.Option("--force", help="Replace an existing DST.")] = False,
    options=None,
) -> None:
    """Write this project's format (a Hugging Face AST directory) from any checkpoint."""
    from ..checkpoints import load_checkpoint, save_checkpoint

    ckpt = load_checkpoint(src, options)
    ckpt.build_model()  # validates every tensor's name and shape before anything is written
    save_checkpoint(dst, ckpt.config, ckpt.state_dict, ckpt.labels, ckpt.frontend, overwrite=force)
    err_console.print(f"wrote {dst} ({ckpt.format} -> ast-deploy, {ckpt.config.num_labels} labels)")
