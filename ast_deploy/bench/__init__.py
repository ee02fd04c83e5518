"""``ast-deploy bench``: latency, throughput, memory and first-call time of every backend.

>>> from ast_deploy.bench import Timing, make_plan, run
>>> doc = run(make_plan("artifacts/", batch_sizes="1,8", timing=Timing(iters=20, seconds=None)))

Modules: ``sources`` (what can run), ``harness`` (timing, isolation), ``roofline`` (the hardware
limit), ``environment`` (where it ran), ``report`` (markdown, console, plot), ``schema.json``.
"""

from __future__ import annotations

from pathlib import Path

from ..checkpoints import LoadOptions
from ..errors import InputError
from .harness import SCHEMA_VERSION, Job, Timing, latency_stats, measure, new_row, run
from .plan import BenchPlan, make_plan
from .schema import validate


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
    from ..runtime.devices import check_device
    from .plan import backend_listing
    from .sources import open_source

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
    json_path: Path | None,
    markdown_path: Path | None,
    plot_path: Path | None,
    console,
    err_console,
    argv: list[str] | None = None,
) -> int:
    """The ``bench`` verb: plan (all input checks), run with a progress bar, print, write. Exit status."""
    from . import report

    if backends is not None and backends.strip() == "list":
        from rich.table import Table

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
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise InputError("--plot needs matplotlib (pip install 'ast-deploy[bench]')") from None


__all__ = [
    "SCHEMA_VERSION",
    "BenchPlan",
    "Job",
    "ProgressDisplay",
    "Timing",
    "bench_command",
    "latency_stats",
    "list_backends",
    "make_plan",
    "measure",
    "new_row",
    "run",
    "validate",
]
