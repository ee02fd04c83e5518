"""OpenVINO IR with INT8 weights and activations: NNCF post-training quantisation of the float32 IR.

``nncf.quantize`` with the transformer preset inserts FakeQuantize nodes that OpenVINO's CPU plugin
runs as int8 GEMMs (VNNI / AMX-INT8): weights symmetric per output channel, activations per tensor
with static scales taken from the calibration inputs (``--calibration``, see ``calibration.py``),
asymmetric where a GELU output feeds a MatMul. SmoothQuant (alpha 0.95 on MatMuls, the preset's own
value, pinned here) moves activation outliers into the weights first; without it the worst clip's
logit cosine drops from 0.993 to 0.980 on the tiny fixture model. Attention (OpenVINO fuses it into
ScaledDotProductAttention) and LayerNorm stay float.

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
from pathlib import Path

from . import openvino as ov_export
from .calibration import default_calibration
from .graph import ExportGraph, ExportOptions

NAME = "openvino-int8"
FORMAT = "openvino"
FILE = "model.int8.xml"
FILES = ("model.int8.xml", "model.int8.bin")
PRECISION = "int8"
REQUIRES = ("openvino",)
SMOOTH_QUANT_ALPHA = 0.95


def unavailable() -> str | None:
    reason = ov_export.unavailable()
    if reason:
        return reason
    try:
        import nncf  # noqa: F401
    except ImportError:
        return "OpenVINO INT8 quantisation needs NNCF (pip install 'ast-deploy[openvino]')"
    return None


def build(graph: ExportGraph, path: Path, deps: dict[str, Path], options: ExportOptions) -> dict:
    import nncf
    import openvino as ov

    model = ov.Core().read_model(str(deps["openvino"]))
    # Calibration feeds are single windows, whatever batch range the IR is bounded to.
    ov_export.set_batch(model, graph, high=-1)
    window = graph.spec.num_samples or graph.frontend.window_samples
    calibration = graph.calibration or default_calibration(window, graph.spec.sample_rate)
    feeds = calibration.graph_inputs(graph)
    front_end = sorted(node.get_friendly_name() for node in ov_export.front_end_nodes(model))
    patch_embedding = [op.get_friendly_name() for op in model.get_ordered_ops() if op.get_type_name() == "Convolution"]
    nncf_logger = logging.getLogger("nncf")
    level = nncf_logger.level
    nncf_logger.setLevel(logging.ERROR)  # NNCF logs every node it leaves unquantised
    # Its progress bars would land in the middle of the CLI's output; export shows its own status.
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            quantized = nncf.quantize(
                model,
                nncf.Dataset(feeds),
                model_type=nncf.ModelType.TRANSFORMER,
                subset_size=len(feeds),
                ignored_scope=nncf.IgnoredScope(names=front_end + patch_embedding, validate=False),
                advanced_parameters=nncf.AdvancedQuantizationParameters(
                    smooth_quant_alphas=nncf.AdvancedSmoothQuantParameters(matmul=SMOOTH_QUANT_ALPHA)
                ),
            )
    finally:
        nncf_logger.setLevel(level)
    ov_export.set_batch(quantized, graph)
    ov_export.save(quantized, path)
    return {
        "tools": {**ov_export.tool_versions(), "nncf": nncf.__version__},
        "quantization": (
            "NNCF post-training, transformer preset: int8 weights per channel, static int8 activations per "
            f"tensor, SmoothQuant alpha {SMOOTH_QUANT_ALPHA}; front end, patch embedding, attention and LayerNorm float"
        ),
        "calibration": calibration.to_dict(),
        "fp32_regions": ["front end"] if graph.spec.kind == "waveform" else [],
    }
