"""Per-class thresholds chosen on a labelled set, written as the ``label,on,off`` CSV of the events code.

Why per class: a tagger's scores are not calibrated alike across classes (a softmax keyword model
gives its "default" words high scores on noise; AudioSet classes differ by orders of magnitude in
prior), so one global threshold is too high for some classes and too low for others. Each class gets
the threshold that is best *for it* on a labelled set, by one stated rule:

* ``max-f1`` (default): the threshold of maximum F1 (ties: the middle of the tied thresholds, so that
  a plateau does not push the choice to its edge);
* ``target-precision P``: the highest recall with precision >= P (ties: the higher threshold);
* ``target-recall R``: the highest precision with recall >= R (ties: the higher threshold).

A class whose target cannot be met gets its best effort (highest precision, resp. lowest threshold)
and ``target_met: false`` in the report. A class with fewer than ``min_support`` positives in the
set (F1 on 3 events is one event away from any value) falls back to a stated rule: the **global**
threshold (the same rule on the counts of all classes pooled: the best single threshold) or a fixed
value (``0.5``, the AST authors' advice).

What is counted (the *objective*):

* ``event``: for strong labels (a DCASE TSV), ``sed_eval``'s own event-based class-wise counts of
  the events that ``ast_deploy.events`` detects at each candidate threshold: the thresholds are
  chosen for the metric they will be judged by (class-wise counts do not depend on the other
  classes' thresholds, so one ``sed_eval`` run per candidate serves all classes);
* ``clip``: for clip labels (a manifest, ``ast_deploy.manifests``), a clip is predicted positive when
  its highest window score reaches the threshold.

The CSV (docs/streaming.md, section 4) is read back by :func:`ast_deploy.events.read_thresholds`;
the JSON report beside it holds support, precision, recall and F1 per class and the rule used.
An artifact directory can carry the CSV (:func:`store_in_artifact`), listed and hashed in its
manifest under ``"thresholds"``; :func:`artifact_thresholds` finds and verifies it.
"""

from __future__ import annotations

import csv
import io
import math
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .errors import InputError
from .fileio import atomic_file, read_json_object, sha256_file, write_json

THRESHOLDS_FILE = "thresholds.csv"  # in an artifact directory
REPORT_FILE = "thresholds.json"
MANIFEST_KEY = "thresholds"
DEFAULT_MIN_SUPPORT = 5
AUTHORS_DEFAULT = 0.5


@dataclass(frozen=True)
class Rule:
    kind: str = "max-f1"  # "max-f1" | "target-precision" | "target-recall"
    target: float | None = None

    @classmethod
    def from_options(cls, target_precision: float | None = None, target_recall: float | None = None) -> Rule:
        if target_precision is not None and target_recall is not None:
            raise InputError("give --target-precision or --target-recall, not both")
        for name, value in (("precision", target_precision), ("recall", target_recall)):
            if value is not None:
                if not (math.isfinite(value) and 0 < value <= 1):
                    raise InputError(f"--target-{name} must be in (0, 1], got {value}")
                return cls(f"target-{name}", float(value))
        return cls()

    def describe(self) -> str:
        if self.kind == "max-f1":
            return "maximum F1 (ties: the middle of the tied thresholds)"
        what, other = ("precision", "recall") if self.kind == "target-precision" else ("recall", "precision")
        return f"highest {other} with {what} >= {self.target} (ties: the higher threshold)"

    def to_json(self) -> dict:
        return {"kind": self.kind, "target": self.target, "description": self.describe()}


@dataclass
class Curve:
    """Counts of one class at each candidate threshold (ascending): true/false positives, misses."""

    thresholds: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray

    @property
    def support(self) -> int:
        """Positives in the set (reference events, or positive clips)."""
        return round(self.tp[0] + self.fn[0]) if len(self.tp) else 0

    @property
    def precision(self) -> np.ndarray:
        """tp / (tp + fp); 1 where nothing is detected (no false claim), as scikit-learn does."""
        claimed = self.tp + self.fp
        return np.where(claimed > 0, self.tp / np.maximum(claimed, 1e-300), 1.0)

    @property
    def recall(self) -> np.ndarray:
        positives = self.tp + self.fn
        return np.where(positives > 0, self.tp / np.maximum(positives, 1e-300), np.nan)

    @property
    def f1(self) -> np.ndarray:
        denominator = 2 * self.tp + self.fp + self.fn
        return np.where(denominator > 0, 2 * self.tp / np.maximum(denominator, 1e-300), 0.0)


def pick(curve: Curve, rule: Rule) -> tuple[int, bool]:
    """(index of the chosen candidate, whether the rule's target was met)."""
    f1, precision, recall = curve.f1, curve.precision, np.nan_to_num(curve.recall, nan=0.0)
    n = len(curve.thresholds)
    if rule.kind == "max-f1":
        best = np.flatnonzero(f1 == f1.max())
        return int(best[len(best) // 2]), True
    if rule.kind == "target-precision":
        ok = np.flatnonzero((precision >= rule.target) & (curve.tp + curve.fp > 0))
        if not len(ok):  # best effort: the highest precision (with something detected), lowest threshold
            claimed = np.flatnonzero(curve.tp + curve.fp > 0)
            if not len(claimed):
                return n - 1, False
            return int(claimed[np.argmax(precision[claimed])]), False
        best = ok[recall[ok] == recall[ok].max()]
        return int(best[-1]), True
    if rule.kind == "target-recall":
        ok = np.flatnonzero(recall >= rule.target)
        if not len(ok):  # best effort: the lowest threshold, the most recall there is
            return 0, False
        best = ok[precision[ok] == precision[ok].max()]
        return int(best[-1]), True
    raise ValueError(f"unknown rule {rule.kind!r}")


def pooled(curves: Sequence[Curve]) -> Curve:
    """All classes' counts added up (micro averaging): the curve of one global threshold."""
    base = curves[0].thresholds
    for c in curves:
        if not np.array_equal(c.thresholds, base):
            raise ValueError("pooled curves need the same candidate thresholds")
    return Curve(base, sum(c.tp for c in curves), sum(c.fp for c in curves), sum(c.fn for c in curves))


@dataclass
class Selection:
    """The chosen thresholds and everything the report says about them."""

    labels: list[str]
    thresholds: np.ndarray  # (labels,) float64
    classes: list[dict]
    global_threshold: dict
    rule: Rule
    min_support: int
    fallback: str

    def as_config_thresholds(self) -> dict[int, tuple[float, float]]:
        """{label index: (on, off)} for :class:`ast_deploy.events.EventConfig` (off = on)."""
        return {i: (float(t), float(t)) for i, t in enumerate(self.thresholds)}


def _at(curve: Curve, i: int) -> dict:
    recall = curve.recall[i]
    return {
        "threshold": float(curve.thresholds[i]),
        "precision": float(curve.precision[i]),
        "recall": None if np.isnan(recall) else float(recall),
        "f1": float(curve.f1[i]),
        "tp": round(curve.tp[i]),
        "fp": round(curve.fp[i]),
        "fn": round(curve.fn[i]),
    }


def parse_fallback(text: str | float) -> str | float:
    """``global`` or a number in [0, 1]."""
    if isinstance(text, str) and text.strip().lower() == "global":
        return "global"
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise InputError(f"--fallback must be 'global' or a threshold in [0, 1], not {text!r}") from None
    if not (math.isfinite(value) and 0 <= value <= 1):
        raise InputError(f"--fallback threshold must be in [0, 1], got {value}")
    return value


def select(
    curves: Sequence[Curve],
    labels: Sequence[str],
    rule: Rule | None = None,
    min_support: int = DEFAULT_MIN_SUPPORT,
    fallback: str | float = "global",
) -> Selection:
    """A threshold per class by ``rule``; classes with fewer than ``min_support`` positives get the
    ``fallback`` ("global": the same rule on all classes pooled, or a fixed value)."""
    rule = rule or Rule()
    fallback = parse_fallback(fallback)
    if len(curves) != len(labels):
        raise ValueError("one curve per label")
    if min_support < 1:
        raise InputError(f"--min-support must be at least 1, got {min_support}")
    whole = pooled(curves)
    g, g_met = pick(whole, rule)
    global_row = {**_at(whole, g), "target_met": g_met, "rule": rule.kind}
    fallback_value = global_row["threshold"] if fallback == "global" else float(fallback)
    thresholds = np.empty(len(labels))
    rows = []
    for index, (label, curve) in enumerate(zip(labels, curves, strict=True)):
        row: dict = {"label": label, "index": index, "support": curve.support}
        if curve.support >= min_support:
            i, met = pick(curve, rule)
            row.update(_at(curve, i), source="chosen", target_met=met)
        else:
            # The class's own figures at the fallback threshold (the nearest candidate at or above it).
            j = min(int(np.searchsorted(curve.thresholds, fallback_value)), len(curve.thresholds) - 1)
            row.update(_at(curve, j), source="fallback", target_met=None)
            row["threshold"] = fallback_value
        thresholds[index] = row["threshold"]
        rows.append(row)
    fallback_text = (
        f"global: the best single threshold over all classes pooled ({global_row['threshold']:.4g})"
        if fallback == "global"
        else f"fixed value {fallback_value:g}"
    )
    return Selection(list(labels), thresholds, rows, global_row, rule, min_support, fallback_text)


# --- candidates and counts ------------------------------------------------------------------------


def candidate_thresholds(scores: np.ndarray, n: int = 40) -> np.ndarray:
    """Candidate thresholds (ascending): half evenly spaced in [0.02, 0.98], half at high quantiles of
    the scores (sigmoid and softmax scores pile up near 0 and 1, where a grid alone is too coarse)."""
    if n < 2:
        raise InputError(f"--candidates must be at least 2, got {n}")
    flat = np.asarray(scores, np.float64).ravel()
    flat = flat[np.isfinite(flat)]
    grid = np.linspace(0.02, 0.98, n - n // 2)
    tail = np.quantile(flat, np.linspace(0.5, 0.999, n // 2)) if flat.size else np.empty(0)
    out = np.unique(np.round(np.concatenate([grid, tail]), 6))
    return out[(out > 0) & (out <= 1)]


def counting_curves(scores: np.ndarray, targets: np.ndarray, thresholds: np.ndarray) -> list[Curve]:
    """Curves of decisions ``score >= threshold`` against boolean ``targets`` (both (items, classes))."""
    scores = np.asarray(scores, np.float64)
    targets = np.asarray(targets, bool)
    if scores.shape != targets.shape:
        raise ValueError(f"scores {scores.shape} and targets {targets.shape} differ")
    positives = targets.sum(axis=0).astype(np.float64)
    curves = []
    for c in range(scores.shape[1]):
        pos = np.sort(scores[targets[:, c], c])
        neg = np.sort(scores[~targets[:, c], c])
        tp = (len(pos) - np.searchsorted(pos, thresholds, side="left")).astype(np.float64)
        fp = (len(neg) - np.searchsorted(neg, thresholds, side="left")).astype(np.float64)
        curves.append(Curve(np.asarray(thresholds, np.float64), tp, fp, positives[c] - tp))
    return curves


def event_curves(
    predictions: Sequence,
    reference: Mapping[str, Sequence[tuple[float, float, str]]],
    thresholds: np.ndarray,
    hop_seconds: float | None,
    params=None,
    min_duration: float = 0.0,
    merge_gap: float = 0.0,
    progress: Callable[[int, int], None] | None = None,
) -> list[Curve]:
    """Event-based curves: at each candidate, the events of every prediction (``predict`` results,
    their ``source`` a key of ``reference``) are detected with that threshold for every class and
    counted by ``sed_eval``'s event-based metrics (class-wise Ntp, Nsys, Nref)."""
    from .events import EventConfig, prediction_events
    from .sed import EvalParams, sed_eval_metrics

    params = params or EvalParams(psds=False)
    labels = list(predictions[0].labels)
    durations = {p.source: p.duration for p in predictions}
    ref = {p.source: reference.get(p.source, []) for p in predictions}
    n = len(thresholds)
    tp, fp, fn = (np.zeros((len(labels), n)) for _ in range(3))
    for k, t in enumerate(thresholds):
        config = EventConfig(threshold=float(t), min_duration=min_duration, merge_gap=merge_gap)
        est = {
            p.source: [(e.onset, e.offset, e.label) for e in prediction_events(p, config, hop_seconds)]
            for p in predictions
        }
        event_based, _ = sed_eval_metrics(ref, est, durations, labels, params)
        for c, label in enumerate(labels):
            counts = event_based.class_wise[label]
            tp[c, k] = counts["Ntp"]
            fp[c, k] = counts["Nsys"] - counts["Ntp"]
            fn[c, k] = counts["Nref"] - counts["Ntp"]
        if progress is not None:
            progress(k + 1, n)
    grid = np.asarray(thresholds, np.float64)
    return [Curve(grid, tp[c], fp[c], fn[c]) for c in range(len(labels))]


# --- the CSV and the report -----------------------------------------------------------------------


def _csv_label(label: str, index: int, labels: Sequence[str]) -> str:
    """How a label is written so that :func:`~ast_deploy.events.read_thresholds` reads it back as
    ``index``: its name, or its index where the name would read as something else."""
    if not label.strip() or label != label.strip() or label.lstrip().startswith("#") or labels.index(label) != index:
        if str(index) in labels:  # the reader takes a name before an index: this row would go elsewhere
            raise InputError(f"label {index} ({label!r}) cannot be written to a thresholds CSV by name or index")
        return str(index)
    return label


def thresholds_csv(selection: Selection, comments: Sequence[str] = ()) -> str:
    """The ``label,on,off`` text (off = on: no hysteresis) with ``#`` comment lines first."""
    buf = io.StringIO()
    for line in comments:
        buf.write(f"# {line}\n")
    writer = csv.writer(buf, lineterminator="\n")
    if "label" not in selection.labels:  # else the reader would take a header row for that label's row
        writer.writerow(["label", "on", "off"])
    for index, (label, t) in enumerate(zip(selection.labels, selection.thresholds, strict=True)):
        writer.writerow([_csv_label(label, index, selection.labels), f"{t:.6g}", f"{t:.6g}"])
    return buf.getvalue()


def report(selection: Selection, **context) -> dict:
    """The JSON report: the rule, the fallback, the global threshold, and per class support,
    precision, recall, F1 at its threshold (figures on the labelled set the thresholds came from)."""
    return {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **context,
        "rule": selection.rule.to_json(),
        "min_support": selection.min_support,
        "fallback": selection.fallback,
        "global": selection.global_threshold,
        "classes": selection.classes,
    }


def write_outputs(
    out: str | Path, selection: Selection, report_path: str | Path | None = None, **context
) -> tuple[Path, Path]:
    """Write the CSV at ``out`` and the report (default: ``out`` with ``.json``), each atomically."""
    out = Path(out)
    report_path = Path(report_path) if report_path is not None else out.with_suffix(".json")
    if report_path.resolve() == out.resolve():
        raise InputError(f"{out}: the report would overwrite the thresholds file; give --report")
    doc = report(selection, **context)
    comments = [
        "per-class thresholds by ast-deploy thresholds: label,on,off (docs/streaming.md, section 4)",
        f"rule: {selection.rule.describe()}; classes with < {selection.min_support} positives: {selection.fallback}",
        f"report: {report_path.name}",
    ]
    with atomic_file(out) as f:
        f.write(thresholds_csv(selection, comments))
    write_json(report_path, doc)
    return out, report_path


# --- artifact directories --------------------------------------------------------------------------


def artifact_thresholds(artifact_dir: str | Path) -> Path | None:
    """The thresholds CSV that an artifact directory's manifest lists under ``"thresholds"``, after
    checking its sha256 (an :class:`InputError` naming the file if it is missing or changed), or
    ``None`` when the manifest lists none (or ``artifact_dir`` is not an artifact directory)."""
    directory = Path(artifact_dir)
    path = directory / "manifest.json"
    if not path.is_file():
        return None
    entry = read_json_object(path, "manifest").get(MANIFEST_KEY)
    if entry is None:
        return None
    files = entry.get("files") if isinstance(entry, dict) else None
    if not isinstance(files, list) or not files or not all(isinstance(f, dict) and "file" in f for f in files):
        raise InputError(f"{path}: manifest thresholds entry lacks files")
    for f in files:
        file = directory / f["file"]
        if not file.is_file():
            raise InputError(f"{file}: listed in the manifest but missing")
        digest = sha256_file(file)
        if digest != f.get("sha256"):
            raise InputError(f"{file}: sha256 {digest[:12]}... does not match the manifest")
    return directory / files[0]["file"]


def store_in_artifact(artifact_dir: str | Path, csv_path: str | Path, report_path: str | Path | None = None) -> Path:
    """Copy a thresholds CSV (and its report) into an artifact directory and list them, hashed, in
    its manifest under ``"thresholds": {"files": [csv, report]}`` (the CSV first: the file used).
    The CSV is checked against the directory's labels first. Every write is atomic; the manifest is
    rewritten last, so a crash leaves at worst unlisted files."""
    from .events import read_thresholds
    from .export.manifest import MANIFEST, file_entries, read_manifest, validate_manifest, write_manifest

    directory = Path(artifact_dir)
    manifest = read_manifest(directory)  # an InputError if it is not an artifact directory
    read_thresholds(csv_path, manifest["labels"])  # refuse a file this model cannot use
    raw = read_json_object(directory / MANIFEST, "manifest")  # as written (not upgraded in memory)
    try:  # a manifest this would write back invalid is the directory's problem: say so before copying
        validate_manifest(raw)
    except ValueError as e:
        raise InputError(f"{directory / MANIFEST}: {e}") from None
    names = [THRESHOLDS_FILE]
    with atomic_file(directory / THRESHOLDS_FILE, "wb") as f, open(csv_path, "rb") as src:
        shutil.copyfileobj(src, f)
    if report_path is not None and Path(report_path).is_file():
        with atomic_file(directory / REPORT_FILE, "wb") as f, open(report_path, "rb") as src:
            shutil.copyfileobj(src, f)
        names.append(REPORT_FILE)
    raw[MANIFEST_KEY] = {"files": file_entries(directory, names)}
    write_manifest(directory, raw)
    return directory / THRESHOLDS_FILE


def default_event_thresholds(
    model: str | Path | None, thresholds: str | Path | None, labels: Sequence[str], off_threshold: float | None = None
) -> dict[int, tuple[float, float]]:
    """Per-label thresholds for predict/stream: the ``--thresholds`` file when given, else the one an
    artifact directory ``model`` carries, else none ({}). For ``EventConfig(thresholds=...)``."""
    from .events import read_thresholds

    path = thresholds if thresholds is not None else (None if model is None else artifact_thresholds(model))
    return {} if path is None else read_thresholds(path, labels, off_threshold)


__all__ = [
    "MANIFEST_KEY",
    "THRESHOLDS_FILE",
    "Curve",
    "Rule",
    "Selection",
    "artifact_thresholds",
    "candidate_thresholds",
    "counting_curves",
    "default_event_thresholds",
    "event_curves",
    "pick",
    "pooled",
    "report",
    "select",
    "store_in_artifact",
    "thresholds_csv",
    "write_outputs",
]
