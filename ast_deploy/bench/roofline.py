"""The hardware limit: FLOPs per clip over the machine's measured peak matrix-multiply rate.

The peak is measured, not looked up: square ``torch.mm`` products (2048³ on a CPU, 8192³ on a GPU)
in float32 and in the reduced precisions the device has, best of several runs, on the same threads
as the benchmark; on a CPU also int8 x int8 -> int32 products through ``torch._int_mm`` (oneDNN's
VNNI/AMX kernels: the instructions W8A8 backends use). ``floor_ms_per_clip`` is what one clip would
take if every FLOP ran at the fastest of those rates.

A model is rarely all one precision, so each row is held against its *mixed* floor
(``floor_ms_per_clip_by_precision``): the sum over the model's GEMM work, split into the linear
layers and attention's two activation-by-activation products (QK^T, AV), of that work's FLOPs at
the peak rate of the precision it runs at (``PRECISION_MIX``). An int8 backend quantises the linear
layers only, so its floor is linear FLOPs at the int8 rate plus attention FLOPs at the float32 (or,
for "int8+bf16", the bf16) rate. A measured figure's ``roofline_fraction`` is its precision's floor
over the measured time per clip. Transformer inference at small batch is rarely compute bound, so
fractions well below 1 are normal.
"""

from __future__ import annotations

import time

import torch

from ..model import ASTConfig

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16, "int8": torch.int8}

# The precision of each part of the GEMM work, by a result row's ``precision``. W8A8 int8 backends
# (this toolkit's, NNCF's, ONNX Runtime's dynamic quantisation) quantise the linear layers and
# leave attention's QK^T and AV in floating point: float32, or bf16 where the rest of the graph runs
# in bf16 ("int8+bf16", e.g. an int8 OpenVINO model compiled with the bf16 precision hint).
PRECISION_MIX = {
    "fp32": {"linear": "fp32", "attention": "fp32"},
    "bf16": {"linear": "bf16", "attention": "bf16"},
    "fp16": {"linear": "fp16", "attention": "fp16"},
    "int8": {"linear": "int8", "attention": "fp32"},
    "int8+bf16": {"linear": "int8", "attention": "bf16"},
}


def gemm_flops_per_s(device: torch.device, dtype: torch.dtype, n: int, repeats: int = 5, inner: int = 1) -> float:
    """Best rate of ``inner`` back-to-back ``n × n @ n × n`` products over ``repeats`` timed runs."""
    g = torch.Generator(device="cpu").manual_seed(0)
    if dtype == torch.int8:  # int8 x int8 -> int32 accumulators, as W8A8 linear layers compute
        a = torch.randint(-128, 128, (n, n), generator=g, dtype=torch.int8).to(device)
        b = torch.randint(-128, 128, (n, n), generator=g, dtype=torch.int8).to(device)
        out = torch.empty(n, n, device=device, dtype=torch.int32)

        def product() -> None:
            torch._int_mm(a, b, out=out)
    else:
        a = torch.randn(n, n, generator=g).to(device, dtype)
        b = torch.randn(n, n, generator=g).to(device, dtype)
        out = torch.empty(n, n, device=device, dtype=dtype)

        def product() -> None:
            torch.mm(a, b, out=out)

    cuda = device.type == "cuda"
    best = float("inf")
    for i in range(repeats + 2):  # two untimed runs first: kernel selection, page faults, clocks
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
        t0 = time.perf_counter()
        for _ in range(inner):
            product()
        if cuda:
            end.record()
            end.synchronize()
            elapsed = start.elapsed_time(end) / 1e3
        else:
            elapsed = time.perf_counter() - t0
        if i >= 2:
            best = min(best, elapsed)
    return 2 * n**3 * inner / best


def measure_roofline(config: ASTConfig, device: str | torch.device, dtypes: list[str] | None = None) -> dict:
    """Peak GEMM rates on ``device`` and the resulting floor per clip for ``config``."""
    device = torch.device(device)
    cuda = device.type == "cuda"
    dtypes = dtypes or (["fp32", "bf16", "fp16"] if cuda else ["fp32", "bf16", "int8"])
    n, inner = (8192, 10) if cuda else (2048, 1)
    with torch.inference_mode():
        rates = {name: gemm_flops_per_s(device, DTYPES[name], n, inner=inner) for name in dtypes}
    flops = config.flops_per_clip()
    parts = flops_by_part(config)
    limit = max(rates, key=rates.__getitem__)
    return {
        "flops_per_clip": flops,
        "gemm_size": n,
        "gemm_flops_per_s": rates,
        "limit_dtype": limit,
        "limit_flops_per_s": rates[limit],
        "floor_ms_per_clip": flops / rates[limit] * 1e3,
        "floor_ms_per_clip_by_dtype": {name: flops / rate * 1e3 for name, rate in rates.items()},
        "flops_by_part": parts,
        "floor_ms_per_clip_by_precision": mixed_floors(parts, rates),
        "threads": torch.get_num_threads(),
    }


def flops_by_part(config: ASTConfig) -> dict[str, int]:
    """FLOPs per clip in attention's QK^T and AV products, and in everything else (linear layers,
    patch embedding, head: the GEMMs with weights, which int8 backends quantise)."""
    tokens = config.num_patches + 2
    attention = config.depth * 2 * 2 * tokens * tokens * config.embed_dim
    return {"linear": config.flops_per_clip() - attention, "attention": attention}


def mixed_floors(parts: dict[str, int], rates: dict[str, float]) -> dict[str, float]:
    """Milliseconds per clip at each precision of ``PRECISION_MIX`` whose rates were measured: the
    sum over the parts of their FLOPs at their own precision's peak (the mixed floor)."""
    return {
        precision: sum(parts[part] / rates[dtype] for part, dtype in mix.items()) * 1e3
        for precision, mix in PRECISION_MIX.items()
        if all(dtype in rates for dtype in mix.values())
    }


def floor_ms(roofline: dict, precision: str | None) -> float:
    """The floor that a row of ``precision`` is held against: its mixed floor where the roofline has
    one (documents from before mixed floors, unknown precisions: the fastest rate's floor)."""
    return (roofline.get("floor_ms_per_clip_by_precision") or {}).get(precision or "", roofline["floor_ms_per_clip"])


def roofline_fraction(row: dict, roofline: dict) -> float | None:
    """The row's floor time per clip over its measured mean time per clip (1.0 = at the hardware limit)."""
    latency = row.get("latency_ms")
    if not latency:
        return None
    precision = row.get("compute_precision") or row.get("precision")  # rows from before compute_precision
    return floor_ms(roofline, precision) / (latency["mean"] / row["batch"])


def describe(roofline: dict) -> str:
    """One line: FLOPs per clip, the measured peak rates, the floor."""
    rates = ", ".join(
        f"{k} {v / 1e9:,.0f} {'GOP' if k == 'int8' else 'GFLOP'}/s" for k, v in roofline["gemm_flops_per_s"].items()
    )
    text = (
        f"{roofline['flops_per_clip'] / 1e9:,.1f} GFLOP per clip; peak GEMM ({roofline['gemm_size']}³, "
        f"{roofline['threads']} threads): {rates} -> floor {roofline['floor_ms_per_clip']:,.2f} ms per clip "
        f"at the {roofline['limit_dtype']} rate"
    )
    mixed = roofline.get("floor_ms_per_clip_by_precision")
    if mixed:
        parts = roofline["flops_by_part"]
        floors = ", ".join(f"{k} {v:,.0f} ms" if v >= 100 else f"{k} {v:.3g} ms" for k, v in mixed.items())
        text += (
            f"; each row against the floor of its precision mix ({parts['linear'] / 1e9:,.1f} GFLOP linear + "
            f"{parts['attention'] / 1e9:,.1f} GFLOP attention, int8 = int8 linear + fp32 attention): {floors}"
        )
    return text
