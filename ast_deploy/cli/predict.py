"""``ast-deploy predict``: top labels of audio files, per file or over a timeline of windows."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from ..errors import InputError
from .app import app, err_console, print_table
from .event_options import EventOptions, with_event_options
from .options import DeviceOption, print_json, print_json_line, with_load_options
from .rollup_option import RollupOption, model_rollup, with_rollup


@app.command()
@with_load_options
@with_event_options
def predict(
    model: Annotated[Path, typer.Argument(help="Checkpoint (.pth, Hugging Face dir) or exported artifact dir.")],
    audio: Annotated[Optional[list[Path]], typer.Argument(help="Audio files.")] = None,
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1)] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="JSON with per-window timeline.")] = False,
    device: DeviceOption = "cpu",
    backend: Annotated[
        Optional[str], typer.Option(help="Backend of an artifact directory (default: the best available).")
    ] = None,
    hop: Annotated[
        Optional[float], typer.Option(help="Seconds between windows for long audio (default: one window).")
    ] = None,
    aggregate: Annotated[str, typer.Option(help="Rank by mean or max over windows.")] = "mean",
    batch_size: Annotated[int, typer.Option(min=1)] = 8,
    events: Annotated[
        bool, typer.Option("--events", help="Sound events (onset, offset, peak): in the JSON, else as JSON lines.")
    ] = False,
    progress: Annotated[
        Optional[bool], typer.Option("--progress/--no-progress", help="Windows done / total (default: on a terminal).")
    ] = None,
    url: Annotated[
        Optional[str], typer.Option(help="A Triton server (http:// or grpc://HOST:PORT): every argument is audio.")
    ] = None,
    served_model: Annotated[
        Optional[str], typer.Option("--model", help="Model on the --url server (default: the only one).")
    ] = None,
    rollup: RollupOption = None,
    options=None,
    event_options: EventOptions | None = None,
) -> None:
    """Top labels for each audio file."""
    from .. import load
    from ..runtime.devices import check_device

    if aggregate not in ("mean", "max"):
        raise InputError(f"--aggregate must be mean or max, not {aggregate!r}")
    check_device(device)
    if url is not None:  # a served model (ast-deploy serve / triton): windows cut here, run there
        from ..client import open_url

        audio, clf = [model, *(audio or [])], open_url(url, served_model)
        model = f"{url}/{clf.backend.served.name}"
    elif not audio:
        raise InputError("missing audio files: ast-deploy predict MODEL AUDIO... (or --url URL AUDIO...)")
    else:
        clf = load(model, device=device, options=options, backend=backend)
    try:
        parents = model_rollup(clf.labels, rollup)
        config = event_options.config(clf.labels, model) if events or event_options.given else None
        with _progress_display(err_console.is_terminal if progress is None else progress) as report:
            results = clf.predict(audio, top_k=top_k, hop_seconds=hop, batch_size=batch_size, progress=report)
    finally:
        clf.close()
    found = {}
    if config is not None:
        from ..events import prediction_events

        found = {id(r): [e.to_json() for e in prediction_events(r, config, hop)] for r in results}
        if not as_json:
            for r in results:
                for e in found[id(r)]:
                    print_json_line({"source": r.source, **e})
            return
    if as_json:
        print_json(
            {
                "model": str(model),  # with --url: URL/served model
                "backend": clf.backend.name,
                "results": [
                    {
                        **with_rollup(r.to_json(top_k, aggregate), r, parents, aggregate),
                        **({"events": found[id(r)]} if config is not None else {}),
                    }
                    for r in results
                ],
            }
        )
        return
    for r in results:
        table = Table()
        table.add_column("#", justify="right")
        table.add_column("label")
        table.add_column(aggregate, justify="right")
        table.add_column("max" if aggregate == "mean" else "mean", justify="right")
        for i, t in enumerate(r.top(top_k, aggregate), 1):
            other = t["max"] if aggregate == "mean" else t["mean"]
            table.add_row(str(i), t["label"], f"{t['score']:.4f}", f"{other:.4f}")
        print_table(f"{r.source}  ({r.duration:.2f} s, {len(r.starts)} window{'s' * (len(r.starts) > 1)})", table)
        if parents is not None:
            table = Table()
            for column, justify in (("#", "right"), ("parent", "left"), ("mid", "left"), (aggregate, "right")):
                table.add_column(column, justify=justify)
            for i, p in enumerate(parents.to_json(r.mean_scores if aggregate == "mean" else r.max_scores, top_k), 1):
                table.add_row(str(i), p["label"], p["mid"], f"{p['score']:.4f}")
            print_table(f"{r.source}  AudioSet parents (max over each one's labels)", table)


@contextlib.contextmanager
def _progress_display(enabled: bool):
    """A rich progress bar of windows done / total per file on stderr, or nothing."""
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("windows"),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    ) as bar:
        tasks: dict[str, int] = {}

        def report(source: str, done: int, total: int) -> None:
            if source not in tasks:
                tasks[source] = bar.add_task(Path(source).name, total=total)
            bar.update(tasks[source], completed=done, total=total)

        yield report
