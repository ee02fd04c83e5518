"""Sound-event detection metrics, computed by the DCASE community's own libraries.

Nothing here re-implements a metric: :func:`evaluate` hands the events to ``sed_eval`` (segment-
based and event-based F1 and error rate; Mesaros, Heittola, Virtanen 2016) and the scores to
``sed_scores_eval`` (PSDS, Bilen et al. 2020, computed exactly over all thresholds as in Ebbers et
al. 2022), and returns their result dictionaries as they are (numpy numbers made plain, NaN as
``null``). ``psds_eval`` is not used: 0.5.3 fails on numpy 2 (``int()`` of a 1-element array) and on
pandas 3 (``fillna(method=...)``); ``sed_scores_eval`` needs pandas < 3 (its Cython code cannot take
the read-only arrays of pandas 3's copy-on-write), hence that bound in the ``events`` extra.

Inputs:

* references: strong labels in the DCASE TSV layout, ``filename<TAB>onset<TAB>offset<TAB>event_label``
  with an optional header row; a row with only a filename (or empty onset/offset/label) lists a file
  without events, so that its false alarms count;
* estimates: the events of ``predict --events`` (its ``--json`` document, or its JSON lines), or the
  windows of a model run here (then PSDS uses the per-window scores, not just the events).

Defaults are DCASE 2021-2023 task 4's: event-based with a 200 ms collar on onsets and on offsets
(offset collar ``max(0.2 s, 20 % of the event)``), segment-based on 1 s segments, PSDS scenarios
1 (DTC = GTC = 0.7, no cross-trigger penalty) and 2 (DTC = GTC = 0.1, CTTC = 0.3, alpha_ct = 0.5),
alpha_st = 1, max eFPR 100 per hour. See docs/decisions.md.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .errors import InputError, UnavailableError
from .extras import missing
from .fileio import atomic_file
from .windows import hop_length, window_end

EventTuple = tuple[float, float, str]  # (onset, offset, label), seconds
TSV_HEADER = ("filename", "onset", "offset", "event_label")


@dataclass(frozen=True)
class EvalParams:
    """What the metrics are computed with (recorded beside every result)."""

    t_collar: float = 0.2  # event-based: onset (and offset) tolerance, seconds
    percentage_of_length: float = 0.2  # event-based: offset tolerance as a fraction of the event
    evaluate_offset: bool = True  # event-based: offsets must match too (else onsets only)
    time_resolution: float = 1.0  # segment-based: segment length, seconds
    psds: bool = True
    psds_scenarios: dict = field(
        default_factory=lambda: {
            "scenario1": {"dtc_threshold": 0.7, "gtc_threshold": 0.7, "cttc_threshold": None, "alpha_ct": 0.0},
            "scenario2": {"dtc_threshold": 0.1, "gtc_threshold": 0.1, "cttc_threshold": 0.3, "alpha_ct": 0.5},
        }
    )
    alpha_st: float = 1.0
    max_efpr: float = 100.0

    def check(self) -> None:
        flags = {
            "t_collar": "--collar",
            "percentage_of_length": "--percentage-of-length",
            "time_resolution": "--segment",
        }
        for name, flag in flags.items():
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0) or (name == "time_resolution" and value == 0):
                raise InputError(f"{flag} must be a positive number, got {value}")


# --- the libraries --------------------------------------------------------------------------------


def _sed_eval():
    """``sed_eval``, imported quietly (dcase_util warns about pkg_resources on import)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if reason := missing("sed_eval", "events"):
            raise UnavailableError(f"{reason}; it needs setuptools<81 for dcase_util's pkg_resources")
        import sed_eval
    return sed_eval


def _sed_scores_eval():
    if reason := missing(("sed_scores_eval", "sed_scores_eval.base_modules.scores"), "events"):
        raise UnavailableError(reason)
    import sed_scores_eval
    from sed_scores_eval.base_modules.scores import create_score_dataframe

    return sed_scores_eval, create_score_dataframe


def plain(obj):
    """A library's result as plain JSON: numpy numbers -> Python numbers, NaN/Inf -> None."""
    if isinstance(obj, Mapping):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return plain(obj.tolist())
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        return value if math.isfinite(value) else None
    return obj


# --- reading references and estimates -----------------------------------------------------------


def read_reference(path: str | Path) -> dict[str, list[EventTuple]]:
    """A DCASE strong-label TSV -> {filename: [(onset, offset, label), ...]} (files in file order).

    Bad rows are an :class:`InputError` naming ``path:line``.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no such reference file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read the reference events ({e})") from None
    out: dict[str, list[EventTuple]] = {}
    first = True
    for line_no, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        row = [c.strip() for c in line.split("\t")]
        if first and row[0].lower() == "filename":
            first = False
            continue
        first = False
        where = f"{path}:{line_no}"
        if len(row) == 1 and len(line.split()) >= 3:  # "a.wav 1.0 2.0 dog": spaces, not tabs
            raise InputError(f"{where}: expected filename, onset, offset, event_label separated by tabs")
        if len(row) == 1 or (len(row) == 4 and not any(row[1:])):
            out.setdefault(row[0], [])  # a file without events
            continue
        if len(row) != 4:
            hint = " (fields must be separated by tabs)" if len(row) < 4 and " " in line else ""
            raise InputError(f"{where}: expected filename, onset, offset, event_label, got {len(row)} field(s){hint}")
        name, onset_text, offset_text, label = row
        if not name or not label:
            raise InputError(f"{where}: empty filename or event_label")
        try:
            onset, offset = float(onset_text), float(offset_text)
        except ValueError:
            raise InputError(
                f"{where}: onset and offset must be numbers, got {onset_text!r}, {offset_text!r}"
            ) from None
        if not (math.isfinite(onset) and math.isfinite(offset)) or onset < 0 or offset <= onset:
            raise InputError(f"{where}: need 0 <= onset < offset, got {onset_text}, {offset_text}")
        out.setdefault(name, []).append((onset, offset, label))
    if not out:
        raise InputError(f"{path}: no reference events or files")
    return out


def write_reference(path: str | Path, events: Mapping[str, Sequence[EventTuple]]) -> None:
    """Write the DCASE TSV (header, then one row per event; a file without events gets a row with its
    name alone), atomically."""
    with atomic_file(path) as f:
        f.write("\t".join(TSV_HEADER) + "\n")
        for name, evs in events.items():
            if not evs:
                f.write(f"{name}\t\t\t\n")
            for onset, offset, label in sorted(evs):
                f.write(f"{name}\t{onset:.3f}\t{offset:.3f}\t{label}\n")


def write_durations(path: str | Path, durations: Mapping[str, float]) -> None:
    """``filename<TAB>duration`` (DCASE's metadata TSV), atomically."""
    with atomic_file(path) as f:
        f.write("filename\tduration\n")
        for name, seconds in durations.items():
            f.write(f"{name}\t{seconds:.6f}\n")


def read_durations(path: str | Path) -> dict[str, float]:
    path = Path(path)
    try:
        rows = list(csv.reader(path.read_text(encoding="utf-8").splitlines(), delimiter="\t"))
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read durations ({e})") from None
    out = {}
    for line_no, row in enumerate(rows, 1):
        if not row or (line_no == 1 and row[0] == "filename"):
            continue
        try:
            out[row[0]] = float(row[1])
        except (IndexError, ValueError):
            raise InputError(f"{path}:{line_no}: expected filename<TAB>duration") from None
    return out


@dataclass
class Estimates:
    """Events per file (and, when a model ran here, a score DataFrame per file for PSDS)."""

    events: dict[str, list[EventTuple]]
    durations: dict[str, float | None]
    peaks: dict[str, list[float]] = field(default_factory=dict)  # the peak score of each event, same order
    scores: dict | None = None  # {file: pandas.DataFrame(onset, offset, class...)} (sed_scores_eval layout)
    labels: list[str] | None = None  # the model's labels, when known
    source: str = ""


def read_predict_events(path: str | Path) -> Estimates:
    """The events of ``ast-deploy predict --events``: its ``--json`` document (``results[].events``,
    with each file's duration) or its JSON lines (``{"source", "label", "onset", "offset", "peak"}``)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read predicted events ({e})") from None
    events: dict[str, list[EventTuple]] = {}
    peaks: dict[str, list[float]] = {}
    durations: dict[str, float | None] = {}

    def add(source, e, where: str) -> None:
        try:
            onset, offset, label = float(e["onset"]), float(e["offset"]), str(e["label"])
        except (KeyError, TypeError, ValueError):
            raise InputError(f"{where}: an event needs label, onset and offset") from None
        events.setdefault(str(source), []).append((onset, offset, label))
        peaks.setdefault(str(source), []).append(float(e.get("peak", 1.0)))

    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        doc = None
    if isinstance(doc, dict) and not ("source" in doc and "results" not in doc):  # one JSON line parses too
        results = doc.get("results")
        if not isinstance(results, list):
            raise InputError(f"{path}: not the JSON of 'ast-deploy predict --events --json' (no results list)")
        for i, r in enumerate(results):
            if not isinstance(r, dict) or "events" not in r or "source" not in r:
                raise InputError(f"{path}: results[{i}] has no events (run predict with --events)")
            durations[str(r["source"])] = float(r["duration"]) if r.get("duration") is not None else None
            events.setdefault(str(r["source"]), [])
            for e in r["events"]:
                add(r["source"], e, f"{path}: results[{i}]")
        labels = None
    else:  # JSON lines
        for line_no, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                e = json.loads(line)
            except json.JSONDecodeError:
                raise InputError(f"{path}:{line_no}: neither predict's --json document nor its JSON lines") from None
            if not isinstance(e, dict) or "source" not in e:
                raise InputError(f"{path}:{line_no}: an event line needs source, label, onset, offset")
            durations.setdefault(str(e["source"]), None)
            add(e["source"], e, f"{path}:{line_no}")
        labels = None
    if not events:
        raise InputError(f"{path}: no files in the predicted events")
    return Estimates(events, durations, peaks, None, labels, str(path))


def match_files(reference: Mapping[str, object], sources: Iterable[str], reference_dir: Path) -> dict[str, str]:
    """{estimate source: reference filename}. A source matches a reference filename exactly, as the
    same file (the filename taken relative to the reference's directory), or by its base name when
    that is unique in the reference. A source that matches none is an :class:`InputError`."""
    by_path = {}
    for name in reference:
        with contextlib.suppress(OSError):
            by_path[(reference_dir / name).resolve()] = name
    by_base: dict[str, list[str]] = {}
    for name in reference:
        by_base.setdefault(Path(name).name, []).append(name)
    out = {}
    for source in sources:
        if source in reference:
            out[source] = source
            continue
        resolved = Path(source).resolve()
        if resolved in by_path:
            out[source] = by_path[resolved]
            continue
        same_base = by_base.get(Path(source).name, [])
        if len(same_base) == 1:
            out[source] = same_base[0]
            continue
        raise InputError(f"{source}: not in the reference events ({len(reference)} files)")
    if len(set(out.values())) != len(out):
        raise InputError("two estimated files match the same reference file")
    return out


# --- from a model's windows ---------------------------------------------------------------------


def window_timestamps(starts: Sequence[int], window: int, num_samples: int, hop: int, rate: int) -> np.ndarray:
    """Boundaries (seconds, len(starts) + 1) of the frames that stand for each window in a score
    DataFrame: each window's segment of docs/streaming.md section 4 (centre +- hop/2, in half
    samples), made contiguous, with the first frame starting at 0 and the last ending at the end of
    the audio (sed_scores_eval needs frames that tile the file)."""
    from .events import segment

    segs = [segment(s, window_end(s, window, num_samples), hop) for s in starts]
    bounds = [0]  # half samples, strictly increasing
    for a2, _ in segs[1:]:
        # Regular windows' segments touch (a2 == previous b2); the end-aligned last window's segment
        # may start inside the previous one: the frame boundary is its start.
        bounds.append(max(a2, bounds[-1] + 1))
    bounds.append(max(2 * num_samples, bounds[-1] + 1))
    bounds = [b / (2 * rate) for b in bounds]
    return np.asarray(bounds, np.float64)


def prediction_score_frame(prediction, hop_seconds: float | None, classes: Sequence[str]):
    """A ``predict`` result's window scores as sed_scores_eval's DataFrame (columns ``classes``)."""
    _, create_score_dataframe = _sed_scores_eval()
    hop = hop_length(hop_seconds, prediction.sample_rate, prediction.window)
    ts = window_timestamps(prediction.starts, prediction.window, prediction.num_samples, hop, prediction.sample_rate)
    index = {name: i for i, name in enumerate(prediction.labels)}
    scores = np.asarray(prediction.window_scores, np.float64)[:, [index[c] for c in classes]]
    return create_score_dataframe(scores, ts, list(classes))


def events_score_frame(events: Sequence[EventTuple], peaks: Sequence[float], duration: float, classes: Sequence[str]):
    """Detected events as a score DataFrame: a class scores its event's peak inside the event and 0
    elsewhere, so that PSDS's operating points are the events kept at each peak threshold (all that
    can be said about events without their scores)."""
    _, create_score_dataframe = _sed_scores_eval()
    cuts = sorted({0.0, duration, *(t for on, off, _ in events for t in (on, off) if 0 <= t <= duration)})
    ts = np.asarray(cuts, np.float64)
    mid = (ts[:-1] + ts[1:]) / 2
    col = {c: j for j, c in enumerate(classes)}
    scores = np.zeros((len(mid), len(classes)))
    for (onset, offset, label), peak in zip(events, peaks, strict=True):
        if label in col:
            inside = (mid > onset) & (mid < offset)
            scores[inside, col[label]] = np.maximum(scores[inside, col[label]], peak)
    return create_score_dataframe(scores, ts, list(classes))


# --- the metrics ----------------------------------------------------------------------------------


def _event_dicts(name: str, events: Iterable[EventTuple], classes: set[str]) -> list[dict]:
    return [
        {"filename": name, "event_label": label, "onset": onset, "offset": offset}
        for onset, offset, label in events
        if label in classes
    ]


def sed_eval_metrics(
    reference: Mapping[str, Sequence[EventTuple]],
    estimated: Mapping[str, Sequence[EventTuple]],
    durations: Mapping[str, float | None],
    classes: Sequence[str],
    params: EvalParams,
):
    """(event-based, segment-based) ``sed_eval`` metric objects, every file of ``reference`` evaluated
    (a file without estimates has none); events of other classes are left out."""
    sed_eval = _sed_eval()
    keep = set(classes)
    segment_based = sed_eval.sound_event.SegmentBasedMetrics(
        event_label_list=list(classes), time_resolution=params.time_resolution
    )
    event_based = sed_eval.sound_event.EventBasedMetrics(
        event_label_list=list(classes),
        t_collar=params.t_collar,
        percentage_of_length=params.percentage_of_length,
        evaluate_onset=True,
        evaluate_offset=params.evaluate_offset,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, ref in reference.items():
            ref_list = _event_dicts(name, ref, keep)
            est_list = _event_dicts(name, estimated.get(name, ()), keep)
            duration = durations.get(name)
            segment_based.evaluate(ref_list, est_list, evaluated_length_seconds=duration)
            event_based.evaluate(ref_list, est_list)
    return event_based, segment_based


def psds_metrics(
    reference: Mapping[str, Sequence[EventTuple]],
    scores: Mapping[str, object],
    durations: Mapping[str, float],
    classes: Sequence[str],
    params: EvalParams,
) -> dict:
    """PSDS of each scenario by ``sed_scores_eval``, over the classes that have reference events
    (a class without any has no true positive rate). ``scores``: {file: DataFrame}."""
    sed_scores_eval, _ = _sed_scores_eval()
    present = [c for c in classes if any(label == c for evs in reference.values() for _, _, label in evs)]
    out: dict = {"classes": present}
    if not present:
        out["note"] = "no reference events: PSDS is undefined"
        return out
    col = ["onset", "offset", *present]
    frames = {name: scores[name][col] for name in reference}
    gt = {name: [e for e in evs if e[2] in present] for name, evs in reference.items()}
    dur = {name: float(durations[name]) for name in reference}
    for key, scenario in params.psds_scenarios.items():
        value, single, _, _ = sed_scores_eval.intersection_based.psds(
            scores=frames,
            ground_truth=gt,
            audio_durations=dur,
            alpha_st=params.alpha_st,
            max_efpr=params.max_efpr,
            **scenario,
        )
        out[key] = {
            "psds": value,
            "single_class_psds": single,
            "parameters": {**scenario, "alpha_st": params.alpha_st, "max_efpr": params.max_efpr},
        }
    return plain(out)


def evaluate(
    reference: Mapping[str, Sequence[EventTuple]],
    estimates: Estimates,
    classes: Sequence[str] | None = None,
    params: EvalParams | None = None,
) -> dict:
    """sed_eval's event-based and segment-based results and sed_scores_eval's PSDS of ``estimates``
    (keyed by reference filename) against ``reference``.

    ``classes``: what is evaluated (default: the model's labels when known, else every label in the
    reference or the estimates). Reference events of other labels are left out and listed under
    ``ignored_reference_labels``.
    """
    params = params or EvalParams()
    params.check()
    ref_labels = sorted({label for evs in reference.values() for _, _, label in evs})
    if classes is None:
        if estimates.labels is not None:
            classes = list(estimates.labels)
        else:
            est_labels = {label for evs in estimates.events.values() for _, _, label in evs}
            classes = sorted(set(ref_labels) | est_labels)
    classes = list(classes)
    if not classes:
        raise InputError("no event classes to evaluate")
    durations = {name: estimates.durations.get(name) for name in reference}
    for name, evs in reference.items():  # an unknown duration: the latest event's end, as sed_eval assumes
        if durations[name] is None:
            ends = [off for _, off, _ in evs] + [off for _, off, _ in estimates.events.get(name, ())]
            durations[name] = max(ends, default=0.0) or None
    event_based, segment_based = sed_eval_metrics(reference, estimates.events, durations, classes, params)
    result: dict = {
        "files": len(reference),
        "classes": classes,
        "ignored_reference_labels": [label for label in ref_labels if label not in set(classes)],
        "parameters": {k: v for k, v in asdict(params).items() if k != "psds_scenarios"},
    }
    with warnings.catch_warnings():  # numpy's "mean of empty slice" inside sed_eval for classes without events
        warnings.simplefilter("ignore")
        result["sed_eval"] = {
            "event_based": plain(event_based.results()),
            "segment_based": plain(segment_based.results()),
        }
    if params.psds:
        if any(d is None for d in durations.values()):
            result["psds"] = {"note": "file durations unknown (JSON lines input): PSDS not computed"}
        else:
            scores = estimates.scores
            if scores is None:
                scores = {
                    name: events_score_frame(
                        estimates.events.get(name, []), estimates.peaks.get(name, []), durations[name], classes
                    )
                    for name in reference
                }
                result["psds_from"] = "events (each scored by its peak)"
            else:
                result["psds_from"] = "window scores"
            result["psds"] = psds_metrics(reference, scores, durations, classes, params)
    return result


def class_table(result: dict) -> list[dict]:
    """Per class: event-based and segment-based F1 / error rate, counts and PSDS (scenario 1)."""
    ev = result["sed_eval"]["event_based"]["class_wise"]
    seg = result["sed_eval"]["segment_based"]["class_wise"]
    single = (result.get("psds") or {}).get("scenario1", {}).get("single_class_psds", {})
    rows = []
    for c in result["classes"]:
        rows.append(
            {
                "label": c,
                "Nref": ev[c]["count"]["Nref"],
                "Nsys": ev[c]["count"]["Nsys"],
                "event_f1": ev[c]["f_measure"]["f_measure"],
                "event_er": ev[c]["error_rate"]["error_rate"],
                "segment_f1": seg[c]["f_measure"]["f_measure"],
                "segment_er": seg[c]["error_rate"]["error_rate"],
                "psds1": single.get(c),
            }
        )
    return rows


def plot_class_results(result: dict, path: str | Path, title: str | None = None) -> Path:
    """A bar chart of the per-class results (event-based F1, segment-based F1, PSDS scenario 1),
    with the overall figures in the title; written atomically (PNG, or the suffix's format)."""
    from .bench.report import pyplot, save_figure

    plt = pyplot()
    rows = class_table(result)
    names = [r["label"] for r in rows]
    series = [("event-based F1", "event_f1"), ("segment-based F1", "segment_f1")]
    if any(r["psds1"] is not None for r in rows):
        series.append(("PSDS1 (single class)", "psds1"))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.55 * len(names) * len(series) / 2 + 2), 4.2))
    width = 0.8 / len(series)
    x = np.arange(len(names))
    for k, (name, key) in enumerate(series):
        values = [np.nan if r[key] is None else r[key] for r in rows]
        ax.bar(x + (k - (len(series) - 1) / 2) * width, values, width, label=name)
    ax.set_xticks(x, names, rotation=45 if len(names) > 6 else 0, ha="right" if len(names) > 6 else "center")
    ax.set_ylim(0, 1)
    ax.set_ylabel("score")
    overall = result["sed_eval"]["event_based"]["overall"]["f_measure"]["f_measure"]
    seg = result["sed_eval"]["segment_based"]["overall"]["f_measure"]["f_measure"]
    psds1 = (result.get("psds") or {}).get("scenario1", {}).get("psds")
    heading = f"event F1 {_num(overall)}, segment F1 {_num(seg)}" + (
        f", PSDS1 {_num(psds1)}" if psds1 is not None else ""
    )
    ax.set_title(f"{title}\n{heading}" if title else heading, fontsize=10)
    ax.legend(fontsize=8, loc="upper right")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)
    return Path(path)


def _num(x) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def model_estimates(
    clf,
    audio: Sequence[str | Path],
    event_config,
    hop_seconds: float | None,
    batch_size: int = 8,
    progress: Callable[[str, int, int], None] | None = None,
    predictions: list | None = None,
    rollup=None,
) -> tuple[Estimates, list]:
    """Run ``clf`` over ``audio`` (or take its ``predictions``) and return the events it detects with
    ``event_config``, the files' durations and the window scores (for PSDS), keyed by source. With
    ``rollup`` (:class:`~ast_deploy.ontology.Rollup`), the events and scores are the parents'."""
    from .events import prediction_events

    if predictions is None:
        predictions = clf.predict(list(audio), hop_seconds=hop_seconds, batch_size=batch_size, progress=progress)
    events, peaks, durations, scores = {}, {}, {}, {}
    for p in predictions if rollup is None else [rollup.prediction(p) for p in predictions]:
        found = prediction_events(p, event_config, hop_seconds)
        events[p.source] = [(e.onset, e.offset, e.label) for e in found]
        peaks[p.source] = [e.peak for e in found]
        durations[p.source] = p.duration
        scores[p.source] = prediction_score_frame(p, hop_seconds, p.labels)
    labels = list(predictions[0].labels if rollup is None else rollup.labels)
    return Estimates(events, durations, peaks, scores, labels, "model"), predictions


def rekey(estimates: Estimates, mapping: Mapping[str, str]) -> Estimates:
    """The same estimates keyed by reference filename (``mapping``: source -> filename)."""
    return Estimates(
        {mapping[k]: v for k, v in estimates.events.items()},
        {mapping[k]: v for k, v in estimates.durations.items()},
        {mapping[k]: v for k, v in estimates.peaks.items()},
        None if estimates.scores is None else {mapping[k]: v for k, v in estimates.scores.items()},
        estimates.labels,
        estimates.source,
    )


__all__ = [
    "Estimates",
    "EvalParams",
    "class_table",
    "evaluate",
    "events_score_frame",
    "match_files",
    "model_estimates",
    "plot_class_results",
    "prediction_score_frame",
    "read_durations",
    "read_predict_events",
    "read_reference",
    "rekey",
    "sed_eval_metrics",
    "write_durations",
    "write_reference",
]
