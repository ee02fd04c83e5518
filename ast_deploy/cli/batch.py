"""``ast-deploy batch``: tag whole archives on Ray Data, resumable, Parquet out (docs/batch.md)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from ..errors import InputError
from .app import app, err_console, print_table
from .event_options import EventOptions, with_event_options
from .options import (
    JsonOption,
    ProgressOption,
    Runtime,
    TopKOption,
    Windows,
    print_json,
    show_progress,
    with_load_options,
    with_runtime_options,
    with_window_options,
)
from .rollup_option import RollupOption, model_rollup

_RAY = "Ray"
_OUTPUT = "Output"


@app.command()
@with_load_options
@with_event_options()
@with_runtime_options
@with_window_options()
def batch(
    model: Annotated[Path, typer.Argument(help="Checkpoint (.pth, Hugging Face dir) or exported artifact dir.")],
    inputs: Annotated[
        Optional[list[str]],
        typer.Argument(
            help="Audio files, folders (recursively), quoted glob patterns, lists of paths (.txt, .csv), or URIs."
        ),
    ] = None,
    out: Annotated[Optional[str], typer.Option("--out", help="Output directory (or URI): Parquet dataset.")] = None,
    top_k: TopKOption = 5,
    aggregate: Annotated[str, typer.Option(help="Clip score over windows: mean or max.")] = "mean",
    scores: Annotated[
        Optional[str],
        typer.Option("--scores", help="Add every label's clip score: float16 or float32.", rich_help_panel=_OUTPUT),
    ] = None,
    embeddings: Annotated[
        bool, typer.Option("--embeddings", help="Add the clip embedding (mean over windows).", rich_help_panel=_OUTPUT)
    ] = False,
    timeline: Annotated[
        bool, typer.Option("--timeline", help="Write the per-window table timeline/.", rich_help_panel=_OUTPUT)
    ] = False,
    retry_errors: Annotated[
        bool,
        typer.Option("--retry-errors", help="Process again the files whose rows are errors.", rich_help_panel=_OUTPUT),
    ] = False,
    shard_rows: Annotated[
        int, typer.Option(min=1, help="Files per Parquet shard (at most).", rich_help_panel=_OUTPUT)
    ] = 10000,
    shard_seconds: Annotated[
        float, typer.Option(help="Commit a shard at least this often (seconds).", rich_help_panel=_OUTPUT)
    ] = 60.0,
    address: Annotated[
        Optional[str],
        typer.Option(help="Ray cluster (default: RAY_ADDRESS, else a local Ray for this job).", rich_help_panel=_RAY),
    ] = None,
    actors: Annotated[
        int, typer.Option(min=1, help="Model actors (each loads the model once).", rich_help_panel=_RAY)
    ] = 1,
    threads_per_actor: Annotated[
        Optional[int],
        typer.Option(
            min=1,
            help="Threads (and Ray CPUs) per actor (default: cores / actors locally, 1 on a cluster).",
            rich_help_panel=_RAY,
        ),
    ] = None,
    gpus_per_actor: Annotated[
        float, typer.Option(help="GPUs per actor (default 1 with --device cuda, else 0).", rich_help_panel=_RAY)
    ] = 0.0,
    cpus: Annotated[
        Optional[int],
        typer.Option(
            min=1,
            help="Logical CPUs of the local Ray (default: enough for the actors + decoding).",
            rich_help_panel=_RAY,
        ),
    ] = None,
    object_store_mib: Annotated[
        Optional[int],
        typer.Option(min=64, help="Object store of the local Ray, MiB (default: Ray's).", rich_help_panel=_RAY),
    ] = None,
    progress: ProgressOption = None,
    as_json: JsonOption = False,
    rollup: RollupOption = None,
    options=None,
    runtime: Runtime | None = None,
    windows: Windows | None = None,
    event_options: EventOptions | None = None,
) -> None:
    """Tag a corpus on Ray Data: one Parquet row per file, resumable (rerun the same command)."""
    from ..batch import BatchOptions, JobFailed, run_batch
    from .app import state

    if not inputs:
        raise InputError("missing inputs: ast-deploy batch MODEL INPUT... --out DIR")
    if out is None:
        raise InputError("missing --out DIR: where the Parquet dataset goes")
    if not (address or os.environ.get("RAY_ADDRESS")):
        runtime.check_device()
    _require_extra()

    # Resolved against the model's labels once they are known (--thresholds names labels), as predict
    # resolves it: without --thresholds, an artifact directory's stored thresholds; with --rollup, the
    # config of the parents' events.
    def event_config(labels: list[str]):
        return event_options.config(labels, model, model_rollup(labels, rollup))

    opts = BatchOptions(
        model=str(model),
        inputs=list(inputs),
        out=out,
        backend=runtime.backend,
        device=runtime.device,
        load_options=options,
        address=address,
        actors=actors,
        threads_per_actor=threads_per_actor,
        gpus_per_actor=gpus_per_actor,
        cpus=cpus,
        object_store_mib=object_store_mib,
        top_k=top_k,
        aggregate=aggregate,
        hop=windows.hop,
        batch_size=windows.batch_size,
        scores=scores,
        embeddings=embeddings,
        timeline=timeline,
        events=event_config if event_options.wanted else None,
        rollup=rollup,
        retry_errors=retry_errors,
        shard_rows=shard_rows,
        shard_seconds=shard_seconds,
    )
    try:
        with _progress_display(show_progress(progress)) as report:
            counts = run_batch(opts, progress=report)
    except JobFailed as e:  # not bad input: exit status 1, one line (--debug: the traceback)
        if state["debug"]:
            raise
        err_console.print(
            f"error: {e} (rows received so far are committed; rerun to resume)",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(1) from None
    for w in counts.warnings:
        err_console.print(f"warning: {w}", markup=False, highlight=False, soft_wrap=True)
    if as_json:
        print_json(counts.to_json())
    else:
        _summary_table(counts)
    if counts.interrupted:
        raise typer.Exit(130)


def _require_extra() -> None:
    from ..extras import missing

    if reason := missing(("ray", "pyarrow"), "batch"):
        raise InputError(f"ast-deploy batch: {reason}")


def _summary_table(c) -> None:
    table = Table()
    table.add_column("files", justify="right")
    table.add_column("count", justify="right")
    rows = [
        ("listed", f"{c.listed:,}"),
        ("already done (kept)", f"{c.already_done:,}"),
        ("replaced (changed or retried)", f"{c.replaced:,}"),
        ("processed now", f"{c.processed:,} of {c.todo:,}"),
        ("tagged", f"{c.ok:,}"),
        ("errors", f"{c.errors:,}"),
        ("windows", f"{c.windows:,}"),
        ("audio", f"{c.audio_seconds / 3600:.2f} h"),
        ("files/s", f"{c.files_per_s:.1f}"),
        ("windows/s", f"{c.windows_per_s:.1f}"),
        ("shards written", f"{c.shards:,}"),
        ("time", f"{c.wall_s:.1f} s (Ray start {c.ray_start_s:.1f} s, pipeline {c.run_s:.1f} s)"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    status = "interrupted" if c.interrupted else "done"
    print_table(f"{c.out}  ({status}; {c.model}, {c.backend}, model sha256 {c.model_sha256[:12]})", table)


@contextlib.contextmanager
def _progress_display(enabled: bool):
    """A rich bar on stderr: files done / to do, files/s, windows/s, errors, ETA."""
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("files  {task.fields[rates]}"),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    ) as bar:
        task = None

        def report(c) -> None:
            nonlocal task
            rates = f"{c.files_per_s:.1f} files/s  {c.windows_per_s:.1f} windows/s  {c.errors} errors"
            if task is None:
                task = bar.add_task("batch", total=c.todo or None, rates=rates)
            bar.update(task, completed=c.processed, total=c.todo or None, rates=rates)

        yield report
