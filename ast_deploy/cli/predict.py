"""``ast-deploy predict``: top labels of audio files, per file or over a timeline of windows."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ..errors import InputError
from ..runtime.base import no_embedding
from .app import app, print_table
from .event_options import EventOptions, with_event_options
from .options import (
    AudioArguments,
    JsonOption,
    ProgressOption,
    Runtime,
    Serving,
    TopKOption,
    Windows,
    audio_paths,
    print_json,
    print_json_line,
    show_progress,
    with_load_options,
    with_runtime_options,
    with_serving_options,
    with_window_options,
)
from .progress import progress_bars, window_progress
from .rollup_option import RollupOption, file_events, model_rollup, with_rollup


@app.command()
@with_load_options
@with_serving_options
@with_event_options()
@with_runtime_options
@with_window_options()
def predict(
    model: Annotated[Path, typer.Argument(help="Checkpoint (.pth, Hugging Face dir) or exported artifact dir.")],
    audio: AudioArguments = None,
    top_k: TopKOption = 5,
    as_json: JsonOption = False,
    aggregate: Annotated[str, typer.Option(help="Rank by mean or max over windows.")] = "mean",
    embeddings: Annotated[
        bool,
        typer.Option(
            "--embeddings",
            help="Add the clip embedding (the head's input) of each window and of each file (mean over windows) to --json.",
        ),
    ] = False,
    progress: ProgressOption = None,
    rollup: RollupOption = None,
    options=None,
    runtime: Runtime | None = None,
    windows: Windows | None = None,
    serving: Serving | None = None,
    event_options: EventOptions | None = None,
) -> None:
    """Top labels for each audio file; with --json a timeline of windows (and with --embeddings the clip
    embeddings). Events (--events) go into the JSON, else out as JSON lines. With --url, every argument is
    audio for the served model."""
    from .. import load

    if aggregate not in ("mean", "max"):
        raise InputError(f"--aggregate must be mean or max, not {aggregate!r}")
    if embeddings and not as_json:
        raise InputError("--embeddings: the embeddings go into the JSON output; add --json")
    runtime.check_device()
    if serving.url is not None:  # a served model (ast-deploy serve / triton): windows cut here, run there
        from ..client import open_url

        files = audio_paths([model, *(audio or [])])
        clf = open_url(serving.url, serving.model)
        model = f"{serving.url}/{clf.backend.served.name}"
    elif not audio:
        raise InputError("missing audio files: ast-deploy predict MODEL AUDIO... (or --url URL AUDIO...)")
    else:
        files = audio_paths(audio)
        clf = load(model, device=runtime.device, options=options, backend=runtime.backend)
    try:
        if embeddings and not clf.has_embedding:  # an artifact exported before embeddings: logits only
            raise InputError(f"--embeddings: {model}: {no_embedding(clf.backend.name)}")
        parents = model_rollup(clf.labels, rollup)
        config = event_options.config(clf.labels, model, parents) if event_options.wanted else None
        with progress_bars(show_progress(progress)) as report:
            results = clf.predict(
                files,
                top_k=top_k,
                hop_seconds=windows.hop,
                batch_size=windows.batch_size,
                progress=window_progress(report),
                embeddings=embeddings,
            )
    finally:
        clf.close()
    found = {}
    if config is not None:  # with --rollup, events of the parents
        found = {id(r): file_events(r, config, windows.hop, parents) for r in results}
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
