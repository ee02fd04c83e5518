"""TensorRT engines: deserialise, one execution context, a CUDA stream, ``execute_async_v3``.

Device buffers are torch CUDA tensors, so inputs already on the GPU cost no copy and outputs stay
there. Written against the TensorRT 11 Python API documentation (also valid for 10.x); it runs
only where TensorRT and an NVIDIA GPU exist.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import InputError, UnavailableError
from ..extras import missing
from .base import EMBEDDING_NAME, OUTPUT_NAME, Backend, InputSpec, Outputs
from .registry import BackendEntry

BACKENDS = (BackendEntry("tensorrt", "tensorrt", "fp16", devices=("cuda",), rank={"cuda": 10}),)


def unavailable(entry: BackendEntry, device: torch.device, artifact: dict | None = None) -> str | None:
    return tensorrt_missing()


def open_artifact(
    entry: BackendEntry, path: Path, spec: InputSpec, device: torch.device, threads: int | None, artifact: dict
) -> Backend:
    return TensorRTBackend(path, spec, device)


def tensorrt_missing() -> str | None:
    if reason := missing("tensorrt", "tensorrt", "TensorRT"):
        return reason
    if not torch.cuda.is_available():
        return "TensorRT needs an NVIDIA GPU and none is visible to CUDA here"
    return None


class TensorRTBackend(Backend):
    name = "tensorrt"
    precision = "fp16"

    def __init__(self, path: Path, spec: InputSpec, device: str | torch.device = "cuda"):
        reason = tensorrt_missing()
        if reason:
            raise UnavailableError(reason)
        import tensorrt as trt

        super().__init__(spec, device if torch.device(device).type == "cuda" else "cuda")
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.runtime = trt.Runtime(self.logger)
        self.engine = self.runtime.deserialize_cuda_engine(Path(path).read_bytes())
        if self.engine is None:
            raise InputError(f"{path}: TensorRT could not deserialise the engine (built with another TensorRT or GPU?)")
        self.context = self.engine.create_execution_context()
        self.stream = torch.cuda.Stream(self.device)
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        # Outputs by tensor name: every output of the engine is bound on each call (TensorRT needs an address
        # for each); ``logits`` always, ``embedding`` in engines built since embeddings were exported.
        self.output_names = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        if sorted(inputs) != sorted(spec.input_names) or OUTPUT_NAME not in self.output_names:
            raise InputError(f"{path}: engine tensors {names} do not match the manifest's {spec.input_names}")
        self.dtypes = {n: _torch_dtype(trt, self.engine.get_tensor_dtype(n)) for n in names}

    def _run_outputs(self, inputs: torch.Tensor, num_samples: torch.Tensor | None, embedding: bool) -> Outputs:
        if embedding and EMBEDDING_NAME not in self.output_names:
            raise InputError(f"tensorrt: the engine has no {EMBEDDING_NAME!r} output (it has {self.output_names})")
        feeds = [t.to(self.dtypes[n]) for n, t in zip(self.spec.input_names, self.graph_inputs(inputs, num_samples))]
        for name, tensor in zip(self.spec.input_names, feeds):
            self.context.set_input_shape(name, tuple(tensor.shape))
            self.context.set_tensor_address(name, tensor.data_ptr())
        out = {
            n: torch.empty(tuple(self.context.get_tensor_shape(n)), dtype=self.dtypes[n], device=self.device)
            for n in self.output_names
        }
        for name, tensor in out.items():
            self.context.set_tensor_address(name, tensor.data_ptr())
        # Our stream waits for the inputs produced on the current stream, and vice versa for the outputs.
        self.stream.wait_stream(torch.cuda.current_stream(self.device))
        for tensor in (*feeds, *out.values()):
            tensor.record_stream(self.stream)
        if not self.context.execute_async_v3(self.stream.cuda_stream):
            raise RuntimeError("TensorRT execute_async_v3 failed (see the TensorRT log)")
        torch.cuda.current_stream(self.device).wait_stream(self.stream)
        return Outputs(out[OUTPUT_NAME].float(), out[EMBEDDING_NAME].float() if embedding else None)

    def close(self) -> None:
        self.context = self.engine = None


def _torch_dtype(trt, dtype) -> torch.dtype:
    table = {
        trt.float32: torch.float32,
        trt.float16: torch.float16,
        trt.int32: torch.int32,
        trt.int64: torch.int64,
        trt.bool: torch.bool,
    }
    if hasattr(trt, "bfloat16"):
        table[trt.bfloat16] = torch.bfloat16
    return table[dtype]
