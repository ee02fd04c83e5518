"""``ast-deploy bench``: latency, throughput and memory of each backend and batch size."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from .app import app, console, err_console, state
from .options import DeviceOption, TritonModelOption, TritonUrlOption, use_triton_server, with_load_options


@app.command()
@with_load_options
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
    url: TritonUrlOption = None,
    served_model: TritonModelOption = None,
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
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the results (schema v1) as JSON.")] = None,
    markdown_out: Annotated[Optional[Path], typer.Option("--markdown", help="Write the tables as markdown.")] = None,
    plot_out: Annotated[
        Optional[Path], typer.Option("--plot", help="Plot latency and throughput against batch (.png).")
    ] = None,
    options=None,
) -> None:
    """Latency, throughput, real-time factor, memory and first-call time of each backend and batch size."""
    from ..bench import Timing, bench_command

    use_triton_server(url, served_model)
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
        json_path=json_out,
        markdown_path=markdown_out,
        plot_path=plot_out,
        console=console,
        err_console=err_console,
        argv=["ast-deploy", *state.get("argv", sys.argv[1:])],
    )
    if status:
        raise typer.Exit(status)
