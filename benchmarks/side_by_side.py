"""The same AST weights through transformers and through ast-deploy, in one process and one run.

    python benchmarks/side_by_side.py                       # AST-base, 1024 frames, random init, CPU
    python benchmarks/side_by_side.py --size tiny --frames 128 --seconds 2   # a quick check
    python benchmarks/side_by_side.py --checkpoint audioset_10_10_0.4593.pth --device cuda

Measured, with the harness of ``ast-deploy bench`` (same inputs, warm-up and timing for all):

* transformers' ``ASTForAudioClassification`` in float32 eager mode and under
  ``torch.autocast(device, bfloat16)``: the usual way to run AST and the usual way to speed it up
  (the speed-up columns are against these two);
* on a CPU, the peers a user would pick instead of this toolkit (``ast_deploy.bench.peers``), on the same
  transformers model: OpenVINO with its defaults (``ov.convert_model``; fp32 and bf16 precision
  hints; int8 by NNCF's ``quantize`` with the transformer preset and default settings, calibrated on
  8 random inputs) and ONNX Runtime's ``quantize_dynamic`` of its ``torch.onnx.export``; converted
  once (kept in ``--work/peers``);
* this toolkit's backends on the same weights (PyTorch variants, TorchScript, ONNX Runtime fp32 and
  INT8, and on a GPU FP16 ONNX and TensorRT), exported here unless ``--artifacts`` gives them;
* model only (fbank features in: the apples-to-apples comparison) and end to end (waveform in;
  transformers with its own ``ASTFeatureExtractor``, ours with the front end in the graph).

Each figure is shown as a speed-up over both transformers baselines and as a fraction of its
roofline floor: FLOPs per clip (``ASTConfig.flops_per_clip``) over the machine's measured peak
matrix-multiply rates (fp32, bf16 and, through ``torch._int_mm``, int8), each part of the model's
GEMM work at the rate of the precision the row runs it in (``ast_deploy.bench.roofline``: int8 rows
have int8 linear layers and floating-point attention). Quality of every backend against the float32
reference on real audio (the fixture sentence and any ``--audio`` files): top-1 agreement and cosine
of the logits. The report checks the targets itself (``ast_deploy.bench.targets``) and says where a
runtime's int8 loses to its bf16 at some batch size. This script is the orchestration: weights,
exports, which backends and peers, measuring one at a time, the reports.

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

import torch

from ast_deploy import ASTConfig, ASTModel, FrontEndConfig, load_checkpoint, save_checkpoint
from ast_deploy.artifacts import ArtifactDir
from ast_deploy.bench import environment, report
from ast_deploy.bench.harness import Timing, batch_out_of_range, measure, new_row, one_line
from ast_deploy.bench.peers import BASELINES, PEER_BY_NAME, PEERS, Peers, choose_peers, peer_notes
from ast_deploy.bench.plan import settings_block
from ast_deploy.bench.roofline import describe as describe_roofline
from ast_deploy.bench.roofline import measure_roofline
from ast_deploy.bench.runner import document
from ast_deploy.bench.schema import validate
from ast_deploy.bench.sources import ArtifactSource, CheckpointSource
from ast_deploy.bench.targets import check_targets, derived_notes, quality, quality_inputs
from ast_deploy.checkpoints import LoadOptions
from ast_deploy.errors import InputError
from ast_deploy.frontend import KaldiFbank
from ast_deploy.labels import generic_labels
from ast_deploy.parity import run_backend
from ast_deploy.runtime import registry
from ast_deploy.runtime.base import Backend, InputKind, InputSpec

REPO = Path(__file__).resolve().parents[1]
SPEECH = REPO / "tests" / "fixtures" / "speech_16k.wav"  # the spoken sentence of the reference fixtures
# What a user of each device would try (names from ast_deploy.runtime.registry; checked there at start).
DEFAULT_BACKENDS = {
    "cpu": [
        "pytorch", "pytorch-autocast-bf16", "pytorch-bf16", "torch-compile", "torch-compile-bf16", "pytorch-int8",
        "torchscript", "onnx", "onnx-int8", "aoti", "aoti-int8",
        "openvino", "openvino-bf16", "openvino-int8", "openvino-int8-bf16",
    ],
    "cuda": [
        "pytorch", "pytorch-autocast-bf16", "pytorch-autocast-fp16", "pytorch-fp16", "torch-compile-bf16",
        "torchscript", "onnx", "onnx-fp16", "tensorrt", "onnx-trt",
    ],
}  # fmt: skip


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
    # The artifacts these backends run (onnx-trt runs the onnx-fp16 artifact), once each.
    wanted = list(dict.fromkeys(e.artifact_name for e in map(registry.get, names) if e.runs_artifact))
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


@dataclass
class Ours:
    """This toolkit's side: PyTorch variants from the checkpoint, exported graphs by input kind."""

    checkpoint: CheckpointSource
    artifacts: dict[InputKind, ArtifactDir]

    @property
    def config(self) -> ASTConfig:
        return self.checkpoint.config

    def offers(self, name: str, kind: InputKind) -> bool:
        if registry.get(name).runs_artifact:
            return kind in self.artifacts and name in self.artifacts[kind].backend_names()
        return True

    def clip_samples(self, kind: InputKind) -> int:
        """Samples per waveform row: what an exported waveform graph takes, else the model's window."""
        if kind in self.artifacts:
            return ArtifactSource(self.artifacts[kind].path).clip_samples(kind)
        return self.checkpoint.clip_samples(kind)

    def open(self, name: str, kind: InputKind, device: torch.device, threads: int | None) -> Backend:
        if registry.get(name).runs_artifact:
            return self.artifacts[kind].open(name, device, threads)
        return self.checkpoint.open(name, kind, str(device), threads)


def quality_files(args) -> list[Path]:
    """The audio of the quality check: the fixture sentence (where the repository has it) and any --audio."""
    return [*([SPEECH] if SPEECH.is_file() else []), *(args.audio or [])]


def measure_backend(args, name: str, kind: InputKind, ours: Ours, theirs: Peers, progress, check) -> list[dict]:
    """Load one backend, time it at each batch size, attach ``check(backend)`` (quality), release it."""
    device = torch.device(args.device)
    clip_samples = ours.clip_samples(kind)
    rows = [new_row(name, kind, batch, args.device, "none") for batch in args.batch_sizes]
    progress(f"{name} · {kind}: loading")
    start = time.perf_counter()
    try:
        if name in PEER_BY_NAME:
            c = ours.config
            spec = InputSpec(kind, ours.checkpoint.frontend.sample_rate, c.target_length, c.num_mel_bins)
            backend = theirs.open(name, kind, spec, device)
        else:
            backend = ours.open(name, kind, device, args.threads)
    except Exception as e:
        for row in rows:
            row.update(status="failed", reason=f"loading failed: {one_line(e)}")
        return rows
    # A peer's load: transformers' from_pretrained plus its own compile (not the one-off conversion
    # and quantisation, as an export is not part of our backends' load either).
    load_s = time.perf_counter() - start + (theirs.load_s if name in PEER_BY_NAME else 0.0)
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


def measure_all(args, peers: list[str], names: list[str], ours: Ours, theirs: Peers, log, progress) -> list[dict]:
    """Every (input kind, backend, batch size), in this process, one backend loaded at a time."""
    frontend = KaldiFbank(ours.checkpoint.frontend)
    rows = []
    for kind in args.inputs:
        inputs = quality_inputs(quality_files(args), ours.clip_samples(kind), frontend.config.sample_rate)
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

        for name in [*peers, *names]:
            if name not in PEER_BY_NAME and not ours.offers(name, kind):
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
    m.add_argument(
        "--peers",
        help=f"comma-separated peers besides the transformers baselines, or 'none' (default: those available of "
        f"{', '.join(p.name for p in PEERS if p.name not in BASELINES)})",
    )
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
    known = set(registry.names())
    requested = (
        [b.strip() for b in args.backends.split(",") if b.strip()] if args.backends else DEFAULT_BACKENDS[device.type]
    )
    unknown = [n for n in requested if n not in known]
    if unknown:
        raise InputError(f"--backends: unknown {unknown[0]!r}; known: {', '.join(sorted(known))}")
    reasons = {n: registry.unavailable(n, device) for n in requested}
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
    doc["notes"] = derived_notes(doc)
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
        peers, skipped_peers = choose_peers(args.peers, torch.device(args.device))
        skipped = {**skipped_peers, **skipped}
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
        theirs = Peers(hf_model, extractor, time.perf_counter() - start, work, args.threads, log)
        status.update("measuring the peak matrix-multiply rate ...")
        roofline = measure_roofline(ours.config, args.device)
        log(f"roofline: {describe_roofline(roofline)}")
        rows = measure_all(args, peers, names, ours, theirs, log, status.update)

    attention = getattr(hf_model.config, "_attn_implementation", None)
    extractor_kind = "torchaudio" if transformers.utils.is_speech_available() else "NumPy"
    notes = [
        f"Weights: {weights}.",
        f"transformers {transformers.__version__}: ASTForAudioClassification (attention: {attention}); end to end "
        f"uses its ASTFeatureExtractor ({extractor_kind} filter bank, on the host, clip by clip). Quality: each "
        "backend's logits against ast-deploy's PyTorch float32 on the same input, on windows of real audio.",
        *peer_notes(peers, theirs),
    ]
    source = {
        **ours.checkpoint.describe(),
        "path": str(
            args.checkpoint or (args.artifacts or [None])[0] or f"random-init AST-{args.size}, seed {args.seed}"
        ),
    }
    settings = settings_block(
        [*peers, *names], args.inputs, args.batch_sizes, args.device, args.threads, args.timing, "none", BASELINES
    )
    doc = document(settings, source, rows, roofline, skipped, kind="ast-deploy-side-by-side", env=env)
    doc["notes"] = notes
    doc["comparison"] = {
        "transformers": transformers.__version__,
        "attention": attention,
        "feature_extractor": extractor_kind,
    }
    doc["targets"] = check_targets(doc)
    doc["notes"] = derived_notes(doc)
    validate(doc)
    if console.width >= 160:
        for table in report.console_tables(doc):
            console.print(table)
    for line in [*ratio_lines(doc), *doc["notes"]]:
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
