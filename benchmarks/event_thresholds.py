"""Per-class thresholds vs the best single global threshold: event-based F1 on generated soundscapes.

1. Soundscapes (``training/soundscapes.py``): the quickstart's ten keywords, spoken by the
   quickstart's *validation* voices (valid split) and *test* voices (test split), neither heard in
   training, with beeps, chirps and knocks (classes the model does not have: distractors) over
   noise, hum or babble.
2. A model trained by the quickstart recipe (a 2-block AST from scratch on 1-s keyword clips,
   ``ast-deploy quickstart``; default: the committed-elsewhere fixture ``shared/fixtures/cpu_isa/
   quickstart_avx2``, else ``runs/quickstart/train/best``) scores every window (hop ``--hop``).
3. For each setting (:data:`SETTINGS`: how events are matched and merged), on the valid split
   ``ast_deploy.thresholds`` chooses a threshold per class (max event-based F1 by sed_eval's
   class-wise counts) and the best single threshold (all classes pooled).
4. On the test split, ``sed_eval`` scores the events of: the per-class thresholds; the global
   threshold chosen on valid; the best global threshold *on the test split itself* (an oracle: the
   most a single threshold can do, swept over a fine grid); and 0.5. PSDS (threshold-free) once.

    python benchmarks/event_thresholds.py [--model PATH] [--scapes 80] [--duration 10] [--hop 0.1]
        [--data runs/event-thresholds/soundscapes] [--out benchmarks/results/<machine>/event_thresholds]

Writes ``results.json``, ``results.md``, ``results.png`` and the chosen ``thresholds_<setting>.csv``
(+ report) under ``--out``. The soundscapes and the window scores are kept in ``--data`` and reused
when the parameters (and the model's weights) match.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rich.console import Console  # noqa: E402
from rich.progress import Progress  # noqa: E402

from ast_deploy.bench import environment, report  # noqa: E402
from ast_deploy.events import EventConfig, prediction_events  # noqa: E402

console = Console(stderr=True)


def default_model() -> Path:
    for path in (
        REPO / "tests/fixtures/cpu_isa/quickstart_avx2",  # the same bytes as shared/'s, where the repo has them
        REPO.parent / "shared/fixtures/cpu_isa/quickstart_avx2",
        REPO / "runs/quickstart/train/best",
    ):
        if (path / "config.json").is_file():
            return path
    raise SystemExit("no model: give --model (a checkpoint made by `ast-deploy quickstart`)")


def predict(clf, data: Path, split: str, hop: float, batch_size: int) -> tuple[list, dict]:
    """Window scores of every soundscape of ``split`` and the reference keyed by source."""
    from ast_deploy.sed import read_reference

    ref = read_reference(data / f"{split}.tsv")
    files = [str(data / name) for name in ref]
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task(f"scoring {split}", total=len(files))
        predictions = []
        for f in files:
            predictions.extend(clf.predict([f], hop_seconds=hop, batch_size=batch_size))
            bar.advance(task)
    return predictions, dict(zip(files, ref.values(), strict=True))


@dataclass(frozen=True)
class Setting:
    """How events are post-processed and scored; thresholds are chosen for each setting."""

    name: str
    note: str
    t_collar: float
    evaluate_offset: bool
    merge_gap: float

    def params(self):
        from ast_deploy.sed import EvalParams

        return EvalParams(self.t_collar, 0.2, self.evaluate_offset, psds=False)

    def config(self, **thresholds) -> EventConfig:
        return EventConfig(merge_gap=self.merge_gap, **thresholds)


SETTINGS = (
    Setting(
        "onset-0.5",
        "onsets within 0.5 s (DCASE 2017 task 2's rare-event rule), events of a class merged across gaps of "
        "0.3 s or less: what a 1.015 s window can resolve",
        0.5,
        False,
        0.3,
    ),
    Setting(
        "dcase-task4",
        "onsets within 0.2 s and offsets within max(0.2 s, 20 %) (DCASE 2021-2023 task 4), no merging",
        0.2,
        True,
        0.0,
    ),
)


def metrics(predictions, reference: dict, config: EventConfig, hop: float, params) -> dict:
    """sed_eval's event-based and segment-based figures of the events detected with ``config``.

    ``event_f1_macro`` is the mean of the class-wise F1 over the model's classes with a class without
    detections counted as 0: sed_eval gives NaN there and leaves the class out of its class-wise
    average (``event_f1_macro_sed_eval``), which would reward thresholds that silence hard classes.
    """
    from ast_deploy.sed import plain, sed_eval_metrics

    labels = list(predictions[0].labels)
    est = {p.source: [(e.onset, e.offset, e.label) for e in prediction_events(p, config, hop)] for p in predictions}
    durations = {p.source: p.duration for p in predictions}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ev, seg = sed_eval_metrics(reference, est, durations, labels, params)
        e, s = plain(ev.results()), plain(seg.results())
    by_class = {c: e["class_wise"][c]["f_measure"]["f_measure"] for c in labels}
    return {
        "event_f1_micro": e["overall"]["f_measure"]["f_measure"],
        "event_f1_macro": float(np.mean([v or 0.0 for v in by_class.values()])),
        "event_f1_macro_sed_eval": e["class_wise_average"]["f_measure"]["f_measure"],
        "event_precision": e["overall"]["f_measure"]["precision"],
        "event_recall": e["overall"]["f_measure"]["recall"],
        "event_error_rate": e["overall"]["error_rate"]["error_rate"],
        "segment_f1_micro": s["overall"]["f_measure"]["f_measure"],
        "segment_error_rate": s["overall"]["error_rate"]["error_rate"],
        "event_f1_by_class": by_class,
        "events_detected": int(ev.overall["Nsys"]),
    }


def sweep(predictions, reference, grid, hop, setting: Setting, what: str) -> list[dict]:
    out = []
    params = setting.params()
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task(what, total=len(grid))
        for t in grid:
            m = metrics(predictions, reference, setting.config(threshold=float(t)), hop, params)
            out.append({"threshold": float(t), **{k: m[k] for k in ("event_f1_micro", "event_f1_macro")}})
            bar.advance(task)
    return out


def best(rows: list[dict], key: str) -> dict:
    values = np.array([-1.0 if r[key] is None else r[key] for r in rows])
    return rows[int(np.argmax(values))]


def run_setting(setting: Setting, valid, valid_ref, test, test_ref, labels, args, out: Path) -> tuple[dict, dict]:
    """Choose per-class thresholds on valid for ``setting`` and score every contender on test."""
    from ast_deploy import thresholds as th

    params = setting.params()
    seconds = {}
    begin = time.perf_counter()
    grid = th.candidate_thresholds(np.concatenate([p.window_scores for p in valid]), args.candidates)
    curves = th.event_curves(valid, valid_ref, grid, args.hop, params, merge_gap=setting.merge_gap)
    selection = th.select(curves, labels, th.Rule(), args.min_support, "global")
    seconds["choose"] = time.perf_counter() - begin
    th.write_outputs(
        out / f"thresholds_{setting.name}.csv",
        selection,
        out / f"thresholds_{setting.name}.json",
        model=str(args.model),
        objective="event",
        setting=setting.name,
    )
    begin = time.perf_counter()
    per_class = setting.config(thresholds=selection.as_config_thresholds())
    g_valid = selection.global_threshold["threshold"]
    fine = np.unique(np.concatenate([grid, np.linspace(0.02, 0.98, 49)]))
    test_sweep = sweep(test, test_ref, fine, args.hop, setting, f"{setting.name}: global thresholds on test")
    oracle_micro, oracle_macro = best(test_sweep, "event_f1_micro"), best(test_sweep, "event_f1_macro")

    def at(t: float, preds=test, ref=test_ref) -> dict:
        return {"threshold": t, **metrics(preds, ref, setting.config(threshold=t), args.hop, params)}

    result = {
        "setting": {**vars(setting), "percentage_of_length": 0.2},
        "selection": th.report(selection, objective="event"),
        "test": {
            "per_class": metrics(test, test_ref, per_class, args.hop, params),
            "global_valid": at(g_valid),
            "global_oracle_micro": at(oracle_micro["threshold"]),
            "global_oracle_macro": at(oracle_macro["threshold"]),
            "default": at(0.5),
            "global_sweep": test_sweep,
        },
        "valid": {
            "per_class": metrics(valid, valid_ref, per_class, args.hop, params),
            "global_valid": at(g_valid, valid, valid_ref),
        },
    }
    seconds["evaluate"] = time.perf_counter() - begin
    result["seconds"] = seconds
    return result, selection


def markdown(doc: dict) -> str:
    d = doc["data"]
    lines = [
        f"# Per-class thresholds vs one global threshold ({doc['machine']})",
        "",
        f"Model: `{doc['model']}` ({doc['model_note']}). Data (`training/soundscapes.py`, seed {d['seed']}): "
        f"{d['scapes_per_split']} soundscapes of {d['duration']:g} s per split, {d['events']['valid']} / "
        f"{d['events']['test']} events in valid / test, {d['keyword_events']['valid']} / {d['keyword_events']['test']} "
        f"of them keywords (the rest: beeps, chirps, knocks the model does not know). Windows every {doc['hop']} s. "
        f"Metrics by sed_eval {doc['libraries']['sed_eval']}, PSDS by sed_scores_eval {doc['libraries']['sed_scores_eval']}. "
        "Macro F1: the mean of the class-wise F1 with a class that detects nothing counted as 0.",
        "",
    ]
    for r in doc["settings"]:
        t = r["test"]
        s = r["setting"]
        lines += [
            f"## `{s['name']}`: {s['note']}",
            "",
            "| test split | threshold | event F1 (micro) | event F1 (macro) | event error rate | segment F1 (micro) |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        rows = [
            ("**per-class thresholds, chosen on valid**", t["per_class"], "per class"),
            ("one global threshold, chosen on valid", t["global_valid"], f"{t['global_valid']['threshold']:.3g}"),
            (
                "best global threshold on test itself (oracle, micro)",
                t["global_oracle_micro"],
                f"{t['global_oracle_micro']['threshold']:.3g}",
            ),
            (
                "best global threshold on test itself (oracle, macro)",
                t["global_oracle_macro"],
                f"{t['global_oracle_macro']['threshold']:.3g}",
            ),
            ("0.5 (the authors' default)", t["default"], "0.5"),
        ]
        for name, m, threshold in rows:
            lines.append(
                f"| {name} | {threshold} | {_f(m['event_f1_micro'])} | {_f(m['event_f1_macro'])} | "
                f"{_f(m['event_error_rate'])} | {_f(m['segment_f1_micro'])} |"
            )
        lines += [
            "",
            "| class | valid events | threshold | test F1, per-class | test F1, global chosen on valid |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        for row in r["selection"]["classes"]:
            c = row["label"]
            lines.append(
                f"| {c} | {row['support']} | {row['threshold']:.3g} ({row['source']}) | "
                f"{_f(t['per_class']['event_f1_by_class'][c])} | {_f(t['global_valid']['event_f1_by_class'][c])} |"
            )
        lines += [""]
    psds = doc["psds"]
    sec = doc["seconds"]
    lines += [
        f"PSDS on the test split (threshold-free, from the window scores): scenario 1 {_f(psds['scenario1']['psds'])}, "
        f"scenario 2 {_f(psds['scenario2']['psds'])}.",
        "",
        f"Seconds: generate {sec['generate']:.0f}, score {sec['score']:.0f} (cached when 0), "
        + ", ".join(
            f"{r['setting']['name']}: choose {r['seconds']['choose']:.0f}, evaluate {r['seconds']['evaluate']:.0f}"
            for r in doc["settings"]
        )
        + ".",
        "",
        f"Command: `{doc['command']}`",
        "",
    ]
    return "\n".join(lines)


def _f(x) -> str:
    return "-" if x is None else f"{x:.3f}"


def plot(doc: dict, path: Path) -> None:
    plt = report.pyplot()
    settings = doc["settings"]
    fig, axes = plt.subplots(len(settings), 2, figsize=(12, 4.0 * len(settings)), squeeze=False)
    for (a, b), r in zip(axes, settings, strict=True):
        t = r["test"]
        xs = [row["threshold"] for row in t["global_sweep"]]
        for key, style in (("event_f1_micro", "-"), ("event_f1_macro", "--")):
            ys = [np.nan if row[key] is None else row[key] for row in t["global_sweep"]]
            a.plot(xs, ys, style, color="tab:blue", label=f"one global threshold ({key[9:]})")
            a.axhline(
                t["per_class"][key] or 0.0, color="tab:red", linestyle=style, label=f"per-class thresholds ({key[9:]})"
            )
        a.axvline(t["global_valid"]["threshold"], color="gray", linestyle=":", label="global chosen on valid")
        a.set_xlabel("global threshold")
        a.set_ylabel("event-based F1 (test)")
        a.set_title(f"{r['setting']['name']}: one threshold for all vs per class", fontsize=10)
        a.legend(fontsize=7)
        a.grid(alpha=0.3)
        labels = [row["label"] for row in r["selection"]["classes"]]
        x = np.arange(len(labels))
        per = [t["per_class"]["event_f1_by_class"][c] or 0.0 for c in labels]
        glo = [t["global_valid"]["event_f1_by_class"][c] or 0.0 for c in labels]
        b.bar(x - 0.2, glo, 0.4, label=f"global chosen on valid ({t['global_valid']['threshold']:.2g})")
        b.bar(x + 0.2, per, 0.4, label="per-class, chosen on valid")
        b.set_xticks(x, labels)
        b.set_ylim(0, 1)
        b.set_ylabel("event-based F1 (test)")
        b.set_title(f"{r['setting']['name']}: per class", fontsize=10)
        b.legend(fontsize=7)
        b.grid(axis="y", alpha=0.3)
    fig.suptitle(f"{Path(doc['model']).name} on generated soundscapes, hop {doc['hop']} s ({doc['machine']})")
    fig.tight_layout()
    report.save_figure(fig, path)


def cached_predictions(clf, data: Path, split: str, hop: float, batch_size: int, model: Path) -> tuple[list, dict]:
    """``predict`` once per (model, split, hop): the window scores are kept in DATA/scores_*.npz."""
    from ast_deploy.fileio import atomic_file, sha256_file
    from ast_deploy.pipeline import Prediction
    from ast_deploy.sed import read_reference

    weights = next(iter(sorted(model.glob("*.safetensors"))), None)
    key = f"{sha256_file(weights)[:12] if weights else model.name}_{split}_{hop:g}"
    path = data / f"scores_{key}.npz"
    ref = read_reference(data / f"{split}.tsv")
    files = [str(data / name) for name in ref]
    if path.is_file():
        z = np.load(path, allow_pickle=False)
        labels = [str(x) for x in z["labels"]]
        preds = [
            Prediction(
                f,
                int(z["rate"]),
                int(z[f"n{i}"]),
                [int(s) for s in z[f"starts{i}"]],
                int(z["window"]),
                labels,
                z[f"scores{i}"],
            )
            for i, f in enumerate(files)
        ]
        return preds, dict(zip(files, ref.values(), strict=True))
    preds, reference = predict(clf, data, split, hop, batch_size)
    arrays = {"labels": np.array(preds[0].labels), "rate": preds[0].sample_rate, "window": preds[0].window}
    for i, p in enumerate(preds):
        arrays.update({f"n{i}": p.num_samples, f"starts{i}": np.array(p.starts), f"scores{i}": p.window_scores})
    with atomic_file(path, "wb") as f:
        np.savez(f, **arrays)
    return preds, reference


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path)
    p.add_argument("--scapes", type=int, default=80, help="soundscapes per split")
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--hop", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--candidates", type=int, default=40)
    p.add_argument("--min-support", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--data", type=Path, default=REPO / "runs/event-thresholds/soundscapes")
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)

    import torch

    import ast_deploy
    from ast_deploy import sed
    from ast_deploy_training import soundscapes

    torch.set_num_threads(2)
    command = ["python", "benchmarks/event_thresholds.py", *(argv if argv is not None else sys.argv[1:])]
    env = environment.collect(command)
    machine = environment.machine_name(env, "cpu")
    out = args.out or REPO / "benchmarks/results" / machine / "event_thresholds"
    model = args.model or default_model()
    seconds = {}

    begin = time.perf_counter()
    splits = {"valid": args.scapes, "test": args.scapes}
    meta_path = args.data / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    if [meta.get(k) for k in ("generator_version", "seed", "splits", "duration")] != [
        soundscapes.GENERATOR_VERSION,
        args.seed,
        splits,
        args.duration,
    ]:  # (re)generate; the same parameters reuse the set and its cached scores
        soundscapes.generate(args.data, splits, args.duration, args.seed)
        meta = json.loads(meta_path.read_text())
    generated = {
        "events": {s: sum(len(r["events"]) for r in meta["soundscapes"] if r["split"] == s) for s in splits},
        "classes": meta["keywords"] + meta["sounds"],
    }
    seconds["generate"] = time.perf_counter() - begin
    console.print(f"soundscapes: {generated['events']} events in {args.data}")

    clf = ast_deploy.load(model)
    begin = time.perf_counter()
    valid, valid_ref = cached_predictions(clf, args.data, "valid", args.hop, args.batch_size, model)
    test, test_ref = cached_predictions(clf, args.data, "test", args.hop, args.batch_size, model)
    clf.close()
    seconds["score"] = time.perf_counter() - begin

    out.mkdir(parents=True, exist_ok=True)
    args.model = model
    labels = clf.labels
    settings = []
    for setting in SETTINGS:
        result, _ = run_setting(setting, valid, valid_ref, test, test_ref, labels, args, out)
        settings.append(result)
        console.print(f"{setting.name}: done ({result['seconds']})")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimates, _ = sed.model_estimates(None, [], EventConfig(), args.hop, predictions=test)
        psds = sed.psds_metrics(
            test_ref, estimates.scores, {p.source: p.duration for p in test}, labels, sed.EvalParams()
        )

    import sed_eval
    import sed_scores_eval

    keyword_events = {
        split: sum(1 for r in ref.values() for e in r if e[2] in clf.labels)
        for split, ref in (("valid", valid_ref), ("test", test_ref))
    }
    doc = {
        "benchmark": "event_thresholds",
        "machine": machine,
        "environment": env,
        "command": " ".join(command),
        "model": str(model),
        "model_note": "the quickstart recipe: 2-block AST-tiny from scratch, 10 keywords, softmax, 1.015 s window",
        "labels": clf.labels,
        "hop": args.hop,
        "data": {
            "generator": "ast_deploy_training.soundscapes",
            "seed": args.seed,
            "scapes_per_split": args.scapes,
            "duration": args.duration,
            "events": generated["events"],
            "keyword_events": keyword_events,
            "classes": generated["classes"],
        },
        "libraries": {
            "sed_eval": getattr(sed_eval, "__version__", "?"),
            "sed_scores_eval": getattr(sed_scores_eval, "__version__", "0.0.4"),
        },
        "settings": settings,
        "psds": psds,
        "seconds": seconds,
    }
    paths = report.write_outputs(out / "results", doc, markdown(doc), plot)
    console.print(markdown(doc))
    console.print("wrote " + ", ".join(map(str, paths)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
