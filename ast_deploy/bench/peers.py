"""The peers of ``benchmarks/side_by_side.py``: transformers' own AST, and what a user would run
instead of this toolkit, measured through the same harness as every ast-deploy backend.

Each peer runs transformers' ``ASTForAudioClassification`` (the same weights as our checkpoint):

* in float32 eager mode and under ``torch.autocast(device, bfloat16)`` (``transformers``,
  ``transformers-autocast-bf16``): the usual way to run AST and the usual way to speed it up, the
  speed-up baselines (:data:`BASELINES`);
* on a CPU, through OpenVINO with its defaults (``ov.convert_model``; f32 and bf16 precision hints;
  int8 by NNCF's ``quantize`` with the transformer preset and default settings, calibrated on
  :data:`CALIBRATION_INPUTS` random inputs) and ONNX Runtime's ``quantize_dynamic`` of its
  ``torch.onnx.export``, converted once (kept in a work directory) by :class:`Peers`.

Waveform input goes through transformers' own ``ASTFeatureExtractor`` (NumPy, on the host, clip by
clip: how the library is used); fbank input goes straight to the model.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..cpu import no_bf16
from ..errors import InputError
from ..extras import missing
from ..runtime.base import Backend, InputKind, InputSpec


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
    needs = {
        "transformers": (("transformers",), "bench"),
        "openvino": (("openvino", *(("nncf",) if peer.quantize == "nncf" else ())), "openvino"),
        "onnxruntime": (("onnxruntime", "onnx"), "onnx"),
    }
    if reason := missing(*needs[peer.runtime]):
        return reason
    if peer.hint == "bf16" and peer.runtime == "openvino":
        import openvino as ov

        if reason := no_bf16():  # OpenVINO itself reads cpuid, not an ISA cap
            return reason
        if "BF16" not in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
            return "this CPU has no bf16 (OpenVINO would run f32)"
    return None


def choose_peers(requested: str | None, device: torch.device) -> tuple[list[str], dict[str, str]]:
    """The peers to run and ``{peer: why not}``: the transformers baselines always, then ``requested``
    (``--peers``: comma-separated names, each must be available; ``"none"``) or every available one of
    :data:`PEERS`."""
    others = [p.name for p in PEERS if p.name not in BASELINES]
    if requested is None:  # the CPU peers are no alternative on a GPU: not even listed as unavailable there
        names = [n for n in others if device.type in PEER_BY_NAME[n].devices]
    elif requested.strip() == "none":
        names = []
    else:
        names = [p.strip() for p in requested.split(",") if p.strip()]
        unknown = [n for n in names if n not in others]
        if unknown:
            raise InputError(f"--peers: unknown {unknown[0]!r}; known: {', '.join(others)} or none")
    reasons = {n: peer_unavailable(PEER_BY_NAME[n], device) for n in [*BASELINES, *names]}
    if requested not in (None, "none"):
        bad = {n: r for n, r in reasons.items() if r and n in names}
        if bad:
            name, reason = next(iter(bad.items()))
            raise InputError(f"peer {name!r} is not available here: {reason}")
    return [n for n in reasons if not reasons[n]], {n: r for n, r in reasons.items() if r}


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


class OpenVINOPeerBackend(PeerBackend):
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


class OnnxRuntimePeerBackend(PeerBackend):
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


@dataclass
class Peers:
    """The peers' side: transformers' model and feature extractor loaded from the same directory as
    our checkpoint, and what the CPU peers build from them (converted and quantised once, kept in
    ``work``). :meth:`open` gives any peer of :data:`PEERS` as a backend of the bench harness."""

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
            return OpenVINOPeerBackend(peer, self.openvino_model(peer.quantize), spec, device, extractor, self.threads)
        if peer.runtime == "onnxruntime":
            return OnnxRuntimePeerBackend(peer, self.onnx_dynamic_int8(), spec, device, extractor, self.threads)
        return TransformersBackend(peer, self.model, spec, device, extractor)


def peer_notes(names: list[str], peers: Peers) -> list[str]:
    """What the CPU peers ``names`` are, with the versions and ``peers``' one-off conversion times."""
    runtimes = {PEER_BY_NAME[n].runtime for n in names}
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
    if peers.builds:
        built = ", ".join(f"{what} {seconds:.0f} s" for what, seconds in peers.builds.items())
        notes.append(f"One-off peer builds, not in any load time: {built}.")
    return notes


__all__ = [
    "BASELINES",
    "CALIBRATION_INPUTS",
    "PEERS",
    "PEER_BY_NAME",
    "Peer",
    "PeerBackend",
    "Peers",
    "choose_peers",
    "peer_notes",
    "peer_unavailable",
]
