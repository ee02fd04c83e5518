"""ONNX artifacts (float32, FP16, INT8) in ONNX Runtime, on the CPU, CUDA or TensorRT provider."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import UnavailableError
from ..extras import missing
from .base import OUTPUT_NAME, OUTPUT_NAMES, Backend, InputSpec, Outputs
from .registry import BackendEntry

BACKENDS = (
    BackendEntry("onnx", "onnx", "fp32", rank={"cpu": 10}),
    BackendEntry("onnx-fp16", "onnx", "fp16", rank={"cuda": 20}),
    BackendEntry("onnx-int8", "onnx", "int8"),
    # The FP16 ONNX in ONNX Runtime's TensorRT execution provider.
    BackendEntry("onnx-trt", "onnx", "fp16", artifact="onnx-fp16", devices=("cuda",), options={"provider": "tensorrt"}),
)

PROVIDERS = {
    "cpu": ["CPUExecutionProvider"],
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
}


def unavailable(entry: BackendEntry, device: torch.device, artifact: dict | None = None) -> str | None:
    return provider_missing(entry.option("provider", device.type))


def open_artifact(
    entry: BackendEntry, path: Path, spec: InputSpec, device: torch.device, threads: int | None, artifact: dict
) -> Backend:
    provider = entry.option("provider", device.type)
    return OnnxRuntimeBackend(path, spec, artifact["precision"], provider, threads, name=entry.name)


def provider_missing(provider: str = "cpu") -> str | None:
    if reason := missing("onnxruntime", "onnx"):
        return reason
    import onnxruntime as ort

    wanted = PROVIDERS[provider][0]
    if wanted not in ort.get_available_providers():
        return f"onnxruntime {ort.__version__} here has no {wanted} (have {', '.join(ort.get_available_providers())})"
    return None


class OnnxRuntimeBackend(Backend):
    """One ``InferenceSession``; inputs and outputs cross as NumPy arrays on the host."""

    def __init__(
        self,
        path: Path,
        spec: InputSpec,
        precision: str = "fp32",
        provider: str = "cpu",
        threads: int | None = None,
        name: str = "onnx",
    ):
        super().__init__(spec, "cpu")  # outputs come back on the host
        reason = provider_missing(provider)
        if reason:
            raise UnavailableError(reason)
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), options, providers=PROVIDERS[provider])
        self.precision, self.provider, self.name = precision, provider, name

    def _run_outputs(self, inputs: torch.Tensor, num_samples: torch.Tensor | None, embedding: bool) -> Outputs:
        feeds = {
            name: np.ascontiguousarray(t.detach().cpu().numpy())
            for name, t in zip(self.spec.input_names, self.graph_inputs(inputs, num_samples))
        }
        fetched = self.session.run(list(OUTPUT_NAMES if embedding else (OUTPUT_NAME,)), feeds)
        return Outputs(*(torch.from_numpy(a).float() for a in fetched))

    def close(self) -> None:
        self.session = None
