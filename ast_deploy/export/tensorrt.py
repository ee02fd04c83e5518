"""TensorRT engine from the mixed-precision FP16 ONNX, with the TensorRT Python API.

TensorRT 11 builds strongly typed networks only: precision comes from the ONNX types (see
``onnx_fp16.py``), there is no FP16 builder flag. On TensorRT 10 the network is created with
``NetworkDefinitionCreationFlag.STRONGLY_TYPED`` for the same behaviour.

The build uses one optimisation profile over the batch range, a workspace limit, the builder
optimisation level and a timing cache persisted beside the engine (re-exports reuse it).
Written against the TensorRT 11 Python API documentation; it runs only where TensorRT and an
NVIDIA GPU exist.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import UnavailableError
from ..fileio import atomic_file
from ..runtime.tensorrt import tensorrt_missing as unavailable  # noqa: F401 - the exporter's availability is the runtime's
from .graph import ExportGraph, ExportOptions

NAME = "tensorrt"
FORMAT = "tensorrt"
FILE = "model.plan"
PRECISION = "fp16"
REQUIRES = ("onnx-fp16",)


def trt_major() -> int:
    import tensorrt as trt

    return int(trt.__version__.split(".")[0])


def create_network(builder):
    """A strongly typed network: the default (and only mode) in 11.x, a creation flag in 10.x."""
    import tensorrt as trt

    if trt_major() >= 11:
        return builder.create_network()
    if not hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED"):
        raise UnavailableError(f"TensorRT {trt.__version__} has no strongly typed networks (need 10.x or 11.x)")
    return builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))


def build_engine(
    onnx_path: Path,
    engine_path: Path,
    graph: ExportGraph,
    workspace_gib: float,
    optimization_level: int,
    timing_cache: Path | None = None,
) -> dict:
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = create_network(builder)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise UnavailableError(f"{onnx_path}: TensorRT's ONNX parser failed: {errors}")

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gib * (1 << 30)))
    config.builder_optimization_level = optimization_level

    profile = builder.create_optimization_profile()
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        rest = tuple(tensor.shape)[1:]  # every axis but the batch is static
        b = graph.batch
        profile.set_shape(tensor.name, (b.min, *rest), (b.opt, *rest), (b.max, *rest))
    config.add_optimization_profile(profile)

    cache_bytes = timing_cache.read_bytes() if timing_cache is not None and timing_cache.is_file() else b""
    cache = config.create_timing_cache(cache_bytes)
    config.set_timing_cache(cache, False)

    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise UnavailableError(f"{onnx_path}: TensorRT failed to build an engine (see the log above)")
    engine_path.write_bytes(bytes(serialized))
    if timing_cache is not None:
        with atomic_file(timing_cache, "wb") as f:
            f.write(bytes(cache.serialize()))
    return {
        "tools": {"tensorrt": trt.__version__},
        "device": "cuda",
        "builder": {
            "workspace_gib": workspace_gib,
            "optimization_level": optimization_level,
            "strongly_typed": True,
            "profile": {"min": graph.batch.min, "opt": graph.batch.opt, "max": graph.batch.max},
        },
    }


def build(graph: ExportGraph, path: Path, deps: dict[str, Path], options: ExportOptions) -> dict:
    return build_engine(
        deps["onnx-fp16"], path, graph, options.workspace_gib, options.optimization_level, options.timing_cache
    )
