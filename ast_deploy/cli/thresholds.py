"""``ast-deploy thresholds``: per-class thresholds chosen on a labelled set (docs/decisions.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from ..errors import InputError
from .app import app, console, print_table
from .event_options import EventOptions, with_event_options
from .options import (
    JsonOption,
    ProgressOption,
    Runtime,
    Windows,
    print_json,
    show_progress,
    with_load_options,
    with_runtime_options,
    with_window_options,
)
from .progress import progress_bars, window_progress


def reference_audio(reference: dict, tsv: Path, audio_dir: Path | None) -> list[Path]:
    """The audio file of each reference filename (relative to ``audio_dir``, else to the TSV's folder)."""
    base = audio_dir if audio_dir is not None else tsv.parent
    paths = [Path(name) if Path(name).is_absolute() else base / name for name in reference]
    missing = next((p for p in paths if not p.is_file()), None)
    if missing is not None:
        raise InputError(f"{missing}: audio of {tsv} not found (give --audio-dir)")
    return paths


@app.command()
@with_load_options
@with_event_options("min_duration", "merge_gap")
@with_runtime_options
@with_window_options()
def thresholds(
    model: Annotated[Path, typer.Argument(help="Checkpoint or artifact directory.")],
    labelled_set: Annotated[
        Path,
        typer.Argument(
            help="Strong labels (DCASE TSV: filename, onset, offset, event_label) or a clip manifest "
            "(CSV path,label / authors' JSON / class folders)."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="The thresholds CSV (label,on,off) to write.")],
    report_path: Annotated[
        Optional[Path], typer.Option("--report", help="JSON report (default: OUT with .json).")
    ] = None,
    target_precision: Annotated[
        Optional[float], typer.Option(help="Highest recall with at least this precision (instead of max F1).")
    ] = None,
    target_recall: Annotated[
        Optional[float], typer.Option(help="Highest precision with at least this recall (instead of max F1).")
    ] = None,
    min_support: Annotated[
        int, typer.Option(help="Classes with fewer positives in the set get the fallback threshold.")
    ] = 5,
    fallback: Annotated[
        str, typer.Option(help="For those classes: 'global' (best single threshold, all classes pooled) or a value.")
    ] = "global",
    objective: Annotated[
        str, typer.Option(help="auto | event (strong labels, sed_eval event-based) | clip (clip labels).")
    ] = "auto",
    candidates: Annotated[int, typer.Option(help="Candidate thresholds tried per class.")] = 40,
    collar: Annotated[float, typer.Option(help="Event-based onset/offset collar, seconds.")] = 0.2,
    percentage_of_length: Annotated[
        float, typer.Option(help="Event-based offset collar as a fraction of the event's length.")
    ] = 0.2,
    onset_only: Annotated[bool, typer.Option("--onset-only", help="Event-based: match onsets only.")] = False,
    audio_dir: Annotated[
        Optional[Path], typer.Option(help="Where the TSV's filenames are (default: the TSV's folder).")
    ] = None,
    store: Annotated[
        bool, typer.Option("--store", help="Also store the file in the artifact directory MODEL (its default).")
    ] = False,
    as_json: JsonOption = False,
    progress: ProgressOption = None,
    options=None,
    runtime: Runtime | None = None,
    windows: Windows | None = None,
    event_options: EventOptions | None = None,
) -> None:
    """Per-class thresholds chosen on a labelled set, as the label,on,off CSV that predict and stream read."""
    import numpy as np

    from .. import load
    from .. import thresholds as th

    hop, min_duration, merge_gap = windows.hop, event_options.min_duration, event_options.merge_gap
    rule = th.Rule.from_options(target_precision, target_recall)
    fallback_value = th.parse_fallback(fallback)
    if objective not in ("auto", "event", "clip"):
        raise InputError(f"--objective must be auto, event or clip, not {objective!r}")
    strong = labelled_set.suffix.lower() == ".tsv"
    objective = ("event" if strong else "clip") if objective == "auto" else objective
    if (objective == "event") != strong:
        raise InputError(f"{labelled_set}: --objective {objective} needs " + ("a DCASE TSV" if not strong else "clips"))
    if store and not (model / "manifest.json").is_file():
        raise InputError(f"{model}: --store needs an artifact directory (from 'ast-deploy export')")
    runtime.check_device()
    if strong:
        from ..sed import EvalParams, read_reference

        params = EvalParams(collar, percentage_of_length, not onset_only, psds=False)
        params.check()
        reference = read_reference(labelled_set)
        audio = reference_audio(reference, labelled_set, audio_dir)
    clf = load(model, device=runtime.device, options=options, backend=runtime.backend)
    try:
        with progress_bars(show_progress(progress)) as report:
            if strong:
                predictions = clf.predict(
                    [str(p) for p in audio],
                    hop_seconds=hop,
                    batch_size=windows.batch_size,
                    progress=window_progress(report),
                )
                by_source = dict(zip((p.source for p in predictions), reference.values(), strict=True))
                unknown = sorted({e[2] for evs in reference.values() for e in evs} - set(clf.labels))
                grid = th.candidate_thresholds(np.concatenate([p.window_scores for p in predictions]), candidates)
                curves = th.event_curves(
                    predictions,
                    by_source,
                    grid,
                    hop,
                    params,
                    min_duration,
                    merge_gap,
                    progress=None if report is None else (lambda d, t: report("thresholds tried", d, t)),
                )
                context = {
                    "objective": "event",
                    "parameters": {
                        "t_collar": collar,
                        "percentage_of_length": percentage_of_length,
                        "evaluate_offset": not onset_only,
                        "hop": hop,
                        "min_duration": min_duration,
                        "merge_gap": merge_gap,
                    },
                    "files": len(predictions),
                    "ignored_reference_labels": unknown,
                }
            else:
                curves, context = _clip_curves(clf, labelled_set, hop, windows.batch_size, candidates, report)
    finally:
        clf.close()
    selection = th.select(curves, clf.labels, rule, min_support, fallback_value)
    context = {"model": str(model), "labelled_set": str(labelled_set), **context}
    csv_path, report_file = th.write_outputs(out, selection, report_path, **context)
    written = [csv_path, report_file]
    if store:
        written.append(th.store_in_artifact(model, csv_path, report_file))
    if as_json:
        print_json(th.report(selection, **context))
        return
    table = Table()
    for column, justify in [
        ("label", "left"),
        ("support", "right"),
        ("threshold", "right"),
        ("precision", "right"),
        ("recall", "right"),
        ("F1", "right"),
        ("how", "left"),
    ]:
        table.add_column(column, justify=justify)
    for row in selection.classes:
        recall = "-" if row["recall"] is None else f"{row['recall']:.3f}"
        table.add_row(
            row["label"],
            str(row["support"]),
            f"{row['threshold']:.4g}",
            f"{row['precision']:.3f}",
            recall,
            f"{row['f1']:.3f}",
            row["source"],
        )
    g = selection.global_threshold
    print_table(f"{labelled_set}: {rule.describe()} ({context['objective']} objective)", table)
    console.print(
        f"best single threshold {g['threshold']:.4g}: precision {g['precision']:.3f}, F1 {g['f1']:.3f} (all classes pooled)",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    console.print("wrote " + ", ".join(map(str, written)), markup=False, highlight=False, soft_wrap=True)


def _clip_curves(clf, manifest: Path, hop, batch_size: int, candidates: int, report):
    """Clip objective: a clip is positive for a class when its highest window score reaches the threshold."""
    import numpy as np

    from .. import thresholds as th
    from ..manifests import label_set_from_names, read_split

    split = read_split(manifest, label_set_from_names(clf.labels), multi_label=True)
    missing = next((e for e in split.examples if not e.path.is_file()), None)
    if missing is not None:
        raise InputError(f"{missing.where}: {missing.path}: no such audio file")
    predictions = clf.predict(
        [str(e.path) for e in split.examples], hop_seconds=hop, batch_size=batch_size, progress=window_progress(report)
    )
    scores = np.stack([p.max_scores for p in predictions])
    targets = np.zeros(scores.shape, bool)
    for i, e in enumerate(split.examples):
        targets[i, list(e.labels)] = True
    grid = np.unique(np.concatenate([th.candidate_thresholds(scores, candidates), np.unique(scores)]))
    context = {"objective": "clip", "parameters": {"hop": hop, "clip_score": "max over windows"}, "files": len(scores)}
    return th.counting_curves(scores, targets, grid[(grid > 0) & (grid <= 1)]), context
