"""``ast-deploy info``: what a checkpoint or an artifact directory holds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from .app import app, console, print_table
from .options import JsonOption, print_json, with_load_options


@app.command()
@with_load_options
def info(
    model: Annotated[Path, typer.Argument(help="Checkpoint or artifact directory.")],
    as_json: JsonOption = False,
    options=None,
) -> None:
    """Print a checkpoint's configuration (format, sizes, grid, labels, normalisation)."""
    from ..checkpoints import load_checkpoint

    if (model / "manifest.json").is_file():
        from ..artifacts import read_manifest

        manifest = read_manifest(model)
        if as_json:
            print_json(manifest)
        else:
            console.print_json(json.dumps({k: v for k, v in manifest.items() if k != "labels"}))
        return
    ckpt = load_checkpoint(model, options)
    c = ckpt.config
    data = {
        "source": str(ckpt.source),
        "format": ckpt.format,
        **c.to_dict(),
        "grid": list(c.grid),
        "num_patches": c.num_patches,
        "parameters": sum(v.numel() for v in ckpt.state_dict.values()),
        "gflops_per_clip": round(c.flops_per_clip() / 1e9, 2),
        "frontend": ckpt.frontend.to_dict(),
        "labels": ckpt.labels,
    }
    if as_json:
        print_json(data)
        return
    table = Table(show_header=False)
    for key, value in data.items():
        if key == "labels":
            shown = " | ".join(value[:5]) + (f", ... ({len(value)} labels)" if len(value) > 5 else "")
            table.add_row(key, shown)
        elif key == "frontend":
            table.add_row(key, ", ".join(f"{k}={v}" for k, v in value.items()))
        else:
            table.add_row(key, str(value))
    print_table(str(model), table)
