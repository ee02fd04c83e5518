"""``ast-deploy bench``: latency, throughput and memory of each backend and batch size.

The verb (its options, a progress bar over the rows, the tables and files written) on top of
:mod:`ast_deploy.bench` (plan, harness, runner, report), which it imports only when it runs.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from ..errors import InputError
from .app import app, console, err_console, state
from .options import (
    DeviceOption,
    JsonOption,
    MarkdownOption,
    ReportOption,
    Serving,
    print_json,
    with_load_options,
    with_serving_options,
)

if TYPE_CHECKING:
    from ..bench import Timing
    from ..checkpoints import LoadOptions


@app.command()
@with_load_options
@with_serving_options
def bench(
    source: Annotated[Path, typer.Argument(help="Artifact directory written by 'ast-deploy export', or a checkpoint.")],
    backends: Annotated[
        Optional[str],
        typer.Option(help="Comma-separated backends (default: every one available here), or 'list' to list them."),
    ] = None,
    batch_sizes: Annotated[str, typer.Option("--batch-sizes", help="Comma-separated positive integers.")] = "1,8,32",
    input_kind: Annotated[
        Optional[str],
        typer.Option(
            "--input",
            help="waveform (end to end), fbank (model only) or both; checkpoints only (default both), "
            "artifact directories take their manifest's.",
        ),
    ] = None,
    device: DeviceOption = "cpu",
    threads: Annotated[Optional[int], typer.Option(min=1, help="Intra-op threads (torch and ONNX Runtime).")] = None,
    warmup: Annotated[
        int, typer.Option(min=0, help="Untimed calls per row (at least 1; the first is reported as first-call time).")
    ] = 3,
    iters: Annotated[Optional[int], typer.Option(min=1, help="Timed calls per row.")] = None,
    seconds: Annotated[
        Optional[float], typer.Option(help="Time per row instead of --iters (at least 5 calls; default 10).")
    ] = None,
    input_sets: Annotated[int, typer.Option("--input-sets", min=1, help="Input batches rotated per call.")] = 4,
    h2d: Annotated[str, typer.Option(help="CUDA: include or exclude host->device copies in the timing.")] = "include",
    cuda_graphs: Annotated[
        bool, typer.Option("--cuda-graphs", help="CUDA: capture torch backends in a CUDA graph, replay it.")
    ] = False,
    isolation: Annotated[
        str, typer.Option(help="batch: a fresh process per row (default); backend: per backend; none: this process.")
    ] = "batch",
    baseline: Annotated[str, typer.Option(help="Backend the speed-up column compares with.")] = "pytorch",
    roofline: Annotated[
        bool, typer.Option("--roofline", help="Measure the peak GEMM rate; show each figure as a fraction of it.")
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic inputs.")] = 0,
    as_json: JsonOption = False,
    report_out: ReportOption = None,
    markdown_out: MarkdownOption = None,
    plot_out: Annotated[
        Optional[Path], typer.Option("--plot", help="Plot latency and throughput against batch (.png).")
    ] = None,
    options=None,
    serving: Serving | None = None,
) -> None:
    """Latency, throughput, real-time factor, memory and first-call time of each backend and batch size.

    --json prints the results (schema v1) on stdout instead of the tables; --report writes them to a file."""
    from ..bench import Timing

    serving.use_for_triton_backend()
    timing = Timing(
        warmup=warmup,
        iters=iters,
        seconds=seconds if seconds is not None or iters is not None else 10.0,
        input_sets=input_sets,
        h2d=h2d,
        cuda_graphs=cuda_graphs,
        seed=seed,
    )
    status = bench_command(
        source,
        options,
        backends=backends,
        batch_sizes=batch_sizes,
        inputs=input_kind,
        device=device,
        threads=threads,
        timing=timing,
        isolation=isolation,
        baseline=baseline,
        roofline=roofline,
        as_json=as_json,
        json_path=report_out,
        markdown_path=markdown_out,
        plot_path=plot_out,
        console=console,
        err_console=err_console,
        argv=["ast-deploy", *state.get("argv", sys.argv[1:])],
    )
    if status:
        raise typer.Exit(status)


class ProgressDisplay:
    """A rich progress bar over the rows of a plan, fed by :func:`run`'s events."""

    def __init__(self, console, total: int):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.task = self.progress.add_task("starting", total=total)
        self.label = ""
        self.batch: int | None = None

    def __enter__(self) -> ProgressDisplay:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)

    def __call__(self, event: dict) -> None:
        phase = event["phase"]
        if phase == "roofline":
            text = "measuring the peak matrix-multiply rate"
        elif phase == "job":
            job = event["job"]
            self.label = f"{job.backend} · {job.input}"
            text = f"{self.label}: starting a worker"
        elif phase == "start":
            self.batch = event["batch"]
            return
        elif phase == "row":
            self.progress.advance(self.task)
            return
        else:
            where = f"{self.label} · batch {self.batch}" if self.batch and phase != "loading" else self.label
            if phase == "timing":
                if event["total"]:
                    text = f"{where}: timing {event['done']}/{event['total']}"
                else:
                    text = f"{where}: timing {event['elapsed']:.0f}/{event['seconds']:g} s, {event['done']} calls"
            else:
                text = f"{where}: {phase}"
        self.progress.update(self.task, description=text)


def list_backends(source: str | Path, options: LoadOptions | None, device: str) -> list[tuple[str, str]]:
    """``(name, "available" | reason)`` for every backend ``source`` knows."""
    from ..bench.plan import backend_listing
    from ..bench.sources import open_source
    from ..runtime.devices import check_device

    check_device(device)
    available, unavailable = backend_listing(open_source(source, options), device)
    return [(n, "available") for n in available] + list(unavailable.items())


def bench_command(
    source: Path,
    options: LoadOptions | None,
    *,
    backends: str | None,
    batch_sizes: str,
    inputs: str | None,
    device: str,
    threads: int | None,
    timing: Timing,
    isolation: str,
    baseline: str,
    roofline: bool,
    as_json: bool,
    json_path: Path | None,
    markdown_path: Path | None,
    plot_path: Path | None,
    console,
    err_console,
    argv: list[str] | None = None,
) -> int:
    """The ``bench`` verb: plan (all input checks), run with a progress bar, print, write. Exit status."""
    from ..bench import make_plan, report, run

    if backends is not None and backends.strip() == "list":
        from rich.table import Table

        if as_json:
            print_json(
                {"source": str(source), "device": device, "backends": dict(list_backends(source, options, device))}
            )
            return 0
        listing = Table()
        listing.add_column("backend")
        listing.add_column("status")
        for name, status in list_backends(source, options, device):
            listing.add_row(name, status)
        console.print(f"backends of {source} on {device}", markup=False, highlight=False, soft_wrap=True)
        console.print(listing)
        return 0
    names = [b.strip() for b in backends.split(",") if b.strip()] if backends else None
    if backends is not None and not names:
        raise InputError("--backends is empty; give comma-separated names, or 'list'")
    if plot_path is not None and plot_path.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise InputError(f"--plot {plot_path}: expected a .png, .svg or .pdf file")
    plan = make_plan(
        source,
        options=options,
        backends=names,
        inputs=inputs,
        batch_sizes=batch_sizes,
        device=device,
        threads=threads,
        timing=timing,
        isolation=isolation,
        baselines=[baseline],
        roofline=roofline,
    )
    if plot_path is not None:
        _require_matplotlib()
    total = len(plan.inputs) * len(plan.backends) * len(plan.batch_sizes)
    with ProgressDisplay(err_console, total) as progress:
        doc = run(plan, progress, argv)
    if as_json:
        print_json(doc)
    else:
        for t in report.console_tables(doc):
            console.print(t)
    for path in report.write(doc, json_path, markdown_path, plot_path):
        err_console.print(f"wrote {path}", markup=False, highlight=False)
    failed = [
        f"{r['backend']} ({r['input']}, batch {r['batch']}): {r['reason']}"
        for r in doc["results"]
        if r["status"] == "failed"
    ]
    for line in failed:
        err_console.print(f"failed: {line}", markup=False, highlight=False)
    return 1 if failed else 0


def _require_matplotlib() -> None:
    from ..extras import missing

    if reason := missing("matplotlib", "bench"):
        raise InputError(f"--plot: {reason}")
