"""Options shared by several verbs: the checkpoint flags, ``--device``, and JSON output."""

from __future__ import annotations

import functools
import inspect
import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

# --- checkpoint options, shared by every verb that reads a checkpoint -------------------------

_LOAD_OPTIONS = [
    ("input_tdim", Optional[int], "--input-tdim", "Frames the model was trained on (authors' .pth)."),
    ("fstride", Optional[int], "--fstride", "Frequency stride of the patches (authors' .pth)."),
    ("tstride", Optional[int], "--tstride", "Time stride of the patches (authors' .pth)."),
    ("num_mel_bins", Optional[int], "--num-mel-bins", "Mel bins (authors' .pth; default 128)."),
    ("num_heads", Optional[int], "--num-heads", "Attention heads, for widths that are not DeiT sizes."),
    ("label_csv", Optional[Path], "--labels", "Label CSV (index,mid,display_name)."),
    ("norm", Optional[str], "--norm", "Normalisation preset: audioset | esc50 | speechcommands."),
    ("activation", Optional[str], "--activation", "Output activation: sigmoid | softmax."),
]


def option_group(specs: list[tuple], panel: str, into: str, make):
    """A decorator adding each ``(name, annotation, flag, help)`` of ``specs`` to a command (in help
    panel ``panel``) and passing them on together as one argument ``into=make(**values)``."""

    def decorate(func):
        sig = inspect.signature(func, eval_str=True)
        params = [p for p in sig.parameters.values() if p.name != into]
        for name, annotation, flag, help_text in specs:
            option = typer.Option(flag, help=help_text, rich_help_panel=panel)
            params.append(
                inspect.Parameter(
                    name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[annotation, option]
                )
            )

        @functools.wraps(func)
        def wrapper(**kwargs):
            values = {name: kwargs.pop(name) for name, *_ in specs}
            return func(**{into: make(**values)}, **kwargs)

        wrapper.__signature__ = sig.replace(parameters=params)
        wrapper.__annotations__ = {p.name: p.annotation for p in params}
        return wrapper

    return decorate


def with_load_options(func):
    """Add the checkpoint flags to a command and pass them on as one ``options: LoadOptions``."""
    from ..checkpoints import LoadOptions

    return option_group(_LOAD_OPTIONS, "Checkpoint", "options", LoadOptions)(func)


# --- other shared options ------------------------------------------------------------------------

DeviceOption = Annotated[str, typer.Option(help="cpu | cuda")]
# The server that backend 'triton' talks to (a model served by 'ast-deploy serve' or any Triton).
TritonUrlOption = Annotated[
    Optional[str], typer.Option("--url", help="Triton server for backend 'triton' (http://HOST:PORT or grpc://...).")
]
TritonModelOption = Annotated[
    Optional[str],
    typer.Option("--model", help="Served model for backend 'triton' (default: the one from this directory)."),
]


def use_triton_server(url: str | None, model: str | None) -> None:
    """Point backend 'triton' at ``url``; through the environment, so that bench's per-row processes see it too."""
    import os

    from ..runtime.triton import MODEL_ENV, URL_ENV

    for name, value in ((URL_ENV, url), (MODEL_ENV, model)):
        if value is not None:
            os.environ[name] = value


def print_json_line(data) -> None:
    """One JSON object per line (JSON lines), flushed: a consumer on a pipe sees each as it comes."""
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()


def print_json(data) -> None:
    # json.dump writes piece by piece: json.dumps with indent first builds a list of every piece,
    # ~60 MB for the 28,800-window timeline of a 2-hour file at a 0.25 s hop (issue 13).
    json.dump(data, sys.stdout, indent=2)
    sys.stdout.write("\n")
