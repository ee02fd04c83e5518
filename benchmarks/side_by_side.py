"""The same AST weights through transformers and through ast-deploy, in one process and one run.

    python benchmarks/side_by_side.py                       # AST-base, 1024 frames, random init, CPU
    python benchmarks/side_by_side.py --size tiny --frames 128 --seconds 2   # a quick check
    python benchmarks/side_by_side.py --checkpoint audioset_10_10_0.4593.pth --device cuda

Measured, with the harness of ``ast-deploy bench`` (same inputs, warm-up and timing for all):

* transformers' ``ASTForAudioClassification`` in float32 eager mode and under
  ``torch.autocast(device, bfloat16)``: the usual way to run AST and the usual way to speed it up
  (the speed-up columns are against these two);
* on a CPU, the peers a user would pick instead of this toolkit (``PEERS``), on the same
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
of the logits. The report checks the targets itself (``check_targets``) and says where a runtime's
int8 loses to its bf16 at some batch size.

Writes ``side_by_side.json`` (the ``ast-deploy bench`` schema, v1), ``.md`` and ``.png`` into
``--out`` (default ``benchmarks/results/<machine>``). Without ``--checkpoint`` the weights are
random (nothing is downloaded): speed does not depend on the weights' values, and the quality
columns then show numerical agreement only, not accuracy.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib.util
import os
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
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
from ast_deploy.bench.sources import ArtifactSource, CheckpointSource
from ast_deploy.checkpoints import LoadOptions
from ast_deploy.errors import InputError
from ast_deploy.frontend import KaldiFbank
from ast_deploy.labels import generic_labels
from ast_deploy.parity import ParityInputs, Thresholds, compare, run_backend
from ast_deploy.pipeline import cut_windows
from ast_deploy.runtime import registry
from ast_deploy.runtime.base import Backend, InputKind, InputSpec

REPO = Path(__file__).resolve().parents[1]
SPEECH = REPO / "tests" / "fixtures" / "speech_16k.wav"  # the spoken sentence of the reference fixtures
DECISIVE_MARGIN = 0.05  # logits; INT8's logit error here is ~0.05, bf16's ~0.02
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


# --- the peers: what a user would run instead of this toolkit ------------------------------------


@dataclass(frozen=True)
class Peer:
    """One way to run transformers' own ``ASTForAudioClassification`` without this toolkit.

    ``precision`` is what its GEMMs run at, for the roofline's mixed floor
    (``ast_deploy.bench.roofline.PRECISION_MIX``); ``hint`` is the runtime's own precision setting
    (transformers: the autocast dtype; OpenVINO: INFERENCE_PRECISION_HINT); ``quantize`` the
    runtime's own post-training quantisation, with its default settings.
    """

    name: str
    runtime: str  # "transformers" | "openvino" | "onnxruntime": which backend class runs it
    precision: str
    hint: str | None = None
    quantize: str | None = None  # None | "nncf" (OpenVINO) | "dynamic" (ONNX Runtime)
    devices: tuple[str, ...] = ("cpu",)


# The peers, in table order. The two transformers ones are the speed-up baselines; the CPU peers are
# what a CPU user picks instead: OpenVINO with its defaults (ov.convert_model of the transformers
# model; NNCF's quantize with the transformer preset and nothing else set, calibrated on the inputs a
# user has at hand: CALIBRATION_INPUTS random fbank tensors) and ONNX Runtime's quantize_dynamic of
# the model's torch.onnx export.
PEERS = (
    Peer("transformers", "transformers", "fp32", devices=("cpu", "cuda")),
    Peer("transformers-autocast-bf16", "transformers", "bf16", hint="bf16", devices=("cpu", "cuda")),
    Peer("openvino-defaults", "openvino", "fp32", hint="f32"),
    Peer("openvino-defaults-bf16", "openvino", "bf16", hint="bf16"),
    Peer("openvino-defaults-int8", "openvino", "int8", hint="f32", quantize="nncf"),
    Peer("openvino-defaults-int8-bf16", "openvino", "int8+bf16", hint="bf16", quantize="nncf"),
    Peer("onnxruntime-dynamic-int8", "onnxruntime", "int8", quantize="dynamic"),
)
PEER_BY_NAME = {p.name: p for p in PEERS}
BASELINES = ["transformers", "transformers-autocast-bf16"]  # the speed-up columns
CALIBRATION_INPUTS = 8  # as measured in AST_FACTS.md: NNCF on 8 random inputs


def peer_unavailable(peer: Peer, device: torch.device) -> str | None:
    """Why ``peer`` cannot run here, or None."""
    if device.type not in peer.devices:
        return f"runs on {', '.join(peer.devices)} only"
    modules = {"openvino": ["openvino"] + ["nncf"] * (peer.quantize == "nncf"), "onnxruntime": ["onnxruntime", "onnx"]}
    missing = [m for m in modules.get(peer.runtime, []) if importlib.util.find_spec(m) is None]
    if missing:
        return f"{', '.join(missing)} not installed"
    if peer.hint == "bf16" and peer.runtime == "openvino":
        import openvino as ov

        from ast_deploy.cpu import no_bf16

        if reason := no_bf16():  # OpenVINO itself reads cpuid, not an ISA cap
            return reason
        if "BF16" not in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
            return "this CPU has no bf16 (OpenVINO would run f32)"
    return None


class PeerBackend(Backend):
    """A peer behind the harness's interface.

    Waveform input goes through transformers' own ``ASTFeatureExtractor`` (NumPy, on the host, one
    clip at a time: how the library is used, whatever runs the model); fbank input goes straight to
    the model. Subclasses run the features: one class per runtime.
    """

    def __init__(self, peer: Peer, spec: InputSpec, device: torch.device, extractor=None):
        super().__init__(spec, device)
        self.peer, self.extractor = peer, extractor
        self.name, self.precision = peer.name, peer.precision

    @torch.inference_mode()
    def _run(self, inputs: torch.Tensor, num_samples: torch.Tensor | None) -> torch.Tensor:
        if self.extractor is not None:
            clips = [row[:n] for row, n in zip(inputs.cpu().numpy(), num_samples.cpu().tolist())]
            features = self.extractor(clips, sampling_rate=self.spec.sample_rate, return_tensors="pt")["input_values"]
        else:
            features = inputs
        return self.forward(features)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class TransformersBackend(PeerBackend):
    """transformers' eager model, in float32 or under ``torch.autocast(device, hint)``."""

    def __init__(self, peer: Peer, model, spec: InputSpec, device: torch.device, extractor=None):
        super().__init__(peer, spec, device, extractor)
        self.model = model
        self.autocast = {"bf16": torch.bfloat16, "fp16": torch.float16}[peer.hint] if peer.hint else None

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        features = features.to(self.device, non_blocking=True)
        autocast = torch.autocast(self.device.type, dtype=self.autocast) if self.autocast else contextlib.nullcontext()
        with autocast:
            return self.model(input_values=features).logits.float()


class OpenVINOBackend(PeerBackend):
    """An ``ov.Model`` compiled for the CPU with the peer's precision hint (and the run's threads)."""

    def __init__(self, peer: Peer, model, spec: InputSpec, device: torch.device, extractor, threads: int | None):
        import openvino as ov

        super().__init__(peer, spec, device, extractor)
        config = {"INFERENCE_PRECISION_HINT": peer.hint, **({"INFERENCE_NUM_THREADS": threads} if threads else {})}
        self.compiled = ov.Core().compile_model(model, "CPU", config)
        self.request = self.compiled.create_infer_request()

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        out = self.request.infer([features.numpy()])
        return torch.from_numpy(out[0].copy())

    def close(self) -> None:
        del self.request, self.compiled


class OnnxRuntimeBackend(PeerBackend):
    """An ONNX Runtime CPU session on one ONNX file (the run's threads, ORT's defaults otherwise)."""

    def __init__(self, peer: Peer, path: Path, spec: InputSpec, device: torch.device, extractor, threads: int | None):
        import onnxruntime as ort

        super().__init__(peer, spec, device, extractor)
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.session.run(None, {"input_values": features.numpy()})[0])

    def close(self) -> None:
        del self.session


class _Logits(torch.nn.Module):
    """``ASTForAudioClassification`` with a plain tensor out, for torch.onnx.export."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_values: torch.Tensor) -> torch.Tensor:
        return self.model(input_values=input_values).logits


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
    """The peers' side: transformers' model and feature extractor loaded from the same directory,
    and what the CPU peers build from them (converted and quantised once, kept in ``work``)."""

    model: object
    extractor: object
    load_s: float
    work: Path | None = None  # where converted models are kept and reused (default: rebuilt in memory)
    threads: int | None = None
    log: object = print
    builds: dict = field(default_factory=dict)  # what -> seconds it took (conversion, quantisation)
    _cache: dict = field(default_factory=dict)

    def example(self, batch: int = 1, seed: int = 0) -> torch.Tensor:
        """Random fbank features of the model's shape, as the harness feeds (normalised: std ~0.5)."""
        c = self.model.config
        g = torch.Generator().manual_seed(seed)
        return 0.5 * torch.randn(batch, c.max_length, c.num_mel_bins, generator=g)

    def _path(self, name: str) -> Path:
        if self.work is None:  # no --work: a directory of this process's own
            self.work = Path(tempfile.mkdtemp(prefix="ast-sbs-peers-"))
        (self.work / "peers").mkdir(parents=True, exist_ok=True)
        return self.work / "peers" / name

    def _built(self, what: str, path: Path, build):
        """``build(path)``, once per run, timed; ``build`` reuses what an earlier run left at ``path``."""
        if what not in self._cache:
            reused = path.exists()
            self.log(f"peers: reusing {path}" if reused else f"peers: building {what} ...")
            start = time.perf_counter()
            self._cache[what] = build(path)
            if not reused:
                self.builds[what] = time.perf_counter() - start
        return self._cache[what]

    def openvino_model(self, quantize: str | None):
        """``ov.convert_model`` of the transformers model; with "nncf", that model through
        ``nncf.quantize(..., model_type=ModelType.TRANSFORMER)``, every other setting NNCF's default."""
        import openvino as ov

        def convert(path: Path):
            if not path.exists():  # float32 weights: save_model would halve them to fp16 by default
                ov.save_model(ov.convert_model(self.model, example_input=self.example()), path, compress_to_fp16=False)
            return ov.Core().read_model(path)

        def quantized(path: Path):
            if not path.exists():
                import nncf

                calibration = nncf.Dataset([self.example(seed=1000 + i).numpy() for i in range(CALIBRATION_INPUTS)])
                model = nncf.quantize(self.openvino_model(None), calibration, model_type=nncf.ModelType.TRANSFORMER)
                ov.save_model(model, path, compress_to_fp16=False)
            return ov.Core().read_model(path)

        if quantize == "nncf":
            return self._built("openvino int8 (nncf.quantize)", self._path("openvino-int8.xml"), quantized)
        return self._built("openvino (ov.convert_model)", self._path("openvino.xml"), convert)

    def onnx_dynamic_int8(self) -> Path:
        """transformers' model through ``torch.onnx.export``, then ``quantize_dynamic`` (its defaults)."""

        def build(path: Path) -> Path:
            if not path.exists():
                from onnxruntime.quantization import quantize_dynamic

                fp32 = path.with_name("model.onnx")
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    torch.onnx.export(
                        _Logits(self.model).eval(), (self.example(),), str(fp32), input_names=["input_values"],
                        output_names=["logits"], dynamic_axes={"input_values": {0: "batch"}, "logits": {0: "batch"}},
                        dynamo=False,
                    )  # fmt: skip
                quantize_dynamic(str(fp32), str(path))
            return path

        return self._built("onnxruntime int8 (quantize_dynamic)", self._path("model.int8.onnx"), build)

    def open(self, name: str, kind: InputKind, spec: InputSpec, device: torch.device) -> PeerBackend:
        peer = PEER_BY_NAME[name]
        extractor = self.extractor if kind == "waveform" else None
        if peer.runtime == "openvino":
            return OpenVINOBackend(peer, self.openvino_model(peer.quantize), spec, device, extractor, self.threads)
        if peer.runtime == "onnxruntime":
            return OnnxRuntimeBackend(peer, self.onnx_dynamic_int8(), spec, device, extractor, self.threads)
        return TransformersBackend(peer, self.model, spec, device, extractor)


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


def measure_backend(args, name: str, kind: InputKind, ours: Ours, theirs: Theirs, progress, check) -> list[dict]:
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


def measure_all(args, peers: list[str], names: list[str], ours: Ours, theirs: Theirs, log, progress) -> list[dict]:
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


# Targets for AST-base at 1024 frames, batch 1 (issues 5 and 11). CPU: the fastest of this toolkit's
# backends that keeps the quality target, against transformers in float32 and under bf16 autocast,
# and against the fastest peer a CPU user would pick instead (OpenVINO's int8 defaults, where it
# runs): at least as fast, stretch 1.2x. Quality: cosine of the logits against float32 on every
# clip, and top-1 agreement on the decisive clips (issue 11's int8 target, better than OpenVINO's
# default quantisation). GPU: half of the measured matmul peak.
CPU_SPEEDUP_TARGETS = {"transformers": 3.5, "transformers-autocast-bf16": 1.3}
PEER_SPEEDUP_TARGETS = {"speed-up over the fastest peer": 1.0, "stretch: speed-up over the fastest peer": 1.2}
MIN_COSINE, MIN_TOP1 = 0.995, 0.99
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
    ok = [r for r in doc["results"] if r["status"] == "ok" and r["backend"] not in PEER_BY_NAME]
    peer_rows = [r for r in doc["results"] if r["status"] == "ok" and r["backend"] in PEER_BY_NAME]
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
        peers = [r for r in peer_rows if r["input"] == kind and r["batch"] == 1]
        if peers:  # the fastest peer whatever its quality: what a user would otherwise get
            fastest = max(peers, key=lambda r: r["throughput_clips_per_s"])
            value = best["throughput_clips_per_s"] / fastest["throughput_clips_per_s"]
            for name, threshold in PEER_SPEEDUP_TARGETS.items():
                out.append(_target(f"{name} ({fastest['backend']})", best, value, threshold))
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
            if "speed-up" in name:
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
        floor = ""
        if row["roofline_fraction"]:
            mixed = "floor_ms_per_clip_by_precision" in (doc.get("roofline") or {})
            of = f"its mixed {row.get('compute_precision') or row['precision']}" if mixed else "the bf16 matmul"
            floor = f"; {row['roofline_fraction']:.0%} of {of} floor"
        lines.append(
            f"Targets, {what}, batch {row['batch']}, best backend {backend}: {'; '.join(parts)}{floor}{extra}."
        )
    return lines


def family(backend: str) -> str:
    """Who runs a row: a peer's runtime, or this toolkit."""
    peer = PEER_BY_NAME.get(backend)
    return f"{peer.runtime} (peer)" if peer else "ast-deploy"


def int8_vs_bf16_lines(doc: dict) -> list[str]:
    """Where a runtime's fastest int8 row loses to its fastest bf16 row at the same input and batch."""
    best: dict[tuple, dict] = {}
    for r in doc["results"]:
        if r["status"] != "ok" or not r["precision"] or not r["precision"].startswith(("int8", "bf16")):
            continue
        key = (family(r["backend"]), r["input"], r["batch"], r["precision"][:4])
        if key not in best or r["throughput_clips_per_s"] > best[key]["throughput_clips_per_s"]:
            best[key] = r
    lines = []
    for (who, kind, batch, precision), bf16 in best.items():
        int8 = best.get((who, kind, batch, "int8"))
        if precision == "bf16" and int8 and bf16["throughput_clips_per_s"] > int8["throughput_clips_per_s"]:
            what = "model only" if kind == "fbank" else "end to end"
            lines.append(
                f"int8 loses to bf16 in {who} at batch {batch} ({what}): {bf16['backend']} "
                f"{bf16['throughput_clips_per_s']:.3g} clips/s vs {int8['backend']} {int8['throughput_clips_per_s']:.3g}."
            )
    if not lines and any(r["precision"] == "bf16" for r in doc["results"]):
        lines.append("int8 is at least as fast as bf16 at every batch size measured, in every runtime.")
    return lines


DERIVED = ("Targets, ", "int8 loses to bf16 ", "int8 is at least as fast ")  # how derived notes start


def derived_notes(doc: dict) -> list[str]:
    """The sentences re-derived from the rows (targets, int8 vs bf16), replacing earlier ones."""
    kept = [n for n in doc.get("notes", []) if not n.startswith(DERIVED)]
    return [*kept, *target_lines(doc), *int8_vs_bf16_lines(doc)]


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


def choose_peers(args) -> tuple[list[str], dict[str, str]]:
    """The peers to run: the transformers baselines always, then --peers (each must be available)
    or every available one of ``PEERS``."""
    device = torch.device(args.device)
    others = [p.name for p in PEERS if p.name not in BASELINES]
    if args.peers is None:  # the CPU peers are no alternative on a GPU: not even listed as unavailable there
        requested = [n for n in others if device.type in PEER_BY_NAME[n].devices]
    elif args.peers.strip() == "none":
        requested = []
    else:
        requested = [p.strip() for p in args.peers.split(",") if p.strip()]
        unknown = [n for n in requested if n not in others]
        if unknown:
            raise InputError(f"--peers: unknown {unknown[0]!r}; known: {', '.join(others)} or none")
    reasons = {n: peer_unavailable(PEER_BY_NAME[n], device) for n in [*BASELINES, *requested]}
    if args.peers not in (None, "none"):
        bad = {n: r for n, r in reasons.items() if r and n in requested}
        if bad:
            name, reason = next(iter(bad.items()))
            raise InputError(f"peer {name!r} is not available here: {reason}")
    return [n for n in reasons if not reasons[n]], {n: r for n, r in reasons.items() if r}


def peer_notes(peers: list[str], theirs: Theirs) -> list[str]:
    """What the CPU peers are, with the versions and the one-off conversion times."""
    runtimes = {PEER_BY_NAME[n].runtime for n in peers}
    notes = []
    if "openvino" in runtimes:
        import openvino as ov

        try:
            import nncf
        except ImportError:  # only the int8 peers need it
            nncf = None
        notes.append(
            f"Peers openvino-defaults*: OpenVINO {ov.get_version()} on ov.convert_model(ASTForAudioClassification, "
            f"example_input) with INFERENCE_PRECISION_HINT f32 or bf16 (else its defaults); the int8 ones are that "
            f"model through NNCF {getattr(nncf, '__version__', '?')} quantize(model_type=TRANSFORMER, all else "
            f"default) calibrated on {CALIBRATION_INPUTS} random fbank inputs, compiled with the f32 or bf16 hint."
        )
    if "onnxruntime" in runtimes:
        import onnxruntime as ort

        notes.append(
            f"Peer onnxruntime-dynamic-int8: ONNX Runtime {ort.__version__} quantize_dynamic (its defaults) of "
            "torch.onnx.export(ASTForAudioClassification) on the CPU execution provider."
        )
    if theirs.builds:
        built = ", ".join(f"{what} {seconds:.0f} s" for what, seconds in theirs.builds.items())
        notes.append(f"One-off peer builds, not in any load time: {built}.")
    return notes


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
        peers, skipped_peers = choose_peers(args)
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
        theirs = Theirs(hf_model, extractor, time.perf_counter() - start, work, args.threads, log)
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
