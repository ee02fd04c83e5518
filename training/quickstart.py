"""``ast-deploy quickstart``: data -> train -> evaluate on unseen voices -> export -> parity -> bench
-> predict, with no downloads.

The run is a list of named steps (:data:`STEPS`), each a function of the shared
:class:`Quickstart` state that returns its results for ``summary.json``. Adding a step (export,
parity, benchmark, ...) is one function and one entry in the list; ``summary.json`` is rewritten
after every step, so a failure late in the run keeps what the earlier steps found.

A step that fails does not end the run in a traceback: its error is recorded (``failures`` in
``summary.json``), the steps that need it (:data:`NEEDS`) are skipped, every other step runs, and the
run ends with a table of what failed and how to reproduce it (``ast-deploy quickstart`` exits 1). An
export where some formats fail parity is such a failure, but a partial one: the formats that passed
are published and the later steps use them.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from ast_deploy.fileio import write_json

console = Console(stderr=True)


@dataclass
class Quickstart:
    """State shared by the steps: where things are, and what earlier steps found."""

    out: Path
    epochs: int | None = None
    overrides: list[str] = field(default_factory=list)
    clips_per_word: int = 240
    seed: int = 0
    bench_seconds: float = 2.0  # timed per backend and batch size: enough for a p50 on a quiet machine
    results: dict = field(default_factory=dict)

    @property
    def data_dir(self) -> Path:
        return self.out / "data"

    @property
    def run_dir(self) -> Path:
        return self.out / "train"

    @property
    def checkpoint(self) -> Path:
        """The model later steps use: the epoch with the best validation accuracy."""
        return self.run_dir / "best"

    @property
    def artifacts_dir(self) -> Path:
        return self.out / "artifacts"


Step = Callable[[Quickstart], dict]


class StepFailed(Exception):
    """A step that did part of its work: ``results`` go into the summary, and later steps still run."""

    def __init__(self, message: str, results: dict, reproduce: str | None = None):
        super().__init__(message)
        self.results, self.reproduce = results, reproduce


def generate_data(qs: Quickstart) -> dict:
    """Spoken keywords from espeak-ng (reused when the same set was generated before)."""
    from .quickstart_data import generate, is_generated

    if is_generated(qs.data_dir, qs.clips_per_word, qs.seed):
        console.print(f"reusing {qs.data_dir}")
        return {"dir": str(qs.data_dir), "reused": True}
    return {**generate(qs.data_dir, clips_per_word=qs.clips_per_word, seed=qs.seed), "reused": False}


def train_model(qs: Quickstart) -> dict:
    """A small AST from scratch with the ``quickstart`` recipe (a fresh run each time)."""
    from .config import load_config
    from .train import run

    data = {f"{split}_data": str(qs.data_dir / f"{split}.csv") for split in ("train", "valid", "test")}
    overrides = [f"{k}={v}" for k, v in data.items()] + list(qs.overrides)
    if qs.epochs:
        overrides.append(f"epochs={qs.epochs}")
    config = load_config("quickstart", overrides)
    shutil.rmtree(qs.run_dir, ignore_errors=True)
    summary = run(config, qs.run_dir)
    best = summary["best"]
    return {
        "dir": str(qs.run_dir),
        "epochs": summary["epochs"],
        "best_epoch": best["epoch"],
        "valid_accuracy": best["valid"]["accuracy"],
        "train_clips_per_s": summary["last"]["train"]["clips_per_s"],
    }


def evaluate_model(qs: Quickstart) -> dict:
    """Accuracy on the test voices (never heard in training) against chance, with a per-class table."""
    from .evaluate import evaluate_checkpoint, per_class_table

    report = evaluate_checkpoint(qs.checkpoint, qs.data_dir / "test.csv", num_workers=1)
    chance = 1.0 / len(report["labels"])
    console.print(per_class_table(report, report["labels"]))
    console.print(
        f"[bold]test accuracy on unseen voices: {report['accuracy']:.1%}[/bold] "
        f"(chance {chance:.0%}, {report['num_clips']} clips); mAP {report['mAP']:.3f}"
    )
    per_class = dict(zip(report["labels"], report["class_accuracy"], strict=True))
    return {
        "accuracy": report["accuracy"],
        "chance": chance,
        "mAP": report["mAP"],
        "num_clips": report["num_clips"],
        "class_accuracy": per_class,
    }


def export_artifacts(qs: Quickstart) -> dict:
    """The best checkpoint -> every format this machine produces (waveform in: the front end is inside
    the graph), each checked against PyTorch float32 before it is published."""
    from ast_deploy.export import ExportOptions, ParityFailure, export

    calibration = qs.data_dir / "valid.csv"
    try:
        manifest = export(
            qs.checkpoint,
            qs.artifacts_dir,
            force=True,
            # Static int8 (OpenVINO) is calibrated on validation voices: real audio, not the test clips.
            options=ExportOptions(calibration=(calibration,)),
            log=lambda m: console.print(m, markup=False, highlight=False),
        )
    except ParityFailure as e:
        failed = e.manifest["failed"]
        reasons = "; ".join(f"{f['name']}: {', '.join(f['parity']['failures'])}" for f in failed)
        names = ",".join(f["name"] for f in failed)
        raise StepFailed(
            f"not published (parity on {failed[0]['parity']['inputs']}): {reasons}",
            _export_results(qs, e.manifest),
            f"ast-deploy export {qs.checkpoint} --out {qs.out / 'check'} --to {names} --calibration {calibration}",
        ) from None
    return _export_results(qs, manifest)


def _export_results(qs: Quickstart, manifest: dict) -> dict:
    from ast_deploy.export.manifest import artifact_bytes

    return {
        "dir": str(qs.artifacts_dir),
        "artifacts": {
            a["name"]: {
                "precision": a["precision"],
                "mib": round(artifact_bytes(a) / 2**20, 2),
                "parity_passed": a["parity"]["passed"],
            }
            for a in manifest["artifacts"]
        },
        "skipped": {s["name"]: s["reason"] for s in manifest["skipped"]},
        "not_published": {f["name"]: f["parity"]["failures"] for f in manifest.get("failed", [])},
    }


def parity_on_unseen_voices(qs: Quickstart, clips: int = 200) -> dict:
    """Every artifact and the float32 reference on held-out test clips: agreement and each one's accuracy."""
    from ast_deploy.artifacts import ArtifactDir
    from ast_deploy.parity import manifest_inputs, run_parity, table

    artifacts = ArtifactDir(qs.artifacts_dir)
    inputs = manifest_inputs(
        qs.data_dir / "test.csv", artifacts.labels, artifacts.spec.num_samples, artifacts.spec.sample_rate, clips
    )
    report = run_parity(artifacts, inputs=inputs)
    report.write_json(qs.out / "parity.json")
    console.print(f"parity on {report.inputs}", markup=False, highlight=False, soft_wrap=True)
    console.print(table([r.to_dict() for r in report.results]))
    results = {
        "passed": report.passed,
        "clips": report.num_inputs,
        "reference_accuracy": report.reference_task_metric["value"],
        "backends": {
            r.backend: {
                "accuracy": r.task_metric["value"],
                "top1_agreement": r.top1_agreement,
                "max_abs_logit": r.max_abs_logit,
                "passed": r.passed,
            }
            for r in report.results
        },
    }
    failed = [r for r in report.results if not r.passed]
    if failed:
        raise StepFailed(
            "; ".join(f"{r.backend} fails parity on unseen voices: {', '.join(r.failures)}" for r in failed),
            results,
            f"ast-deploy parity {qs.artifacts_dir} --manifest {qs.data_dir / 'test.csv'} --n {clips} "
            f"--backends {','.join(r.backend for r in failed)}",
        )
    return results


def benchmark(qs: Quickstart) -> dict:
    """A short latency/throughput run of the deployable backends at batch 1 and 8 on this machine."""
    from ast_deploy.bench import Timing, make_plan, report, run
    from ast_deploy.bench.plan import backend_listing
    from ast_deploy.bench.sources import open_source
    from ast_deploy.cli.bench import ProgressDisplay
    from ast_deploy.runtime import registry

    # The float32 reference and every exported artifact as exported (variants such as bf16 hints are
    # for 'ast-deploy bench' to compare), but the FP16 ones: a GPU precision that on the CPU would
    # only time float16 emulation.
    wanted = ["pytorch"]
    wanted += [
        n for n in registry.artifact_backends() if not registry.get(n).artifact and registry.get(n).precision != "fp16"
    ]
    available, _ = backend_listing(open_source(qs.artifacts_dir), "cpu")
    plan = make_plan(
        qs.artifacts_dir,
        backends=[b for b in wanted if b in available],
        batch_sizes="1,8",
        timing=Timing(warmup=2, seconds=qs.bench_seconds),
        isolation="backend",
    )
    with ProgressDisplay(console, len(plan.backends) * len(plan.batch_sizes)) as progress:
        doc = run(plan, progress)
    for t in report.console_tables(doc):
        console.print(t)
    report.write(doc, qs.out / "bench.json", qs.out / "bench.md")
    ok = [r for r in doc["results"] if r["status"] == "ok"]
    return {
        "json": str(qs.out / "bench.json"),
        "clips_per_s": {f"{r['backend']}@{r['batch']}": round(r["throughput_clips_per_s"], 1) for r in ok},
        "p50_ms_batch1": {r["backend"]: round(r["latency_ms"]["p50"], 2) for r in ok if r["batch"] == 1},
    }


def predict_examples(qs: Quickstart, count: int = 2) -> dict:
    """``ast_deploy.load(artifacts).predict(files)``: the deployment API on a few test clips."""
    import csv

    import ast_deploy

    with open(qs.data_dir / "test.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))[1:]
    stride = max(1, len(rows) // count)
    picks = [rows[(k * stride + k) % len(rows)] for k in range(count)]  # +k: a different word each
    source = qs.artifacts_dir if (qs.artifacts_dir / "manifest.json").is_file() else qs.checkpoint
    classifier = ast_deploy.load(source)
    try:
        predictions = classifier.predict([qs.data_dir / path for path, _ in picks], top_k=3)
    finally:
        classifier.close()
    out = []
    for (path, truth), p in zip(picks, predictions, strict=True):
        top = p.top(3)
        shown = ", ".join(f"{t['label']} {t['score']:.2f}" for t in top)
        console.print(f"{path}: said [bold]{truth}[/bold] -> {shown}")
        out.append({"file": path, "truth": truth, "top": [{"label": t["label"], "score": t["score"]} for t in top]})
    return {"model": str(source), "backend": classifier.backend.name, "predictions": out}


# What each step needs from earlier ones: it is skipped when one of them failed outright.
NEEDS: dict[str, tuple[str, ...]] = {
    "train": ("data",),
    "evaluate": ("train",),
    "export": ("train",),
    "parity": ("export",),
    "bench": ("export",),
    "predict": ("train",),
}

STEPS: list[tuple[str, Step]] = [
    ("data", generate_data),
    ("train", train_model),
    ("evaluate", evaluate_model),
    ("export", export_artifacts),
    ("parity", parity_on_unseen_voices),
    ("bench", benchmark),
    ("predict", predict_examples),
]


def run_quickstart(
    out: str | Path,
    epochs: int | None = None,
    overrides: list[str] | None = None,
    steps: list[tuple[str, Step]] | None = None,
    bench_seconds: float = 2.0,
) -> dict:
    """Run the steps in order; ``out/summary.json`` holds every step's results and timings, and
    ``summary["failures"]`` each step that failed (``ok`` is False then) or was skipped because of one."""
    qs = Quickstart(Path(out), epochs, list(overrides or []), bench_seconds=bench_seconds)
    qs.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    failures: dict[str, dict] = {}
    summary: dict = {"steps": qs.results, "failures": failures, "ok": True}
    for name, step in steps or STEPS:
        console.rule(f"[bold]{name}")
        blocked = [need for need in NEEDS.get(name, ()) if need in failures and failures[need]["blocking"]]
        began = time.perf_counter()
        if blocked:
            failures[name] = {"error": f"skipped: {', '.join(blocked)} failed", "blocking": True}
            console.print(f"[yellow]skipped: {', '.join(blocked)} failed[/yellow]")
        else:
            try:
                qs.results[name] = step(qs)
            except StepFailed as e:
                qs.results[name] = e.results
                failures[name] = {"error": str(e), "reproduce": e.reproduce, "blocking": False}
            except Exception as e:  # a failed step is reported; the steps that do not need it still run
                if _debug():
                    raise
                failures[name] = {"error": f"{type(e).__name__}: {' '.join(str(e).split())}", "blocking": True}
            if name in failures:
                console.print(f"[bold red]{name} failed:[/bold red] {failures[name]['error']}", highlight=False)
            qs.results.setdefault(name, {})["seconds"] = round(time.perf_counter() - began, 1)
        summary["ok"] = not failures
        summary["wall_seconds"] = round(time.perf_counter() - start, 1)
        if "evaluate" in qs.results and "accuracy" in qs.results["evaluate"]:
            summary["accuracy"] = qs.results["evaluate"]["accuracy"]
            summary["chance"] = qs.results["evaluate"]["chance"]
        write_json(qs.out / "summary.json", summary)
    if failures:
        _print_failures(failures)
    return summary


def _debug() -> bool:
    from ast_deploy.cli.app import state

    return bool(state.get("debug"))


def _print_failures(failures: dict[str, dict]) -> None:
    from rich.table import Table

    table = Table(title="quickstart: what failed", title_justify="left")
    for column in ("step", "what happened", "to reproduce"):
        table.add_column(column, overflow="fold")
    for name, failure in failures.items():
        table.add_row(name, failure["error"], failure.get("reproduce") or "")
    console.print(table)
