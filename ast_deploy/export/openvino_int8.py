"""OpenVINO IR with INT8 weights and activations: NNCF post-training quantisation of the float32 IR.

``nncf.quantize`` with the transformer preset inserts FakeQuantize nodes that OpenVINO's CPU plugin
runs as int8 GEMMs: weights symmetric per output channel, activations per tensor with static scales
taken from the calibration inputs (``--calibration``, see ``calibration.py``), asymmetric where a
GELU output feeds a MatMul. SmoothQuant (alpha 0.95 on MatMuls, the preset's own value, pinned here)
moves activation outliers into the weights first; without it the worst clip's logit cosine drops
from 0.993 to 0.980 on the tiny fixture model. LayerNorm stays float.

**The same numbers on every x86 CPU.** Where the CPU has no int8 dot product (AVX2, AVX-512 without
VNNI), oneDNN multiplies u8 x s8 pairs with ``vpmaddubsw``, which sums each pair into a saturating
int16 (255 x 127 x 2 > 32767). On the quickstart's trained model this took the worst-clip cosine from
0.98 (VNNI/AMX, and FakeQuantize emulated in f32) to 0.955 on an AVX2 EPYC, reproduced here under
``ONEDNN_MAX_CPU_ISA=AVX2``. Comparing every MatMul of the IR with the emulation located it: the
first quantised GEMM was already 7.7 % off (0.2 % with VNNI), from two sources. So the scheme is made
saturation-free by construction:

- weights get 7 bits (NNCF ``overflow_fix=ENABLE``: |w| <= 64, so 2 x 255 x 64 fits int16);
- attention stays float: NNCF's preset also quantises the Q and K inputs of
  ScaledDotProductAttention, and without VNNI the CPU plugin runs Q·Kᵀ as an s8 x s8 GEMM of two
  *activations*, which no weight trick protects.

With both, the IR gives the same logits under AVX2, AVX-512 VNNI and AMX kernels as emulated
(``tests/test_cpu_isa.py`` checks every class this CPU can reach).

**Sensitive layers stay float.** Per-tensor static activation scales were themselves marginal on the
trained model: loud broadband noise gave a worst cosine of 0.980 even emulated. Quantising one layer
at a time located it: the attention output projection (per-tensor scales of the attention output,
whose informative part is small next to its range); every other layer alone kept >= 0.9996. With the
output projections float: worst cosine 0.9994 on the parity signals, hard signals (silence, DC,
clipping, very quiet and very loud audio, mixtures), 64 other seeded signals and 200 unseen-voice
clips, on every CPU class. Cost on AST-base, batch 1, 2 AMX cores, bf16 rest: 328 -> 379 ms
(``docs/openvino.md`` has the table); still the fastest backend that passes parity there.

The front end (every node upstream of the patch-embedding Convolution) is excluded from quantisation:
its MatMuls see spectra spanning many orders of magnitude that feed a log, where one per-tensor int8
scale destroys the quiet bins (quantising it takes the tiny model's worst cosine from 0.993 to 0.67).
It keeps the float32 IR's precision mark, so it also stays float32 when the rest runs in bf16
(backend ``openvino-int8-bf16``).

The patch embedding (the one Convolution) stays float too: its input is the normalised spectrogram,
whose per-tensor int8 scale must span the -15.9 floor of empty mel bins and the loud ones alike. On the
quickstart's trained model, quantising it gave a worst-clip cosine of 0.955 and 95.5 % top-1 on unseen
voices; keeping it float gives 0.998 and 100 % (it is ~0.1 % of AST-base's FLOPs).
"""

from __future__ import annotations

import contextlib
import io
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

from ..extras import missing
from ..windows import window_length
from . import openvino as ov_export
from .calibration import Calibration, default_calibration
from .graph import ExportGraph, ExportOptions

NAME = "openvino-int8"
FORMAT = "openvino"
FILE = "model.int8.xml"
FILES = ("model.int8.xml", "model.int8.bin")  # a waveform IR adds its halves (export/openvino.py)
PRECISION = "int8"
REQUIRES = ("openvino",)
SMOOTH_QUANT_ALPHA = 0.95
ATTENTION = "ScaledDotProductAttention"


@dataclass(frozen=True)
class Scheme:
    """What is quantised, and how: the choices above, each measured (``benchmarks/cpu_isa.py`` ablates them)."""

    name: str = "ov-int8 scheme 2"  # recorded in the manifest
    seven_bit_weights: bool = True  # NNCF overflow_fix=ENABLE: no int16 saturation without VNNI
    float_attention: bool = True  # Q and K of ScaledDotProductAttention not quantised
    float_output_projections: bool = True  # the MatMul after each attention stays float
    smooth_quant_alpha: float = SMOOTH_QUANT_ALPHA

    def describe(self) -> str:
        weights = "7-bit weights per channel (overflow fix)" if self.seven_bit_weights else "int8 weights per channel"
        floats = ["front end", "patch embedding", *(["attention"] if self.float_attention else [])]
        floats += ["attention output projections"] if self.float_output_projections else []
        return (
            f"{self.name}: NNCF post-training, transformer preset: {weights}, static int8 activations per tensor, "
            f"SmoothQuant alpha {self.smooth_quant_alpha}; {', '.join(floats)} and LayerNorm float"
        )


SCHEME = Scheme()
# The scheme of ast-deploy 0.1.0 before this one: right with VNNI/AMX, wrong without (docs/cpus.md).
SCHEME_1 = Scheme("ov-int8 scheme 1", seven_bit_weights=False, float_attention=False, float_output_projections=False)


def unavailable() -> str | None:
    return ov_export.unavailable() or missing("nncf", "openvino", "NNCF")


def attention_output_projections(model) -> list[str]:
    """The MatMul each attention's output feeds (through its Transpose/Reshape), found structurally."""
    names = []
    for op in model.get_ordered_ops():
        if op.get_type_name() != ATTENTION:
            continue
        node = op
        while node.get_type_name() != "MatMul":
            consumers = [t.get_node() for t in node.output(0).get_target_inputs()]
            if len(consumers) != 1 or consumers[0].get_type_name() not in ("Transpose", "Reshape", "MatMul"):
                break
            node = consumers[0]
        if node.get_type_name() == "MatMul":
            names.append(node.get_friendly_name())
    return names


def quantize(model, feeds: list[dict], scheme: Scheme = SCHEME):
    """``model`` (a float32 ``ov.Model`` taking single-window ``feeds``) quantised by NNCF under ``scheme``."""
    import nncf

    float_layers = sorted(node.get_friendly_name() for node in ov_export.front_end_nodes(model))
    float_layers += [op.get_friendly_name() for op in model.get_ordered_ops() if op.get_type_name() == "Convolution"]
    if scheme.float_output_projections:
        float_layers += attention_output_projections(model)
    advanced = nncf.AdvancedQuantizationParameters(
        overflow_fix=nncf.OverflowFix.ENABLE if scheme.seven_bit_weights else nncf.OverflowFix.FIRST_LAYER,
        smooth_quant_alphas=nncf.AdvancedSmoothQuantParameters(matmul=scheme.smooth_quant_alpha),
    )
    nncf_logger = logging.getLogger("nncf")
    level = nncf_logger.level
    nncf_logger.setLevel(logging.ERROR)  # NNCF logs every node it leaves unquantised
    # Its progress bars would land in the middle of the CLI's output; export shows its own status.
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            return nncf.quantize(
                model,
                nncf.Dataset(feeds),
                model_type=nncf.ModelType.TRANSFORMER,
                subset_size=len(feeds),
                ignored_scope=nncf.IgnoredScope(
                    names=float_layers, types=[ATTENTION] if scheme.float_attention else [], validate=False
                ),
                advanced_parameters=advanced,
            )
    finally:
        nncf_logger.setLevel(level)


def calibration_feeds(graph: ExportGraph) -> tuple[list[dict], Calibration]:
    """Single-window feeds of ``--calibration`` (or the default signals) for ``graph``'s inputs."""
    window = window_length(graph.spec.num_samples, graph.frontend)
    calibration = graph.calibration or default_calibration(window, graph.spec.sample_rate)
    return calibration.graph_inputs(graph.spec.kind, graph.frontend), calibration


def build(graph: ExportGraph, path: Path, deps: dict[str, Path], options: ExportOptions) -> dict:
    import nncf
    import openvino as ov

    model = ov.Core().read_model(str(deps["openvino"]))
    # Calibration feeds are single windows, whatever batch range the IR is bounded to.
    ov_export.set_batch(model, graph, high=-1)
    feeds, calibration = calibration_feeds(graph)
    quantized = quantize(model, feeds, SCHEME)
    ov_export.set_batch(quantized, graph)
    return {
        "files": ov_export.save_ir(quantized, path, graph),
        "tools": {**ov_export.tool_versions(), "nncf": nncf.__version__},
        "quantization": SCHEME.describe(),
        "quantization_scheme": asdict(SCHEME),
        "calibration": calibration.to_dict(),
        "fp32_regions": ["front end"] if graph.spec.kind == "waveform" else [],
    }
