"""``ast-deploy parity``: every artifact against the PyTorch float32 reference."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Optional

import typer

from .app import app, console, err_console, print_table
from .options import (
    AudioOption,
    DeviceOption,
    JsonOption,
    MarkdownOption,
    MultiValueCommand,
    ReportOption,
    Serving,
    audio_paths,
    print_json,
    with_serving_options,
)


@contextlib.contextmanager
def parity_progress() -> Iterator[Callable[[str, int, int], None]]:
    """A rich progress display on stderr for ``run_parity(progress=...)``: a bar per backend, inputs done."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("parity {task.description:<20}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err_console, transient=True) as bars:
        tasks: dict[str, int] = {}

        def update(name: str, done: int, total: int) -> None:
            if name not in tasks:
                tasks[name] = bars.add_task(name, total=total)
            bars.update(tasks[name], completed=done)

        yield update


@app.command(cls=MultiValueCommand)
@with_serving_options
def parity(
    directory: Annotated[Path, typer.Argument(help="Artifact directory written by 'ast-deploy export'.")],
    audio: AudioOption = None,
    manifest: Annotated[
        Optional[Path],
        typer.Option(
            "--manifest",
            help="Labelled manifest (authors' JSON, CSV path,label;label, or a folder per class): adds the task metric.",
        ),
    ] = None,
    n: Annotated[
        int,
        typer.Option(
            "--n", min=1, help="Seeded synthetic signals when no audio is given; clips taken from --manifest otherwise."
        ),
    ] = 16,
    backends: Annotated[
        Optional[str], typer.Option("--backends", help="Comma-separated (default: every artifact).")
    ] = None,
    device: DeviceOption = "cpu",
    max_abs_logit: Annotated[Optional[float], typer.Option(help="Override the float32 bound.")] = None,
    min_cosine: Annotated[Optional[float], typer.Option(help="Override the fp16/bf16 cosine bound.")] = None,
    min_top1: Annotated[Optional[float], typer.Option(help="Override the fp16/bf16 top-1 agreement bound.")] = None,
    as_json: JsonOption = False,
    report_out: ReportOption = None,
    markdown_out: MarkdownOption = None,
    polygraphy_dir: Annotated[
        Optional[Path],
        typer.Option(
            "--polygraphy",
            help="Write the inputs, reference outputs and polygraphy commands (README.md) here, for TensorRT users.",
        ),
    ] = None,
    crosscheck_with: Annotated[
        Optional[str],
        typer.Option("--crosscheck", help="A second judge beside ours: polygraphy (its comparator on ONNX/TensorRT)."),
    ] = None,
    serving: Serving | None = None,
) -> None:
    """Run every artifact and the PyTorch float32 reference on the same inputs; exit 1 if any fails."""
    from ..artifacts import ArtifactDir
    from ..fileio import atomic_file
    from ..parity import ParityInputs, audio_inputs, manifest_inputs, run_parity, synthetic_inputs, threshold_overrides
    from ..parity import markdown as parity_markdown
    from ..parity import table as parity_report_table
    from ..parity.crosscheck import attach_to_parity
    from ..parity.handoff import check_options
    from ..runtime.devices import check_device
    from ..windows import window_length

    check_device(device)
    serving.use_for_triton_backend()
    check_options(polygraphy_dir, crosscheck_with)
    artifacts = ArtifactDir(directory)
    window = window_length(artifacts.spec.num_samples, artifacts.frontend_config)
    inputs: ParityInputs | None = None
    if manifest is not None:
        inputs = manifest_inputs(manifest, artifacts.labels, window, artifacts.spec.sample_rate, n)
    elif audio:
        inputs = audio_inputs(audio_paths(audio, "--audio"), window, artifacts.spec.sample_rate)
    overrides = threshold_overrides(max_abs_logit=max_abs_logit, min_cosine=min_cosine, min_top1=min_top1)
    names = [b.strip() for b in backends.split(",")] if backends else None
    if inputs is None and (polygraphy_dir or crosscheck_with):  # polygraphy gets the inputs parity uses
        inputs = synthetic_inputs(artifacts, n)
    with parity_progress() as progress:
        report = run_parity(artifacts, names, inputs, n=n, device=device, thresholds=overrides, progress=progress)
    extra = []
    if polygraphy_dir or crosscheck_with:
        with err_console.status("running polygraphy ..."):
            extra = attach_to_parity(artifacts, report, inputs, polygraphy_dir, crosscheck_with, overrides)
    if as_json:
        print_json(report.to_dict())
        for line in extra:  # what was written where: not part of the JSON
            err_console.print(line, markup=False, highlight=False)
    else:
        print_table(f"parity: {report.inputs}", parity_report_table([r.to_dict() for r in report.results]))
        for r in report.refused:
            console.print(f"not run here: {r['backend']}: {r['reason']}", markup=False, highlight=False, soft_wrap=True)
        for line in extra:
            console.print(line, markup=False, highlight=False)
        if report.reference_task_metric:
            m = report.reference_task_metric
            console.print(f"reference (pytorch float32): {m['metric']} {m['value']:.4f}")
    if report_out:
        report.write_json(report_out)
    if markdown_out:
        with atomic_file(markdown_out) as f:
            f.write(parity_markdown([r.to_dict() for r in report.results], f"parity of {directory}: {report.inputs}"))
            f.write("".join(f"\n{line}\n" for line in extra))
    if not report.passed:
        raise typer.Exit(1)
