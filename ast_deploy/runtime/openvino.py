"""OpenVINO IRs (``openvino``, ``openvino-int8``) on the CPU, in float32 or bf16.

One IR runs at several precisions: ``INFERENCE_PRECISION_HINT`` decides at compile time whether the
float arithmetic is f32 or bf16 (the front end of a waveform IR is marked to stay f32 either way;
see ``export/openvino.py``). Hence four backends over two artifacts:

- ``openvino``: the float32 IR in f32 (same function as PyTorch up to rounding);
- ``openvino-bf16``: the float32 IR in bf16 (where the CPU has bf16: AVX512-BF16 or AMX);
- ``openvino-int8``: the INT8 IR with everything not quantised (attention, LayerNorm, GELU) in f32;
- ``openvino-int8-bf16``: the INT8 IR with that rest in bf16, faster where the CPU has bf16 and
  judged by the same INT8 parity gate.

Compiled models are cached (OpenVINO's ``CACHE_DIR``) under ``$AST_DEPLOY_CACHE/openvino/<cpu class>/<f32|bf16>``
(default ``~/.cache/ast-deploy/openvino``; ``AST_DEPLOY_CACHE=off`` disables it), so the second load
of an IR skips compilation. ``PERFORMANCE_HINT`` is LATENCY: a backend call is one synchronous
inference using every thread on one batch, which is what LATENCY configures (one stream);
THROUGHPUT splits the cores into streams that only pay off with several requests in flight, e.g.
several server workers sharing one process (``AST_DEPLOY_OPENVINO_HINT=throughput``).

The IR's batch axis is dynamic (the export's range), but each batch size is compiled with a *static*
shape, on first use, and kept (at most :data:`COMPILED_BATCH_SIZES` of them). Static shapes let the
CPU plugin fuse an INT8 IR's FakeQuantize nodes into its int8 GEMMs: on AST-base at batch 1, 2 AMX
cores, bf16 rest, 382 ms dynamic (25 FakeQuantize left as separate f32 ops) vs 220 ms static (1 left).

**The front end apart, under bf16.** OpenVINO's CPU plugin runs some of a bf16-hinted front end in
bf16 despite the IR's precision marks (the waveform's mean removal, fused with nodes its own
transformations create), which rounds every sample to an 8-bit mantissa: on the tiny fixture the
worst logit cosine drops from 0.9999 to 0.975. So a bf16 run of a waveform IR compiles two models:
the front end (framing, DFT, mel, log) with an f32 hint, and the rest (the patch embedding on) at
bf16, the front end's output tensor feeding the rest's ``features`` input. The exporter cuts the IR
in two (:func:`split_front_end`) and ships both halves beside the whole one (:func:`split_files`), so
that this runtime and the C++ one only compile files. Artifacts exported before the halves were
shipped have the whole IR alone: for them the same cut is made here, at load time (the one place a
runtime changes a graph; ``legacy_split`` in :class:`OpenVinoBackend`).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from functools import cache
from pathlib import Path

import numpy as np
import torch

from ..cpu import cpu_info, no_bf16
from ..errors import InputError, UnavailableError
from ..extras import missing
from .base import EMBEDDING_NAME, OUTPUT_NAME, Backend, InputSpec, Outputs
from .registry import BackendEntry

# The default per CPU class (lower first), from AST-base at batch 1 on 2 cores (docs/cpus.md): with bf16
# hardware, int8 GEMMs with the rest in bf16 are fastest; without VNNI, int8 is slower than float32
# (an AVX2 EPYC: 2,468 vs 2,273 ms), so float32 stays the default there and on classes not measured.
BACKENDS = (
    BackendEntry("openvino", "openvino", "fp32", devices=("cpu",), rank={"cpu": 5}, options={"inference": "f32"}),
    BackendEntry(
        "openvino-bf16",
        "openvino",
        "bf16",
        artifact="openvino",
        devices=("cpu",),
        rank={"cpu:amx": 2, "cpu:avx512-bf16": 3},
        options={"inference": "bf16"},
    ),
    BackendEntry(
        "openvino-int8",
        "openvino",
        "int8",
        devices=("cpu",),
        rank={"cpu:amx": 3, "cpu:avx512-bf16": 2, "cpu:avx512-vnni": 1},
        options={"inference": "f32"},
    ),
    BackendEntry(
        "openvino-int8-bf16",
        "openvino",
        "int8",
        artifact="openvino-int8",
        devices=("cpu",),
        rank={"cpu:amx": 1, "cpu:avx512-bf16": 1},
        options={"inference": "bf16"},
    ),
)

COMPILED_BATCH_SIZES = 4  # static-shape compilations kept per backend (least recently used dropped)
CACHE_ENV = "AST_DEPLOY_CACHE"
HINT_ENV = "AST_DEPLOY_OPENVINO_HINT"
HINTS = ("latency", "throughput", "cumulative_throughput")
FEATURES = "features"  # the input of the rest of a split waveform IR: the front end's output


@cache
def core():
    import openvino as ov

    return ov.Core()


def openvino_missing() -> str | None:
    return missing("openvino", "openvino", "OpenVINO")


def cpu_capabilities() -> list[str]:
    return list(core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


def unavailable(entry: BackendEntry, device: torch.device, artifact: dict | None = None) -> str | None:
    reason = openvino_missing()
    if reason:
        return reason
    if entry.option("inference") == "bf16":
        # OpenVINO reads cpuid, not ONEDNN_MAX_CPU_ISA: it reports BF16 under a cap that removes it.
        if reason := no_bf16():
            return reason
        if "BF16" not in (caps := cpu_capabilities()):
            return f"OpenVINO's CPU plugin offers no bf16 here (its capabilities: {', '.join(caps)})"
    return None


def cache_dir() -> Path | None:
    """Where compiled models are cached, or ``None`` when ``AST_DEPLOY_CACHE=off``."""
    root = os.environ.get(CACHE_ENV)
    if root is not None and root.strip().lower() in ("", "off", "0", "none"):
        return None
    base = Path(root) if root else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ast-deploy"
    return base / "openvino"


def performance_hint() -> str:
    hint = os.environ.get(HINT_ENV, "latency").strip().lower()
    if hint not in HINTS:
        raise InputError(f"{HINT_ENV}={hint!r}: expected one of {', '.join(HINTS)}")
    return hint.upper()


def open_artifact(
    entry: BackendEntry, path: Path, spec: InputSpec, device: torch.device, threads: int | None, artifact: dict
) -> Backend:
    halves = split_paths(path, artifact)
    return OpenVinoBackend(path, spec, entry.option("inference", "f32"), threads, name=entry.name, halves=halves)


def split_files(primary: str) -> tuple[str, str]:
    """The IRs of the front end and of the rest that the exporter writes beside a waveform IR ``primary``
    (``model.xml`` -> ``model.front.xml``, ``model.rest.xml``; each with its ``.bin``)."""
    stem = primary.removesuffix(".xml")
    return f"{stem}.front.xml", f"{stem}.rest.xml"


def split_paths(path: Path, artifact: dict) -> tuple[Path, Path] | None:
    """The front end's and the rest's IR of the artifact whose primary file is ``path``, where its manifest
    lists them (their hashes are checked with the rest of its files); ``None`` for an IR without them."""
    listed = {f["file"] for f in artifact.get("files", [])}
    halves = split_files(Path(path).name)
    return tuple(Path(path).with_name(h) for h in halves) if set(halves) <= listed else None


class OpenVinoBackend(Backend):
    """One compiled model and one infer request; inputs and outputs cross as NumPy arrays."""

    static_batch_shapes = True

    def __init__(
        self,
        path: Path,
        spec: InputSpec,
        inference: str = "f32",
        threads: int | None = None,
        name: str = "openvino",
        halves: tuple[Path, Path] | None = None,
    ):
        super().__init__(spec, "cpu")
        reason = openvino_missing()
        if reason:
            raise UnavailableError(reason)
        config: dict[str, str | int] = {"INFERENCE_PRECISION_HINT": inference, "PERFORMANCE_HINT": performance_hint()}
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        cache = cache_dir()
        if cache is not None:
            # One cache per inference precision: OpenVINO 2026.4's cache key leaves the precision hint
            # out, so a bf16 load would import the f32 compilation of the same IR (and return NaN).
            # And one per CPU class: the compiled graph is transformed for the ISA (without VNNI, int8
            # attention is decomposed differently), and a home directory may be shared by machines.
            cache = cache / cpu_info().isa_class / inference
            try:
                cache.mkdir(parents=True, exist_ok=True)
                config["CACHE_DIR"] = str(cache)
            except OSError:
                pass  # a read-only home: compile every time rather than fail
        self.path, self.config, self.inference, self.name = Path(path), config, inference, name
        # The bf16 runs of a waveform IR compile the front end apart, in f32 (the module docstring).
        self.split = inference != "f32" and spec.kind == "waveform"
        # Each IR is read once; each batch size reshapes its own copy. ``irs``: (the front end's or None, the model's).
        if self.split and halves is not None:
            self.irs = (core().read_model(str(halves[0])), core().read_model(str(halves[1])))
        else:
            self.irs = (None, core().read_model(str(self.path)))
        # An artifact exported before the halves were shipped: cut the whole IR here, once per batch size.
        self.legacy_split = self.split and halves is None
        self.by_batch: OrderedDict[int, tuple] = OrderedDict()  # batch -> (front request | None, request)
        self.lock = threading.Lock()  # one infer request per batch size: one call at a time
        self._requests(max(spec.min_batch, 1))  # compile now: load time is reported as load time

    @property
    def compute_precision(self) -> str:
        # An int8 IR with the bf16 hint: quantised GEMMs in int8, attention and the rest in bf16.
        return "int8+bf16" if self.precision == "int8" and self.inference == "bf16" else self.precision

    def _requests(self, batch: int) -> tuple:
        """The (front end, model) infer requests for a static ``batch``, compiled on first use."""
        if batch in self.by_batch:
            self.by_batch.move_to_end(batch)
            return self.by_batch[batch]
        front, model = (None if ir is None else with_batch(ir, batch) for ir in self.irs)
        if self.legacy_split:
            front, model = split_front_end(model)
        front_request = None
        if front is not None:
            f32 = {**self.config, "INFERENCE_PRECISION_HINT": "f32"}
            front_request = core().compile_model(front, "CPU", f32).create_infer_request()
        requests = (front_request, core().compile_model(model, "CPU", self.config).create_infer_request())
        self.by_batch[batch] = requests
        if len(self.by_batch) > COMPILED_BATCH_SIZES:
            self.by_batch.popitem(last=False)
        return requests

    @property
    def front_end(self):
        """The front end's compiled model (f32) of the last batch size used, where it runs apart; else ``None``."""
        front_request = next(reversed(self.by_batch.values()))[0]
        return None if front_request is None else front_request.get_compiled_model()

    @property
    def compiled(self):
        """The compiled model (the transformer part, when the front end is apart) of the last batch size used."""
        return next(reversed(self.by_batch.values()))[1].get_compiled_model()

    def _run_outputs(self, inputs: torch.Tensor, num_samples: torch.Tensor | None, embedding: bool) -> Outputs:
        feeds = {
            name: np.ascontiguousarray(t.detach().cpu().numpy())
            for name, t in zip(self.spec.input_names, self.graph_inputs(inputs, num_samples))
        }
        with self.lock:
            front_request, request = self._requests(inputs.shape[0])
            if front_request is not None:
                front_request.infer(feeds)
                feeds = {**feeds, FEATURES: front_request.get_output_tensor(0)}
            request.infer(feeds)
            # The request reuses its output buffers on the next call: copy out (the embedding only when asked).
            names = (OUTPUT_NAME, EMBEDDING_NAME) if embedding else (OUTPUT_NAME,)
            return Outputs(*(torch.from_numpy(request.get_tensor(n).data.copy()).float() for n in names))

    def close(self) -> None:
        self.by_batch.clear()


def with_batch(ir, batch: int):
    """A copy of ``ir`` with every input's batch axis fixed to ``batch`` (a static shape; see the module docstring)."""
    model = ir.clone()
    model.reshape({i: [batch, *i.get_partial_shape()[1:]] for i in model.inputs})
    return model


def split_front_end(model):
    """(front end, rest) of a waveform IR ``model`` (which is cut: pass a copy to keep it whole), cut where the
    patch embedding's input is computed: the front end maps the graph's inputs to the features; the rest takes
    :data:`FEATURES` and the graph's inputs. The exporter writes both (:func:`split_files`); this runtime calls
    it itself only for artifacts exported without them."""
    import openvino as ov

    conv = next((op for op in model.get_ordered_ops() if op.get_type_name() == "Convolution"), None)
    if conv is None:
        raise InputError("OpenVINO IR has no Convolution (patch embedding) to split the front end off at")
    boundary = conv.input(0)
    # An INT8 IR quantises the features on the way in: cut above the FakeQuantize, which stays with the rest.
    while boundary.get_source_output().get_node().get_type_name() == "FakeQuantize":
        boundary = boundary.get_source_output().get_node().input(0)
    source = boundary.get_source_output()
    front_model = ov.Model([source], model.get_parameters(), "front_end")
    features = ov.opset13.parameter(source.get_partial_shape(), source.get_element_type(), name=FEATURES)
    features.output(0).get_tensor().set_names({FEATURES})  # the name the rest's input is fed by
    boundary.replace_source_output(features.output(0))
    # The rest still reads the batch size off the waveform's shape (ShapeOf): it keeps the inputs too.
    rest_model = ov.Model(model.get_results(), [features, *model.get_parameters()], "transformer")
    return front_model, rest_model
