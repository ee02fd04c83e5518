"""Registers the training verbs on the ``ast-deploy`` CLI (entry point ``ast_deploy.cli``).

``train``, ``evaluate``, ``stats``, ``prepare {esc50,speechcommands,audioset,quickstart-data}`` and
``quickstart``. Heavy imports (torch, the loop) happen inside the commands, so ``ast-deploy --help``
stays fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from ast_deploy.cli import DeviceOption, JsonOption, print_json, with_load_options

console = Console()
err_console = Console(stderr=True)

prepare_app = typer.Typer(
    help="Turn official dataset downloads (or generated data) into manifests for training.",
    no_args_is_help=True,
)


def train(
    recipe: Annotated[
        Optional[str],
        typer.Argument(
            help="Recipe name (audioset_full, audioset_balanced, esc50, speechcommands, quickstart) or a TOML config."
        ),
    ] = None,
    overrides: Annotated[
        Optional[list[str]], typer.Option("--set", help="Override a config key, e.g. --set lr=1e-4 (repeatable).")
    ] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Output directory (default: runs/RECIPE).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from OUT/last after a crash or kill.")] = False,
) -> None:
    """Train an AST from a recipe; several processes/nodes: torchrun --nproc_per_node=N -m ast_deploy_training RECIPE."""
    from .train import launch

    launch(recipe, overrides, out, resume)


@with_load_options
def evaluate(
    checkpoint: Annotated[Path, typer.Argument(help="Checkpoint: ours, Hugging Face directory or the authors' .pth.")],
    manifest: Annotated[
        Path, typer.Argument(help="Manifest: authors' JSON (needs --labels), CSV, or folder per class.")
    ],
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 16,
    workers: Annotated[int, typer.Option("--workers", min=0, help="DataLoader worker processes.")] = 2,
    device: DeviceOption = "cpu",
    skip_bad_files: Annotated[
        bool, typer.Option("--skip-bad-files", help="Leave out missing/unreadable audio.")
    ] = False,
    as_json: JsonOption = False,
    report_out: Annotated[
        Optional[Path], typer.Option("--report", help="Also write the full report (per-class lists) as JSON here.")
    ] = None,
    options=None,
) -> None:
    """mAP, mean AUC, d-prime and accuracy of a checkpoint on a manifest, with a per-class table."""
    from ast_deploy.fileio import write_json
    from ast_deploy.runtime.devices import check_device

    from .evaluate import evaluate_checkpoint, per_class_table

    check_device(device)
    report = evaluate_checkpoint(
        checkpoint,
        manifest,
        label_csv=options.label_csv,
        batch_size=batch_size,
        num_workers=workers,
        device=device,
        skip_bad_files=skip_bad_files,
        options=options,
    )
    if report_out is not None:
        write_json(report_out, report)
        err_console.print(f"wrote {report_out}")
    if as_json:
        print_json(report)
        return
    console.print(per_class_table(report, report["labels"]))
    console.print(
        f"{report['num_clips']} clips: mAP {report['mAP']:.4f}  mean AUC {report['mAUC']:.4f}  "
        f"d' {report['d_prime']:.3f}  accuracy {report['accuracy']:.4f}",
        highlight=False,
    )


def stats(
    manifest: Annotated[Path, typer.Argument(help="Training manifest (any format).")],
    label_csv: Annotated[Optional[Path], typer.Option("--labels", help="Label CSV (for JSON manifests).")] = None,
    target_length: Annotated[
        int, typer.Option("--target-length", min=16, help="Frames per clip, as in training.")
    ] = 1024,
    num_mel_bins: Annotated[int, typer.Option("--num-mel-bins", min=16)] = 128,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, help="Clips per batch statistic (authors: 1000).")
    ] = 1000,
    workers: Annotated[int, typer.Option("--workers", min=0)] = 2,
    limit: Annotated[int, typer.Option("--limit", min=0, help="Use only the first N clips (0: all).")] = 0,
    as_json: JsonOption = False,
) -> None:
    """Dataset mean/std of the (padded, un-normalised) fbank, as the AST authors compute it."""
    from .stats import dataset_stats

    result = dataset_stats(manifest, label_csv, target_length, num_mel_bins, batch_size, workers, limit)
    if as_json:
        print_json(result)
        return
    console.print(
        f"{result['num_clips']} clips, {result['num_batches']} batches of up to {batch_size}\n"
        f"mean {result['mean']:.7g}  std {result['std']:.7g}   (authors' method: mean of per-batch statistics)\n"
        f"exact over all frames: mean {result['exact_mean']:.7g}  std {result['exact_std']:.7g}\n"
        f"use: --set norm_mean={result['mean']:.7g} --set norm_std={result['std']:.7g}",
        highlight=False,
    )


@prepare_app.command("esc50")
def prepare_esc50(
    root: Annotated[Path, typer.Argument(help="The ESC-50 download (ESC-50-master/ with audio/ and meta/esc50.csv).")],
    out: Annotated[Path, typer.Argument(help="Output directory for 16 kHz audio, manifests and the label CSV.")],
    workers: Annotated[int, typer.Option("--workers", min=1)] = 2,
) -> None:
    """ESC-50: resample to 16 kHz, write the 5 official folds (esc_train_data_K.json / esc_eval_data_K.json)."""
    from .prepare import prepare_esc50 as run

    _report(run(root, out, workers=workers))


@prepare_app.command("speechcommands")
def prepare_speechcommands(
    root: Annotated[
        Path, typer.Argument(help="Speech Commands V2 (class folders, validation_list.txt, testing_list.txt).")
    ],
    out: Annotated[Path, typer.Argument(help="Output directory for the manifests and the label CSV.")],
) -> None:
    """Speech Commands V2-35: the official train/valid/test split as the authors' JSON manifests."""
    from .prepare import prepare_speechcommands as run

    _report(run(root, out))


@prepare_app.command("audioset")
def prepare_audioset(
    audio_dir: Annotated[
        Path, typer.Argument(help="Directory with the AudioSet clips you have (searched recursively).")
    ],
    out: Annotated[Path, typer.Argument(help="Output directory for the manifests and the label CSV.")],
    segments: Annotated[
        list[Path],
        typer.Option("--segments", help="Official segment CSV(s): balanced_train_segments.csv, eval_segments.csv, ..."),
    ],
) -> None:
    """AudioSet: map the official segment CSVs onto the audio files you have; lists what is missing."""
    from .prepare import prepare_audioset as run

    _report(run(audio_dir, segments, out))


@prepare_app.command("quickstart-data")
def prepare_quickstart_data(
    out: Annotated[Path, typer.Argument(help="Output directory.")] = Path("runs/quickstart/data"),
    clips_per_word: Annotated[int, typer.Option("--clips-per-word", min=4, help="Training clips per keyword.")] = 240,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    workers: Annotated[int, typer.Option("--workers", min=1, help="espeak-ng processes at once.")] = 4,
) -> None:
    """Spoken keywords synthesised with espeak-ng; valid/test speakers are voices never heard in training."""
    from .quickstart_data import generate

    _report(generate(out, clips_per_word=clips_per_word, seed=seed, workers=workers))


def quickstart(
    out: Annotated[Path, typer.Option("--out", help="Where data, checkpoints and summary.json go.")] = Path(
        "runs/quickstart"
    ),
    epochs: Annotated[Optional[int], typer.Option("--epochs", min=1, help="Override the recipe's epochs.")] = None,
    overrides: Annotated[Optional[list[str]], typer.Option("--set", help="Override a training config key.")] = None,
    bench_seconds: Annotated[
        float, typer.Option("--bench-seconds", min=0.01, help="Timed seconds per backend and batch size.")
    ] = 2.0,
) -> None:
    """Generate spoken keywords, train a small AST on them, evaluate on unseen voices, predict: no downloads."""
    from .quickstart import run_quickstart

    summary = run_quickstart(out, epochs=epochs, overrides=overrides or [], bench_seconds=bench_seconds)
    console.print(json.dumps({k: summary[k] for k in ("accuracy", "chance", "wall_seconds", "ok") if k in summary}))
    if not summary["ok"]:  # every step that could run did; what failed is in the table above and summary.json
        raise typer.Exit(1)


def _report(result: dict) -> None:
    """Print a prepare command's result (files written, counts) as JSON on stdout."""
    sys.stdout.write(json.dumps(result, indent=2) + "\n")


def register(app: typer.Typer) -> None:
    """Add ``train``, ``evaluate``, ``stats``, ``prepare`` and ``quickstart`` to the CLI."""
    app.command()(train)
    app.command()(evaluate)
    app.command()(stats)
    app.add_typer(prepare_app, name="prepare")
    app.command()(quickstart)


__all__ = ["register"]
