"""``python -m ast_deploy_training RECIPE [--set key=value ...] [--out DIR] [--resume]``.

The entry point for PyTorch's launcher, unchanged from one process to many nodes::

    torchrun --nproc_per_node=4 -m ast_deploy_training audioset_balanced --out runs/as
    torchrun --nnodes=2 --nproc_per_node=8 --rdzv-backend=c10d --rdzv-endpoint=HOST:29500 -m ast_deploy_training ...
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ast_deploy.errors import InputError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ast_deploy_training", description="Train an Audio Spectrogram Transformer."
    )
    parser.add_argument("recipe", nargs="?", help="recipe name (training/recipes/*.toml) or a TOML config file")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key (repeatable)",
    )
    parser.add_argument("--out", type=Path, help="output directory (default: runs/RECIPE)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/last after a crash or kill")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    args = parser.parse_args(argv)
    from .train import launch

    try:
        launch(args.recipe, args.overrides, args.out, args.resume)
    except InputError as e:
        if args.debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
