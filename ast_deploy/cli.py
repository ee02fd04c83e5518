"""``ast-deploy``: a thin typer layer over the Python API.

Verbs mirror the workflow: train -> export -> parity -> bench -> predict. Bad input is reported as
one line on stderr with exit status 2 (``--debug`` shows the traceback). Other packages (the
``training`` package) add verbs through the ``ast_deploy.cli`` entry-point group, so that
``ast_deploy`` never imports them by name.
"""

from __future__ import annotations

import functools
import inspect
import json
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from .errors import InputError

try:  # typer >= 0.20 vendors click
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover - older typer depends on click
    from click import exceptions as click_exceptions

app = typer.Typer(
    name="ast-deploy",
    help="Audio Spectrogram Transformer: train, export, check parity, benchmark, predict.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)
_state = {"debug": False}


@app.callback()
def _main(debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False) -> None:
    _state["debug"] = debug


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


def with_load_options(func):
    """Add the checkpoint flags to a command and pass them on as one ``options: LoadOptions``."""
    from .checkpoints import LoadOptions

    sig = inspect.signature(func, eval_str=True)
    params = [p for p in sig.parameters.values() if p.name != "options"]
    for name, annotation, flag, help_text in _LOAD_OPTIONS:
        option = typer.Option(flag, help=help_text, rich_help_panel="Checkpoint")
        params.append(
            inspect.Parameter(
                name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[annotation, option]
            )
        )

    @functools.wraps(func)
    def wrapper(**kwargs):
        options = LoadOptions(**{name: kwargs.pop(name) for name, *_ in _LOAD_OPTIONS})
        return func(options=options, **kwargs)

    wrapper.__signature__ = sig.replace(parameters=params)
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    return wrapper


def print_json(data) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


# --- verbs -----------------------------------------------------------------------------------


@app.command()
@with_load_options
def predict(
    model: Annotated[Path, typer.Argument(help="Checkpoint (.pth, Hugging Face dir) or exported artifact dir.")],
    audio: Annotated[list[Path], typer.Argument(help="Audio files.")],
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1)] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="JSON with per-window timeline.")] = False,
    device: Annotated[str, typer.Option(help="cpu | cuda")] = "cpu",
    backend: Annotated[
        Optional[str], typer.Option(help="Backend of an artifact directory (default: the best available).")
    ] = None,
    hop: Annotated[
        Optional[float], typer.Option(help="Seconds between windows for long audio (default: one window).")
    ] = None,
    aggregate: Annotated[str, typer.Option(help="Rank by mean or max over windows.")] = "mean",
    batch_size: Annotated[int, typer.Option(min=1)] = 8,
    options=None,
) -> None:
    """Top labels for each audio file."""
    from . import load
    from .runtime.devices import check_device

    if aggregate not in ("mean", "max"):
        raise InputError(f"--aggregate must be mean or max, not {aggregate!r}")
    check_device(device)
    clf = load(model, device=device, options=options, backend=backend)
    try:
        results = clf.predict(audio, top_k=top_k, hop_seconds=hop, batch_size=batch_size)
    finally:
        clf.close()
    if as_json:
        print_json(
            {
                "model": str(model),
                "backend": clf.backend.name,
                "results": [r.to_json(top_k, aggregate) for r in results],
            }
        )
        return
    for r in results:
        table = Table(title=f"{r.source}  ({r.duration:.2f} s, {len(r.starts)} window{'s' * (len(r.starts) > 1)})")
        table.add_column("#", justify="right")
        table.add_column("label")
        table.add_column(aggregate, justify="right")
        table.add_column("max" if aggregate == "mean" else "mean", justify="right")
        for i, t in enumerate(r.top(top_k, aggregate), 1):
            other = t["max"] if aggregate == "mean" else t["mean"]
            table.add_row(str(i), t["label"], f"{t['score']:.4f}", f"{other:.4f}")
        console.print(table)


@app.command()
@with_load_options
def info(
    model: Annotated[Path, typer.Argument(help="Checkpoint or artifact directory.")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
    options=None,
) -> None:
    """Print a checkpoint's configuration (format, sizes, grid, labels, normalisation)."""
    from .checkpoints import load_checkpoint

    if (model / "manifest.json").is_file():
        from .artifacts import read_manifest

        manifest = read_manifest(model)
        if as_json:
            print_json(manifest)
        else:
            console.print_json(json.dumps({k: v for k, v in manifest.items() if k != "labels"}))
        return
    ckpt = load_checkpoint(model, options)
    c = ckpt.config
    data = {
        "source": str(ckpt.source),
        "format": ckpt.format,
        **c.to_dict(),
        "grid": list(c.grid),
        "num_patches": c.num_patches,
        "parameters": sum(v.numel() for v in ckpt.state_dict.values()),
        "gflops_per_clip": round(c.flops_per_clip() / 1e9, 2),
        "frontend": ckpt.frontend.to_dict(),
        "labels": ckpt.labels,
    }
    if as_json:
        print_json(data)
        return
    table = Table(show_header=False, title=str(model))
    for key, value in data.items():
        if key == "labels":
            shown = " | ".join(value[:5]) + (f", ... ({len(value)} labels)" if len(value) > 5 else "")
            table.add_row(key, shown)
        elif key == "frontend":
            table.add_row(key, ", ".join(f"{k}={v}" for k, v in value.items()))
        else:
            table.add_row(key, str(value))
    console.print(table)


@app.command()
@with_load_options
def convert(
    src: Annotated[Path, typer.Argument(help="Checkpoint in any supported format.")],
    dst: Annotated[Path, typer.Argument(help="Output directory (Hugging Face layout).")],
    force: Annotated[bool, typer.Option("--force", help="Replace an existing DST.")] = False,
    options=None,
) -> None:
    """Write this project's format (a Hugging Face AST directory) from any checkpoint."""
    from .checkpoints import load_checkpoint, save_checkpoint

    ckpt = load_checkpoint(src, options)
    ckpt.build_model()  # validates every tensor's name and shape before anything is written
    save_checkpoint(dst, ckpt.config, ckpt.state_dict, ckpt.labels, ckpt.frontend, overwrite=force)
    err_console.print(f"wrote {dst} ({ckpt.format} -> ast-deploy, {ckpt.config.num_labels} labels)")


@app.command()
def init(
    out: Annotated[Path, typer.Argument(help="Directory to write (this project's format).")],
    size: Annotated[str, typer.Option(help="tiny | small | base")] = "base",
    frames: Annotated[int, typer.Option(help="Input frames (target_length); 1024 = 10.24 s.")] = 1024,
    depth: Annotated[int, typer.Option(min=1)] = 12,
    fstride: Annotated[int, typer.Option(min=1)] = 10,
    tstride: Annotated[int, typer.Option(min=1)] = 10,
    labels: Annotated[
        str, typer.Option(help="audioset | esc50 | speechcommands, a label CSV, or a number.")
    ] = "audioset",
    seed: Annotated[int, typer.Option()] = 0,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing OUT.")] = False,
) -> None:
    """Write a randomly initialised AST (timm's ViT initialisation), e.g. to benchmark or train from scratch."""
    import torch

    from .checkpoints import PRESET_ACTIVATION, save_checkpoint
    from .frontend import NORM_PRESETS, FrontEndConfig
    from .labels import LABEL_SETS, builtin_label_set, generic_labels, read_label_csv
    from .model import ASTConfig, ASTModel

    if labels in LABEL_SETS:
        names, preset = builtin_label_set(labels).names, labels
    elif labels.isdigit():
        names, preset = generic_labels(int(labels)), "audioset"
    else:
        names, preset = read_label_csv(labels).names, "audioset"
    try:
        config = ASTConfig.from_size(
            size,
            depth=depth,
            fstride=fstride,
            tstride=tstride,
            target_length=frames,
            num_labels=len(names),
            activation=PRESET_ACTIVATION.get(preset, "sigmoid"),
        )
    except ValueError as e:
        raise InputError(f"init: {e}") from None
    torch.manual_seed(seed)
    mean, std = NORM_PRESETS[preset]
    frontend = FrontEndConfig(num_mel_bins=config.num_mel_bins, target_length=frames, mean=mean, std=std)
    model = ASTModel(config)
    save_checkpoint(out, config, model.state_dict(), names, frontend, overwrite=force)
    params = sum(p.numel() for p in model.parameters())
    err_console.print(
        f"wrote {out}: AST-{size}, {config.depth} blocks, {frames} frames, {len(names)} labels, "
        f"{params / 1e6:.1f} M parameters"
    )


@app.command("export")
@with_load_options
def export_cmd(
    checkpoint: Annotated[Path, typer.Argument(help="Checkpoint in any supported format.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Artifact directory to create.")],
    to: Annotated[
        str,
        typer.Option(
            help="Comma-separated formats or all-available: torchscript,onnx,onnx-fp16,onnx-int8,aoti,tensorrt."
        ),
    ] = "all-available",
    input_kind: Annotated[
        str, typer.Option("--input", help="waveform (front end in the graph) or fbank.")
    ] = "waveform",
    batch: Annotated[
        str, typer.Option(help="Batch range MIN:OPT:MAX (dynamic batch axis, TensorRT profile).")
    ] = "1:1:32",
    clip_seconds: Annotated[
        Optional[float],
        typer.Option(help="Samples per waveform input, in seconds (default: exactly the model's frames)."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing --out.")] = False,
    verify: Annotated[bool, typer.Option("--verify/--no-verify", help="Check parity before publishing.")] = True,
    workspace_gib: Annotated[
        float, typer.Option(help="TensorRT builder workspace limit.", rich_help_panel="TensorRT")
    ] = 4.0,
    opt_level: Annotated[
        int, typer.Option(help="TensorRT builder optimisation level 0-5.", rich_help_panel="TensorRT")
    ] = 3,
    options=None,
) -> None:
    """Export a checkpoint to TorchScript, ONNX (fp32/fp16/int8), AOTInductor and TensorRT, with a manifest."""
    from .export import ExportOptions, ParityFailure, export
    from .parity import table as parity_report_table

    export_options = ExportOptions(workspace_gib=workspace_gib, optimization_level=opt_level)
    with err_console.status("exporting ...") as status:

        def log(message: str) -> None:
            status.update(message)
            if not message.endswith("..."):
                err_console.print(message, markup=False, highlight=False)

        try:
            manifest = export(
                checkpoint,
                out,
                to=to,
                input_kind=input_kind,
                batch=batch,
                clip_seconds=clip_seconds,
                verify=verify,
                force=force,
                load_options=options,
                options=export_options,
                log=log,
            )
        except ParityFailure as e:
            err_console.print(f"error: {e}", markup=False, highlight=False)
            raise typer.Exit(1) from None
    console.print(parity_report_table(manifest["artifacts"], title=f"{out} ({manifest['input']['kind']} input)"))


@app.command()
def parity(
    directory: Annotated[Path, typer.Argument(help="Artifact directory written by 'ast-deploy export'.")],
    audio: Annotated[
        Optional[list[Path]], typer.Option("--audio", help="Audio files to compare on (repeatable).")
    ] = None,
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
    device: Annotated[str, typer.Option(help="cpu | cuda")] = "cpu",
    max_abs_logit: Annotated[Optional[float], typer.Option(help="Override the float32 bound.")] = None,
    min_cosine: Annotated[Optional[float], typer.Option(help="Override the fp16/bf16 cosine bound.")] = None,
    min_top1: Annotated[Optional[float], typer.Option(help="Override the fp16/bf16 top-1 agreement bound.")] = None,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the report as JSON.")] = None,
    markdown_out: Annotated[Optional[Path], typer.Option("--markdown", help="Write the table as markdown.")] = None,
) -> None:
    """Run every artifact and the PyTorch float32 reference on the same inputs; exit 1 if any fails."""
    from .artifacts import ArtifactDir
    from .fileio import atomic_file
    from .parity import DEFAULT_THRESHOLDS, ParityInputs, Thresholds, audio_inputs, manifest_inputs, run_parity
    from .parity import markdown as parity_markdown
    from .parity import table as parity_report_table
    from .runtime.devices import check_device

    check_device(device)
    artifacts = ArtifactDir(directory)
    window = artifacts.spec.num_samples or artifacts.frontend_config.window_samples
    inputs: ParityInputs | None = None
    if manifest is not None:
        inputs = manifest_inputs(manifest, artifacts.labels, window, artifacts.spec.sample_rate, n)
    elif audio:
        inputs = audio_inputs(audio, window, artifacts.spec.sample_rate)
    overrides = {}
    if max_abs_logit is not None:
        overrides["fp32"] = Thresholds(max_abs_logit=max_abs_logit)
    if min_cosine is not None or min_top1 is not None:
        for precision in ("fp16", "bf16"):
            base = DEFAULT_THRESHOLDS[precision]
            overrides[precision] = Thresholds(
                min_cosine=min_cosine if min_cosine is not None else base.min_cosine,
                min_top1=min_top1 if min_top1 is not None else base.min_top1,
            )
    names = [b.strip() for b in backends.split(",")] if backends else None
    with err_console.status("running parity ...") as status:
        report = run_parity(
            artifacts,
            names,
            inputs,
            n=n,
            device=device,
            thresholds=overrides,
            progress=lambda name: status.update(f"running {name} ..."),
        )
    console.print(parity_report_table([r.to_dict() for r in report.results], title=f"parity: {report.inputs}"))
    if report.reference_task_metric:
        m = report.reference_task_metric
        console.print(f"reference (pytorch float32): {m['metric']} {m['value']:.4f}")
    if json_out:
        report.write_json(json_out)
    if markdown_out:
        with atomic_file(markdown_out) as f:
            f.write(parity_markdown([r.to_dict() for r in report.results], f"parity of {directory}: {report.inputs}"))
    if not report.passed:
        raise typer.Exit(1)


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
    device: Annotated[str, typer.Option(help="cpu | cuda")] = "cpu",
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
    from .bench import Timing, bench_command

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
        argv=["ast-deploy", *_state.get("argv", sys.argv[1:])],
    )
    if status:
        raise typer.Exit(status)


def _load_plugins() -> None:
    for ep in entry_points(group="ast_deploy.cli"):
        ep.load()(app)


def main(argv: list[str] | None = None) -> int:
    """Console entry point: run the app, turning bad input into one line and exit status 2."""
    argv = list(sys.argv[1:] if argv is None else argv)
    _load_plugins()
    _state["debug"] = "--debug" in argv
    _state["argv"] = argv  # recorded by bench with its results
    command = typer.main.get_command(app)
    try:
        status = command.main(args=argv, prog_name="ast-deploy", standalone_mode=False)
    except InputError as e:
        if _state["debug"]:
            raise
        err_console.print(f"error: {e}", markup=False, highlight=False, soft_wrap=True)
        return 2
    except click_exceptions.NoArgsIsHelpError as e:
        err_console.print(e.ctx.get_help() if e.ctx else str(e), markup=False, highlight=False)
        return 2
    except click_exceptions.ClickException as e:
        if _state["debug"]:
            raise
        where = f"{e.ctx.command_path}: " if getattr(e, "ctx", None) else ""
        err_console.print(f"error: {where}{e.format_message()}", markup=False, highlight=False, soft_wrap=True)
        return e.exit_code
    except typer.Exit as e:
        return e.exit_code
    except typer.Abort:
        err_console.print("aborted")
        return 130
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130
    return status if isinstance(status, int) else 0


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
