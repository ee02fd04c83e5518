"""``ast-deploy evaluate-events``: sound-event detection metrics by sed_eval and sed_scores_eval (PSDS).

Either a model runs here over the audio (events with the event options, PSDS from its window
scores), or the JSON of ``predict --events`` is evaluated as it is. docs/decisions.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from ..errors import InputError
from .app import app, console, print_table
from .event_options import EventOptions, with_event_options
from .options import (
    AudioArguments,
    JsonOption,
    ProgressOption,
    Runtime,
    Windows,
    audio_paths,
    print_json,
    show_progress,
    with_load_options,
    with_runtime_options,
    with_window_options,
)
from .progress import progress_bars, window_progress
from .rollup_option import RollupOption, model_rollup
from .thresholds import reference_audio


def _is_events_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in (".json", ".jsonl")


@app.command("evaluate-events")
@with_load_options
@with_event_options("threshold", "thresholds", "off_threshold", "min_duration", "merge_gap")
@with_runtime_options
@with_window_options()
def evaluate_events(
    model: Annotated[
        Path, typer.Argument(help="Checkpoint or artifact directory, or the JSON of 'predict --events' to evaluate.")
    ],
    audio: AudioArguments = None,
    reference: Annotated[
        Optional[Path],
        typer.Option("--reference", "-r", help="Strong labels: DCASE TSV (filename, onset, offset, event_label)."),
    ] = None,
    collar: Annotated[float, typer.Option(help="Event-based onset/offset collar, seconds.")] = 0.2,
    percentage_of_length: Annotated[
        float, typer.Option(help="Event-based offset collar as a fraction of the event's length.")
    ] = 0.2,
    onset_only: Annotated[bool, typer.Option("--onset-only", help="Event-based: match onsets only.")] = False,
    segment: Annotated[float, typer.Option(help="Segment-based: segment length, seconds.")] = 1.0,
    psds: Annotated[bool, typer.Option("--psds/--no-psds", help="PSDS scenarios 1 and 2 (sed_scores_eval).")] = True,
    durations: Annotated[
        Optional[Path], typer.Option(help="filename<TAB>duration TSV, for JSON-lines events (which have none).")
    ] = None,
    audio_dir: Annotated[
        Optional[Path], typer.Option(help="Where the reference's filenames are (default: the TSV's folder).")
    ] = None,
    plot: Annotated[Optional[Path], typer.Option(help="Write a per-class plot (PNG) here.")] = None,
    rollup: RollupOption = None,
    as_json: JsonOption = False,
    progress: ProgressOption = None,
    options=None,
    runtime: Runtime | None = None,
    windows: Windows | None = None,
    event_options: EventOptions | None = None,
) -> None:
    """Event-based and segment-based F1 / error rate (sed_eval) and PSDS (sed_scores_eval) of sound events.

    AUDIO defaults to every file of the reference; --json prints sed_eval's and PSDS's result dictionaries."""
    from .. import sed

    if reference is None:
        raise InputError("missing --reference EVENTS.tsv (strong labels: filename, onset, offset, event_label)")
    params = sed.EvalParams(collar, percentage_of_length, not onset_only, segment, psds)
    params.check()
    ref = sed.read_reference(reference)
    event_config = None
    if _is_events_file(model):
        if audio:
            raise InputError(f"{model}: evaluating predicted events takes no audio files")
        if event_options.given or rollup is not None:
            raise InputError(
                f"{model}: the events are already detected; event options and --rollup apply to a model "
                "(predict --rollup SPEC --events gives events of parents)"
            )
        estimates = sed.read_predict_events(model)
        if durations is not None:
            known = sed.read_durations(durations)
            for source in estimates.durations:
                if estimates.durations[source] is None:
                    estimates.durations[source] = known.get(source, known.get(Path(source).name))
    else:
        from .. import load

        runtime.check_device()
        files = [str(p) for p in (audio_paths(audio) if audio else reference_audio(ref, reference, audio_dir))]
        clf = load(model, device=runtime.device, options=options, backend=runtime.backend)
        try:
            parents = model_rollup(clf.labels, rollup)  # --rollup: events (and PSDS) of the parents
            event_config = event_options.config(clf.labels, model, parents)  # an artifact's thresholds by default
            with progress_bars(show_progress(progress)) as report:
                estimates, _ = sed.model_estimates(
                    clf,
                    files,
                    event_config,
                    windows.hop,
                    windows.batch_size,
                    progress=window_progress(report),
                    rollup=parents,
                )
        finally:
            clf.close()
    mapping = sed.match_files(ref, estimates.events, reference.parent if audio_dir is None else audio_dir)
    estimates = sed.rekey(estimates, mapping)
    evaluated = {name: ref[name] for name in ref if name in set(mapping.values())}
    result = sed.evaluate(evaluated, estimates, params=params)
    doc = {
        "model": str(model),
        "reference": str(reference),
        **({"event_config": _config_json(event_config, estimates.labels)} if event_config is not None else {}),
        **result,
    }
    if plot is not None:
        sed.plot_class_results(result, plot, title=f"{model.name} on {reference.name}")
    if as_json:
        print_json(doc)
        return
    table = Table()
    for column in ("label", "Nref", "Nsys", "event F1", "event ER", "segment F1", "segment ER", "PSDS1"):
        table.add_column(column, justify="left" if column == "label" else "right")
    for row in sed.class_table(result):
        table.add_row(
            row["label"],
            f"{row['Nref']:.0f}",
            f"{row['Nsys']:.0f}",
            *(_fmt(row[k]) for k in ("event_f1", "event_er", "segment_f1", "segment_er", "psds1")),
        )
    ev, seg = result["sed_eval"]["event_based"], result["sed_eval"]["segment_based"]
    print_table(f"{model} against {reference} ({result['files']} files)", table)
    lines = [
        f"event-based (collar {collar} s{', onsets only' if onset_only else ''}): "
        f"F1 {_fmt(ev['overall']['f_measure']['f_measure'])} micro, "
        f"{_fmt(ev['class_wise_average']['f_measure']['f_measure'])} macro; "
        f"error rate {_fmt(ev['overall']['error_rate']['error_rate'])}",
        f"segment-based ({segment} s): F1 {_fmt(seg['overall']['f_measure']['f_measure'])} micro, "
        f"{_fmt(seg['class_wise_average']['f_measure']['f_measure'])} macro; "
        f"error rate {_fmt(seg['overall']['error_rate']['error_rate'])}",
    ]
    p = result.get("psds") or {}
    if "scenario1" in p:
        lines.append(
            f"PSDS1 {_fmt(p['scenario1']['psds'])}, PSDS2 {_fmt(p['scenario2']['psds'])} ({result['psds_from']})"
        )
    elif "note" in p:
        lines.append(f"PSDS: {p['note']}")
    if result["ignored_reference_labels"]:
        lines.append("not evaluated (labels the model does not have): " + ", ".join(result["ignored_reference_labels"]))
    if plot is not None:
        lines.append(f"wrote {plot}")
    for line in lines:
        console.print(line, markup=False, highlight=False, soft_wrap=True)


def _fmt(x) -> str:
    return "-" if x is None else f"{x:.3f}"


def _config_json(config, labels) -> dict:
    return {
        "threshold": config.threshold,
        "off_threshold": config.off_threshold,
        "thresholds": {labels[i]: list(v) for i, v in sorted(config.thresholds.items())},
        "min_duration": config.min_duration,
        "merge_gap": config.merge_gap,
    }
