"""The same AST weights through transformers and through ast-deploy, in one process and one run.

    python benchmarks/side_by_side.py                       # AST-base, 1024 frames, random init, CPU
    python benchmarks/side_by_side.py --size tiny --frames 128 --seconds 2   # a quick check
    python benchmarks/side_by_side.py --checkpoint audioset_10_10_0.4593.pth --device cuda

Measured, with the harness of ``ast-deploy bench`` (same inputs, warm-up and timing for all):

* transformers' ``ASTForAudioClassification`` in float32 eager mode and under
  ``torch.autocast(device, bfloat16)``: the usual way to run AST and the usual way to speed it up;
* this toolkit's backends on the same weights (PyTorch variants, TorchScript, ONNX Runtime fp32 and
  INT8, and on a GPU FP16 ONNX and TensorRT), exported here unless ``--artifacts`` gives them;
* model only (fbank features in: the apples-to-apples comparison) and end to end (waveform in;
  transformers with its own ``ASTFeatureExtractor``, ours with the front end in the graph).

Each figure is shown as a speed-up over both transformers baselines and as a fraction of the
roofline floor: FLOPs per clip (``ASTConfig.flops_per_clip``) over the machine's measured peak
matrix-multiply rate. Quality of every backend against the float32 reference on real audio (the
fixture sentence and any ``--audio`` files): top-1 agreement and cosine of the logits.

Writes ``side_by_side.json`` (the ``ast-deploy bench`` schema, v1), ``.md`` and ``.png`` into
``--out`` (default ``benchmarks/results/<machine>``). Without ``--checkpoint`` the weights are
random (nothing is downloaded): speed does not depend on the weights' values, and the quality
columns then show numerical agreement only, not accuracy.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ast_deploy import ASTConfig, ASTModel, FrontEndConfig, load_audio, load_checkpoint, save_checkpoint
from ast_deploy.artifacts import ArtifactDir
from ast_deploy.bench import environment, report
from ast_deploy.bench.harness import Timing, batch_out_of_range, document, measure, new_row, one_line
from ast_deploy.bench.plan import settings_block
from ast_deploy.bench.roofline import describe as describe_roofline
from ast_deploy.bench.roofline import measure_roofline
from ast_deploy.bench.schema import validate
from ast_deploy.bench.sources import ArtifactSource, CheckpointSource, unavailable
from ast_deploy.checkpoints import LoadOptions
from ast_deploy.errors import InputError
from ast_deploy.export import ARTIFACT_BACKENDS
from ast_deploy.frontend import KaldiFbank
from ast_deploy.labels import generic_labels
from ast_deploy.parity import ParityInputs, Thresholds, compare, run_backend
from ast_deploy.pipeline import cut_windows
from ast_deploy.runtime.base import Backend, InputKind, InputSpec

REPO = Path(__file__).resolve().parents[1]
SPEECH = REPO.parent / "shared" / "fixtures" / "speech_16k.wav"
BASELINES = ["transformers", "transformers-autocast-bf16"]
DECISIVE_MARGIN = 0.05  # logits; INT8's logit error here is ~0.05, bf16's ~0.02
DEFAULT_BACKENDS = {
    "cpu": [
        "pytorch", "pytorch-autocast-bf16", "pytorch-bf16", "torch-compile", "torch-compile-bf16", "pytorch-int8",
        "torchscript", "onnx", "onnx-int8", "aoti", "aoti-int8",
    ],
    "cuda": [
        "pytorch", "pytorch-autocast-bf16", "pytorch-autocast-fp16", "pytorch-fp16", "torch-compile-bf16",
        "torchscript", "onnx", "onnx-fp16", "tensorrt", "onnx-trt",
    ],
}  # fmt: skip


class TransformersBackend(Backend):
    """``ASTForAudioClassification`` behind the harness's interface.

    Waveform input goes through transformers' own ``ASTFeatureExtractor`` (NumPy, on the host,
    one clip at a time: how the library is used); fbank input goes straight to the model.
    """

    def __init__(self, model, spec: InputSpec, device: torch.device, autocast: str | None = None, extractor=None):
        super().__init__(spec, device)
        self.model = model
        self.extractor = extractor
        self.autocast = {"bf16": torch.bfloat16, "fp16": torch.float16}[autocast] if autocast else None
        self.name = f"transformers-autocast-{autocast}" if autocast else "transformers"
        self.precision = autocast or "fp32"

    @torch.inference_mode()
    def _run(self, inputs: torch.Tensor, num_samples: torch.Tensor | None) -> torch.Tensor:
        if self.extractor is not None:
            clips = [row[:n] for row, n in zip(inputs.cpu().numpy(), num_samples.cpu().tolist())]
            features = self.extractor(clips, sampling_rate=self.spec.sample_rate, return_tensors="pt")["input_values"]
        else:
            features = inputs
        features = features.to(self.device, non_blocking=True)
        autocast = torch.autocast(self.device.type, dtype=self.autocast) if self.autocast else contextlib.nullcontext()
        with autocast:
            return self.model(input_values=features).logits.float()


# --- weights and artifacts -----------------------------------------------------------------------


def weights_dir(args, work: Path) -> tuple[Path, str]:
    """An ast-deploy (= Hugging Face) directory with the weights to compare, and what they are.

    The reference weights of ``--artifacts``, a ``--checkpoint`` converted, or a random-init model.
    """
    out = work / "checkpoint"
    if args.artifacts:
        return ArtifactDir(args.artifacts[0]).path / "reference", f"the reference weights of {args.artifacts[0]}"
    if args.checkpoint:
        if not out.exists():
            options = LoadOptions(input_tdim=args.input_tdim, fstride=args.fstride, tstride=args.tstride)
            ckpt = load_checkpoint(args.checkpoint, options)
            save_checkpoint(out, ckpt.config, ckpt.state_dict, ckpt.labels, ckpt.frontend)
        return out, f"the weights of {args.checkpoint}"
    config = ASTConfig.from_size(args.size, target_length=args.frames, depth=args.depth, num_labels=args.labels)
    if not out.exists():
        torch.manual_seed(args.seed)
        frontend = FrontEndConfig(target_length=args.frames)
        save_checkpoint(out, config, ASTModel(config).state_dict(), generic_labels(args.labels), frontend)
    elif load_checkpoint(out).config != config:
        raise InputError(
            f"--work {work} holds another model than --size {args.size} --frames {args.frames}; use another --work"
        )
    return out, (
        f"AST-{args.size} at {args.frames} frames with RANDOM weights (seed {args.seed}; no pretrained weights are "
        "downloaded): speed does not depend on the values; the quality columns show numerical agreement, not accuracy"
    )


def artifact_dirs(args, checkpoint: Path, work: Path, names: list[str], log) -> dict[InputKind, ArtifactDir]:
    """One artifact directory per input kind: given with --artifacts, reused from --work, or exported now."""
    from ast_deploy.export import FORMATS, export

    dirs: dict[InputKind, ArtifactDir] = {}
    for path in args.artifacts or []:
        a = ArtifactDir(path)
        dirs[a.spec.kind] = a
    wanted = [n for n in dict.fromkeys("onnx-fp16" if n == "onnx-trt" else n for n in names) if n in ARTIFACT_BACKENDS]
    formats = [n for n in wanted if not FORMATS[n].unavailable()]
    for kind in args.inputs:
        out = work / f"artifacts-{kind}"
        if kind in dirs or not formats:
            continue
        if not _covers(out, formats, max(args.batch_sizes)):
            log(f"exporting {', '.join(formats)} for {kind} input to {out} ...")
            start = time.perf_counter()
            batch = f"1:{min(args.batch_sizes)}:{max(32, *args.batch_sizes)}"  # reusable by 'ast-deploy bench'
            export(
                checkpoint, out, to=",".join(formats), input_kind=kind, batch=batch, verify=False, force=True,
                log=lambda message: None,
            )  # fmt: skip
            log(f"  done in {time.perf_counter() - start:.0f} s")
        dirs[kind] = ArtifactDir(out)
    return dirs


def _covers(directory: Path, formats: list[str], max_batch: int) -> bool:
    """Whether an earlier export in ``directory`` (``--work``) has these formats and batch sizes."""
    if not (directory / "manifest.json").is_file():
        return False
    a = ArtifactDir(directory)
    return set(formats) <= set(a.artifact_names()) and (a.spec.max_batch or max_batch) >= max_batch


# --- measuring -----------------------------------------------------------------------------------


def quality_inputs(args, window: int, sample_rate: int):
    """Windows of real audio (half-window hop) for the quality check."""
    files = [SPEECH, *(args.audio or [])] if SPEECH.is_file() else list(args.audio or [])
    if not files:
        return None
    windows, lengths = [], []
    for path in files:
        w, n, _ = cut_windows(load_audio(path, sample_rate), window, max(1, window // 2))
        windows.append(w)
        lengths.append(n)
    names = ", ".join(Path(f).name for f in files)
    return ParityInputs(
        np.concatenate(windows), np.concatenate(lengths), f"{sum(map(len, windows))} windows of {names}"
    )


def quality(backend: Backend, inputs, frontend, reference: torch.Tensor, activation: str) -> dict:
    """Top-1/top-5 agreement and cosine of ``backend``'s logits against the float32 reference."""
    batch = max(backend.spec.min_batch, min(len(inputs.windows), backend.spec.max_batch or 8, 8))
    logits = run_backend(backend, inputs, frontend, batch)
    # Top-1 also on decisive clips: random weights give near-ties among hundreds of logits, which any
    # change of arithmetic may flip; a clip the reference decides by DECISIVE_MARGIN logits must agree.
    thresholds = Thresholds(decisive_margin=DECISIVE_MARGIN)
    result = compare(backend.name, backend.precision, logits, reference, activation, thresholds, None)
    return {
        "reference": "pytorch float32 (same input)",
        "clips": len(inputs.windows),
        "inputs": inputs.description,
        "top1_agreement": result.top1_agreement,
        "top5_agreement": result.top5_agreement,
        "top1_decisive": result.top1_decisive,
        "decisive_clips": result.decisive_clips,
        "decisive_margin": DECISIVE_MARGIN,
        "min_cosine": result.min_cosine,
        "mean_cosine": result.mean_cosine,
        "max_abs_logit": result.max_abs_logit,
    }


@dataclass
class Theirs:
    """transformers' side: the model and feature extractor loaded from the same directory."""

    model: object
    extractor: object
    load_s: float

    def open(self, name: str, kind: InputKind, spec: InputSpec, device: torch.device) -> TransformersBackend:
        autocast = name.removeprefix("transformers-autocast-") if name != "transformers" else None
        extractor = self.extractor if kind == "waveform" else None
        return TransformersBackend(self.model, spec, device, autocast, extractor)


@dataclass
class Ours:
    """This toolkit's side: PyTorch variants from the checkpoint, exported graphs by input kind."""

    checkpoint: CheckpointSource
    artifacts: dict[InputKind, ArtifactDir]

    @property
    def config(self) -> ASTConfig:
        return self.checkpoint.config

    def offers(self, name: str, kind: InputKind) -> bool:
        if name in ARTIFACT_BACKENDS:
            return kind in self.artifacts and name in self.artifacts[kind].backend_names()
        return True

    def clip_samples(self, kind: InputKind) -> int:
        """Samples per waveform row: what an exported waveform graph takes, else the model's window."""
        if kind in self.artifacts:
            return ArtifactSource(self.artifacts[kind].path).clip_samples(kind)
        return self.checkpoint.clip_samples(kind)

    def open(self, name: str, kind: InputKind, device: torch.device, threads: int | None) -> Backend:
        if name in ARTIFACT_BACKENDS:
            return self.artifacts[kind].open(name, device, threads)
        return self.checkpoint.open(name, kind, str(device), threads)


def measure_backend(args, name: str, kind: InputKind, ours: Ours, theirs: Theirs, progress, check) -> list[dict]:
    """Load one backend, time it at each batch size, attach ``check(backend)`` (quality), release it."""
    device = torch.device(args.device)
    clip_samples = ours.clip_samples(kind)
    rows = [new_row(name, kind, batch, args.device, "none") for batch in args.batch_sizes]
    progress(f"{name} · {kind}: loading")
    start = time.perf_counter()
    try:
        if name in BASELINES:
            c = ours.config
            spec = InputSpec(kind, ours.checkpoint.frontend.sample_rate, c.target_length, c.num_mel_bins)
            backend = theirs.open(name, kind, spec, device)
        else:
            backend = ours.open(name, kind, device, args.threads)
    except Exception as e:
        for row in rows:
            row.update(status="failed", reason=f"loading failed: {one_line(e)}")
        return rows
    load_s = time.perf_counter() - start + (theirs.load_s if name in BASELINES else 0.0)
    try:
        for row in rows:
            row.update(load_s=load_s, threads={"torch": torch.get_num_threads(), "onnxruntime": args.threads})
            skip = batch_out_of_range(backend.spec, row["batch"])
            if skip:
                row.update(status="skipped", reason=skip, precision=backend.precision)
                continue
            label = f"{name} · {kind} · batch {row['batch']}"
            try:
                row.update(
                    measure(
                        backend, row["batch"], args.timing, clip_samples,
                        emit=lambda event, label=label: progress(f"{label}: {event['phase']}"),
                        graph_capturable=(kind == "fbank") if name in BASELINES else None,  # the extractor is NumPy
                        run_device=device,
                    )
                )  # fmt: skip
            except Exception as e:
                row.update(status="failed", reason=one_line(e), precision=backend.precision)
        if any(row["status"] == "ok" for row in rows):
            progress(f"{name} · {kind}: quality check")
            q = check(backend)
            for row in rows:
                row["quality"] = q
    finally:
        backend.close()
        del backend
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return rows


def measure_all(args, names: list[str], ours: Ours, theirs: Theirs, log, progress) -> list[dict]:
    """Every (input kind, backend, batch size), in this process, one backend loaded at a time."""
    frontend = KaldiFbank(ours.checkpoint.frontend)
    rows = []
    for kind in args.inputs:
        inputs = quality_inputs(args, ours.clip_samples(kind), frontend.config.sample_rate)
        reference = None
        if inputs is not None:  # our float32 reference on the same input kind
            progress(f"{kind}: float32 reference logits for the quality check")
            ref_backend = ours.checkpoint.open("pytorch", kind, args.device, args.threads)
            reference = run_backend(ref_backend, inputs, frontend, min(len(inputs.windows), 8))
            ref_backend.close()

        def check(backend: Backend, inputs=inputs, reference=reference) -> dict | None:
            if reference is None:
                return None
            return quality(backend, inputs, frontend, reference, ours.config.activation)

        for name in [*BASELINES, *names]:
            if not ours.offers(name, kind):
                continue
            backend_rows = measure_backend(args, name, kind, ours, theirs, progress, check)
            for r in backend_rows:
                done = (
                    f"p50 {r['latency_ms']['p50']:.2f} ms" if r["status"] == "ok" else f"{r['status']}: {r['reason']}"
                )
                log(f"{name} ({kind}, batch {r['batch']}): {done}")
            rows += backend_rows
    return rows


# --- main ----------------------------------------------------------------------------------------


def ratio_lines(doc: dict) -> list[str]:
    """One line per measured row: speed-ups over both baselines, fraction of the floor, quality."""
    lines = []
    for r in doc["results"]:
        where = f"{r['input']:>8} batch {r['batch']:<3} {r['backend']:<26}"
        if r["status"] != "ok":
            lines.append(f"{where} {r['status']}: {r['reason']}")
            continue
        ratios = ", ".join(f"{v:.2f}x {k}" if v is not None else f"- {k}" for k, v in r["speedup"].items())
        q = r["quality"]
        decisive = (
            f" ({q['top1_decisive']:.0%} of {q['decisive_clips']} decisive)"
            if q and q.get("top1_decisive") is not None
            else ""
        )
        agreement = f"; top-1 {q['top1_agreement']:.0%}{decisive}, min cos {q['min_cosine']:.5f}" if q else ""
        lines.append(
            f"{where} {r['latency_ms']['p50']:9.2f} ms p50: {ratios}; {r['roofline_fraction']:.1%} of the floor{agreement}"
        )
    return lines


# Issue 5's targets for AST-base at 1024 frames. CPU: the best backend at batch 1 against both
# transformers baselines, at float32-like quality. GPU: half of the measured matmul peak.
CPU_SPEEDUP_TARGETS = {"transformers": 3.0, "transformers-autocast-bf16": 1.3}
MIN_COSINE, MIN_TOP1 = 0.999, 0.99
GPU_FLOOR_FRACTION = 0.5


def _target(name: str, row: dict, value: float | None, threshold: float) -> dict:
    met = value is not None and value >= threshold
    return {"target": name, "input": row["input"], "backend": row["backend"], "batch": row["batch"],
            "value": value, "threshold": threshold, "met": met}  # fmt: skip


def check_targets(doc: dict) -> list[dict]:
    """Each target with the figure measured for it (see ``CPU_SPEEDUP_TARGETS``).

    The CPU candidate is the fastest of this toolkit's batch-1 backends whose quality passes
    (worst-clip cosine, and top-1 agreement on the decisive clips where the run has them: with
    random weights most clips are near-ties that any rounding may flip).
    """
    ok = [r for r in doc["results"] if r["status"] == "ok" and r["backend"] not in BASELINES]
    out: list[dict] = []
    if doc["settings"]["device"].startswith("cuda"):
        low = [r for r in ok if r["precision"] in ("fp16", "bf16") and r["roofline_fraction"] is not None]
        if low:
            best = max(low, key=lambda r: r["roofline_fraction"])
            out.append(_target("fraction of the matmul peak", best, best["roofline_fraction"], GPU_FLOOR_FRACTION))
        return out

    def top1(r: dict) -> float | None:
        q = r["quality"] or {}
        return q.get("top1_decisive") if q.get("top1_decisive") is not None else q.get("top1_agreement")

    def passes(r: dict) -> bool:
        q = r["quality"]
        return q is not None and q["min_cosine"] >= MIN_COSINE and (top1(r) or 0) >= MIN_TOP1

    for kind in ("fbank", "waveform"):
        rows = [r for r in ok if r["input"] == kind and r["batch"] == 1]
        if not rows:
            continue
        best = max([r for r in rows if passes(r)] or rows, key=lambda r: r["throughput_clips_per_s"])
        for baseline, threshold in CPU_SPEEDUP_TARGETS.items():
            out.append(_target(f"speed-up over {baseline}", best, (best["speedup"] or {}).get(baseline), threshold))
        q = best["quality"] or {}
        out.append(_target("min cosine", best, q.get("min_cosine"), MIN_COSINE))
        out.append(_target("top-1 agreement", best, top1(best), MIN_TOP1))
    return out


def target_lines(doc: dict) -> list[str]:
    """The targets as sentences for the markdown report and the console."""
    lines = []
    by_place: dict[tuple[str, str], list[dict]] = {}
    for t in doc.get("targets", []):
        by_place.setdefault((t["input"], t["backend"]), []).append(t)
    rows = {(r["input"], r["backend"], r["batch"]): r for r in doc["results"]}
    for (kind, backend), targets in by_place.items():
        row = rows[(kind, backend, targets[0]["batch"])]
        what = "model only" if kind == "fbank" else "end to end"
        parts = []
        for t in targets:
            value, name = t["value"], t["target"]
            if name.startswith("speed-up"):
                shown, bound = ("-" if value is None else f"{value:.2f}×"), f"{t['threshold']}×"
            elif "agreement" in name or "fraction" in name:
                shown, bound = ("-" if value is None else f"{value:.1%}"), f"{t['threshold']:.0%}"
            else:
                shown, bound = ("-" if value is None else f"{value:.5f}"), f"{t['threshold']:g}"
            parts.append(f"{name} {shown} (target ≥ {bound}: {'met' if t['met'] else 'NOT met'})")
        q = row["quality"] or {}
        extra = ""
        if q.get("top1_decisive") is not None:
            extra = (f"; top-1 agreement is on the {q['decisive_clips']} clips whose reference top-1 leads by "
                     f"≥ {q['decisive_margin']} logits (all {q['clips']} clips: {q['top1_agreement']:.0%})")  # fmt: skip
        floor = f"; {row['roofline_fraction']:.0%} of the bf16 matmul floor" if row["roofline_fraction"] else ""
        lines.append(
            f"Targets, {what}, batch {row['batch']}, best backend {backend}: {'; '.join(parts)}{floor}{extra}."
        )
    return lines


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    g = p.add_argument_group("weights")
    g.add_argument(
        "--size", default="base", choices=["tiny", "small", "base"], help="DeiT width of the random-init model"
    )
    g.add_argument("--frames", type=int, default=1024, help="target_length of the random-init model")
    g.add_argument("--depth", type=int, default=12)
    g.add_argument("--labels", type=int, default=527)
    g.add_argument("--checkpoint", type=Path, help="real weights (any format ast-deploy reads) instead of random ones")
    g.add_argument("--input-tdim", type=int)
    g.add_argument("--fstride", type=int)
    g.add_argument("--tstride", type=int)
    g.add_argument("--artifacts", type=Path, action="append", help="existing artifact directory (one per input kind)")
    g.add_argument("--work", type=Path, help="keep checkpoint and exports here and reuse them (default: a temp dir)")
    m = p.add_argument_group("measurement")
    m.add_argument("--device", default="cpu")
    m.add_argument("--threads", type=int)
    m.add_argument("--backends", help="comma-separated ast-deploy backends (the transformers baselines always run)")
    m.add_argument("--input", default="both", choices=["waveform", "fbank", "both"])
    m.add_argument("--batch-sizes", default="1")
    m.add_argument("--warmup", type=int, default=3)
    m.add_argument("--iters", type=int)
    m.add_argument("--seconds", type=float)
    m.add_argument("--cuda-graphs", action="store_true")
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--audio", type=Path, action="append", help="more audio for the quality check (repeatable)")
    p.add_argument("--out", type=Path, help="output directory (default benchmarks/results/<machine>)")
    p.add_argument("--render", type=Path, metavar="JSON",
                   help="measure nothing: check the targets of an earlier side_by_side.json and rewrite it, "
                   "its .md and .png")  # fmt: skip
    args = p.parse_args(argv)
    if args.render:
        return args
    from ast_deploy.bench.plan import parse_batch_sizes
    from ast_deploy.runtime.devices import check_device

    check_device(args.device)
    args.batch_sizes = parse_batch_sizes(args.batch_sizes)
    if args.iters is None and args.seconds is None:
        args.seconds = 10.0
    args.timing = Timing(
        warmup=args.warmup, iters=args.iters, seconds=args.seconds, cuda_graphs=args.cuda_graphs, seed=args.seed
    ).check()
    if args.threads is not None and args.threads < 1:
        raise InputError("--threads must be at least 1")
    args.inputs = ["fbank", "waveform"] if args.input == "both" else [args.input]
    return args


def choose_backends(args) -> tuple[list[str], dict[str, str]]:
    """This toolkit's backends to run: --backends (each must be available) or the device's defaults."""
    device = torch.device(args.device)
    known = set(DEFAULT_BACKENDS["cpu"] + DEFAULT_BACKENDS["cuda"]) | set(ARTIFACT_BACKENDS)
    from ast_deploy.runtime.pytorch import PYTORCH_BACKENDS

    known |= set(PYTORCH_BACKENDS)
    requested = (
        [b.strip() for b in args.backends.split(",") if b.strip()] if args.backends else DEFAULT_BACKENDS[device.type]
    )
    unknown = [n for n in requested if n not in known]
    if unknown:
        raise InputError(f"--backends: unknown {unknown[0]!r}; known: {', '.join(sorted(known))}")
    reasons = {n: unavailable(n, device) for n in requested}
    if args.backends:
        bad = {n: r for n, r in reasons.items() if r}
        if bad:
            name, reason = next(iter(bad.items()))
            raise InputError(f"backend {name!r} is not available here: {reason}")
    return [n for n in requested if not reasons[n]], {n: r for n, r in reasons.items() if r}


def write_reports(doc: dict, out: Path) -> list[Path]:
    """``side_by_side.{json,md,png}`` in ``out``."""
    device = doc["settings"]["device"]
    machine = environment.machine_name(doc["environment"], device)
    title = f"AST side by side: transformers vs ast-deploy ({machine}, {device})"
    return report.write(doc, *(out / f"side_by_side.{ext}" for ext in ("json", "md", "png")), title=title)


def render(path: Path) -> list[Path]:
    """Targets and reports of an earlier run, re-derived from its JSON (no measurement)."""
    from ast_deploy.fileio import read_json_object

    doc = read_json_object(path, "side-by-side results")
    if doc.get("kind") != "ast-deploy-side-by-side":
        raise InputError(f"{path}: not a side_by_side.json (kind {doc.get('kind')!r})")
    doc["targets"] = check_targets(doc)
    doc["notes"] = [n for n in doc.get("notes", []) if not n.startswith("Targets, ")] + target_lines(doc)
    validate(doc)
    return write_reports(doc, path.parent)


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console

    console, err = Console(), Console(stderr=True)
    args = parse_args(argv)
    if args.render:
        for path in render(args.render):
            err.print(f"wrote {path}", markup=False, highlight=False)
        return 0
    import transformers

    transformers.utils.logging.disable_progress_bar()
    warnings.filterwarnings("ignore", message="At least one mel filter has all zero values")  # 128 bins at 16 kHz
    if args.threads:
        torch.set_num_threads(args.threads)
    env = environment.collect(["benchmarks/side_by_side.py", *(sys.argv[1:] if argv is None else argv)])
    machine = environment.machine_name(env, args.device)
    out = args.out or REPO / "benchmarks" / "results" / machine

    def log(message: str) -> None:
        err.print(message, markup=False, highlight=False)

    temporary = contextlib.nullcontext(args.work) if args.work else tempfile.TemporaryDirectory(prefix="ast-sbs-")
    with temporary as work, err.status("starting ...") as status:
        work = Path(work)
        work.mkdir(parents=True, exist_ok=True)
        checkpoint, weights = weights_dir(args, work)
        log(f"weights: {weights}")
        names, skipped = choose_backends(args)
        for name, reason in skipped.items():
            log(f"skipping {name}: {reason}")
        ours = Ours(CheckpointSource(checkpoint), artifact_dirs(args, checkpoint, work, names, log))
        missing = [n for n in names if not any(ours.offers(n, k) for k in args.inputs)]
        for name in missing:
            log(f"skipping {name}: not exported")
        names = [n for n in names if n not in missing]

        status.update("loading transformers' ASTForAudioClassification ...")
        start = time.perf_counter()
        hf_model = transformers.ASTForAudioClassification.from_pretrained(checkpoint).eval().to(args.device)
        extractor = transformers.ASTFeatureExtractor.from_pretrained(checkpoint)
        theirs = Theirs(hf_model, extractor, time.perf_counter() - start)
        status.update("measuring the peak matrix-multiply rate ...")
        roofline = measure_roofline(ours.config, args.device)
        log(f"roofline: {describe_roofline(roofline)}")
        rows = measure_all(args, names, ours, theirs, log, status.update)

    attention = getattr(hf_model.config, "_attn_implementation", None)
    extractor_kind = "torchaudio" if transformers.utils.is_speech_available() else "NumPy"
    notes = [
        f"Weights: {weights}.",
        f"transformers {transformers.__version__}: ASTForAudioClassification (attention: {attention}); end to end "
        f"uses its ASTFeatureExtractor ({extractor_kind} filter bank, on the host, clip by clip). Quality: each "
        "backend's logits against ast-deploy's PyTorch float32 on the same input, on windows of real audio.",
    ]
    source = {
        **ours.checkpoint.describe(),
        "path": str(
            args.checkpoint or (args.artifacts or [None])[0] or f"random-init AST-{args.size}, seed {args.seed}"
        ),
    }
    settings = settings_block(
        [*BASELINES, *names], args.inputs, args.batch_sizes, args.device, args.threads, args.timing, "none", BASELINES
    )
    doc = document(settings, source, rows, roofline, skipped, kind="ast-deploy-side-by-side", env=env)
    doc["notes"] = notes
    doc["comparison"] = {
        "transformers": transformers.__version__,
        "attention": attention,
        "feature_extractor": extractor_kind,
    }
    doc["targets"] = check_targets(doc)
    doc["notes"] += target_lines(doc)
    validate(doc)
    if console.width >= 160:
        for table in report.console_tables(doc):
            console.print(table)
    for line in [*ratio_lines(doc), *notes]:
        console.print(line, markup=False, highlight=False)
    for path in write_reports(doc, out):
        err.print(f"wrote {path}", markup=False, highlight=False)
    return 1 if any(r["status"] == "failed" for r in rows) else 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        sys.exit(main())
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
