"""The hardware limit: FLOPs per clip over the machine's measured peak matrix-multiply rate.

The peak is measured, not looked up: square ``torch.mm`` products (2048³ on a CPU, 8192³ on a GPU)
in float32 and in the reduced precisions the device has, best of several runs, on the same threads
as the benchmark. ``floor_ms_per_clip`` is what one clip would take if every FLOP ran at the
fastest of those rates; a measured figure's ``roofline_fraction`` is floor / measured time per clip.
Transformer inference at small batch is rarely compute bound, so fractions well below 1 are normal.
"""

from __future__ import annotations

import time

import torch

from ..model import ASTConfig

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def gemm_flops_per_s(device: torch.device, dtype: torch.dtype, n: int, repeats: int = 5, inner: int = 1) -> float:
    """Best rate of ``inner`` back-to-back ``n × n @ n × n`` products over ``repeats`` timed runs."""
    g = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(n, n, generator=g).to(device, dtype)
    b = torch.randn(n, n, generator=g).to(device, dtype)
    out = torch.empty(n, n, device=device, dtype=dtype)
    cuda = device.type == "cuda"
    best = float("inf")
    for i in range(repeats + 2):  # two untimed runs first: kernel selection, page faults, clocks
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
        t0 = time.perf_counter()
        for _ in range(inner):
            torch.mm(a, b, out=out)
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
    dtypes = dtypes or (["fp32", "bf16", "fp16"] if cuda else ["fp32", "bf16"])
    n, inner = (8192, 10) if cuda else (2048, 1)
    with torch.inference_mode():
        rates = {name: gemm_flops_per_s(device, DTYPES[name], n, inner=inner) for name in dtypes}
    flops = config.flops_per_clip()
    limit = max(rates, key=rates.__getitem__)
    return {
        "flops_per_clip": flops,
        "gemm_size": n,
        "gemm_flops_per_s": rates,
        "limit_dtype": limit,
        "limit_flops_per_s": rates[limit],
        "floor_ms_per_clip": flops / rates[limit] * 1e3,
        "floor_ms_per_clip_by_dtype": {name: flops / rate * 1e3 for name, rate in rates.items()},
        "threads": torch.get_num_threads(),
    }


def roofline_fraction(row: dict, roofline: dict) -> float | None:
    """The floor time per clip over the measured mean time per clip (1.0 = at the hardware limit)."""
    latency = row.get("latency_ms")
    if not latency:
        return None
    return roofline["floor_ms_per_clip"] / (latency["mean"] / row["batch"])


def describe(roofline: dict) -> str:
    """One line: FLOPs per clip, the measured peak rates, the floor."""
    rates = ", ".join(f"{k} {v / 1e9:,.0f} GFLOP/s" for k, v in roofline["gemm_flops_per_s"].items())
    return (
        f"{roofline['flops_per_clip'] / 1e9:,.1f} GFLOP per clip; peak GEMM ({roofline['gemm_size']}³, "
        f"{roofline['threads']} threads): {rates} -> floor {roofline['floor_ms_per_clip']:,.2f} ms per clip "
        f"at the {roofline['limit_dtype']} rate"
    )
