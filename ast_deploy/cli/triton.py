"""``ast-deploy triton``: a Triton Inference Server model repository from an artifact directory."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from ..errors import InputError
from .app import app, console, print_table
from .options import JsonOption, ModelConfig, print_json, with_model_config_options

KIND_HELP = "Instance kind of ONNX, TorchScript and python models: auto, cpu or gpu (TensorRT is always gpu)."


def names_option(text: str | None, flag: str) -> tuple[str, ...] | None:
    """``a,b`` -> ("a", "b"); ``none`` -> (); not given -> None (the default choice)."""
    if text is None:
        return None
    if text.strip() == "none":
        return ()
    names = tuple(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))
    if not names:
        raise InputError(f"{flag} {text!r}: expected comma-separated names or 'none'")
    return names


@app.command()
@with_model_config_options
def triton(
    directory: Annotated[Path, typer.Argument(help="Artifact directory written by 'ast-deploy export'.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The model repository to write.")],
    native: Annotated[
        Optional[str],
        typer.Option(
            help="Artifacts served by Triton's own backends (default: every ONNX, TorchScript, TensorRT one)."
        ),
    ] = None,
    python: Annotated[
        Optional[str],
        typer.Option(help="ast-deploy backends served by the python backend (default: artifacts with no native one)."),
    ] = None,
    kind: Annotated[str, typer.Option(help=KIND_HELP)] = "auto",
    force: Annotated[bool, typer.Option(help="Replace an existing repository.")] = False,
    as_json: JsonOption = False,
    model_config: ModelConfig | None = None,
) -> None:
    """Write a Triton model repository: one model per artifact, configs checked with Triton's schema."""
    from ..serving.repository import RepositoryOptions, write_repository

    options = RepositoryOptions(
        native=names_option(native, "--native"),
        python=names_option(python, "--python"),
        kind=kind,
        **asdict(model_config),
    )
    plan = write_repository(directory, out, options, force=force)
    rows = [
        {"model": m.name, "backend": m.backend, "artifact": m.artifact, "precision": m.precision, "outputs": m.outputs}
        for m in plan.models
    ]
    if as_json:
        print_json({"repository": str(out), "models": rows, "skipped": plan.skipped})
        return
    table = Table()
    for column in ("model", "Triton backend", "artifact", "outputs"):
        table.add_column(column)
    for r in rows:
        table.add_row(r["model"], r["backend"], f"{r['artifact']} ({r['precision']})", ", ".join(r["outputs"]))
    print_table(f"{out}: Triton model repository", table)
    for s in plan.skipped:
        console.print(f"not written: {s['name']} ({s['reason']})", markup=False)
    console.print(f"serve it: see {out / 'README.md'}", markup=False)
