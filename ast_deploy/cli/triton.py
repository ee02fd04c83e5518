"""``ast-deploy triton``: a Triton Inference Server model repository from an artifact directory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from ..errors import InputError
from .app import app, console, print_table
from .options import print_json

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
    max_batch: Annotated[Optional[int], typer.Option(help="max_batch_size (default: the export's batch max).")] = None,
    queue_delay_us: Annotated[int, typer.Option(help="Dynamic batcher's max queue delay (µs).")] = 500,
    instances: Annotated[int, typer.Option(help="Instances of each model.")] = 1,
    kind: Annotated[str, typer.Option(help=KIND_HELP)] = "auto",
    threads: Annotated[Optional[int], typer.Option(help="Intra-op threads of each python-backend instance.")] = None,
    force: Annotated[bool, typer.Option(help="Replace an existing repository.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print what was written as JSON.")] = False,
) -> None:
    """Write a Triton model repository: one model per artifact, configs checked with Triton's schema."""
    from ..serving.repository import RepositoryOptions, write_repository

    options = RepositoryOptions(
        native=names_option(native, "--native"),
        python=names_option(python, "--python"),
        max_batch=max_batch,
        queue_delay_us=queue_delay_us,
        instances=instances,
        kind=kind,
        threads=threads,
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
