"""What ``benchmarks/side_by_side.py`` judges: each backend's quality against the float32 reference on
real audio, and the targets (speed-ups over transformers and over the fastest peer, quality, the GPU's
fraction of the matmul peak) checked on a finished result document.

:func:`check_targets`, :func:`target_lines` and :func:`derived_notes` are functions of the document
alone, so that ``side_by_side.py --render`` re-derives them from a committed run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..audio import load_audio
from ..frontend import KaldiFbank
from ..parity.compare import Thresholds, compare, run_backend
from ..parity.inputs import ParityInputs
from ..runtime.base import Backend
from ..windows import cut_windows
from .peers import PEER_BY_NAME

DECISIVE_MARGIN = 0.05  # logits; INT8's logit error here is ~0.05, bf16's ~0.02


# --- quality: every backend against the float32 reference, on the same windows ---------------------


def quality_inputs(files: list[Path], window: int, sample_rate: int) -> ParityInputs | None:
    """Windows of real audio (half-window hop) for the quality check; ``None`` without files."""
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


def quality(
    backend: Backend, inputs: ParityInputs, frontend: KaldiFbank, reference: torch.Tensor, activation: str
) -> dict:
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


# --- targets ---------------------------------------------------------------------------------------


# Targets for AST-base at 1024 frames, batch 1 (issues 5 and 11). CPU: the fastest of this toolkit's
# backends that keeps the quality target, against transformers in float32 and under bf16 autocast,
# and against the fastest peer a CPU user would pick instead that keeps the same quality target: at
# least as fast, stretch 1.2x. Quality: cosine of the logits against float32 on every
# clip, and top-1 agreement on the decisive clips (issue 11's int8 target, better than OpenVINO's
# default quantisation). GPU: half of the measured matmul peak.
CPU_SPEEDUP_TARGETS = {"transformers": 3.5, "transformers-autocast-bf16": 1.3}
PEER_SPEEDUP_TARGETS = {
    "speed-up over the fastest peer at the quality target": 1.0,
    "stretch: speed-up over the fastest peer at the quality target": 1.2,
}
MIN_COSINE, MIN_TOP1 = 0.995, 0.99
GPU_FLOOR_FRACTION = 0.5


def _target(name: str, row: dict, value: float | None, threshold: float) -> dict:
    met = value is not None and value >= threshold
    return {"target": name, "input": row["input"], "backend": row["backend"], "batch": row["batch"],
            "value": value, "threshold": threshold, "met": met}  # fmt: skip


def top1(r: dict) -> float | None:
    """A row's top-1 agreement: on the decisive clips where the run has them, else on all."""
    q = r["quality"] or {}
    return q.get("top1_decisive") if q.get("top1_decisive") is not None else q.get("top1_agreement")


def passes(r: dict) -> bool:
    """The quality target: worst-clip cosine and top-1 agreement against float32."""
    q = r["quality"]
    return q is not None and q["min_cosine"] >= MIN_COSINE and (top1(r) or 0) >= MIN_TOP1


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

    for kind in ("fbank", "waveform"):
        rows = [r for r in ok if r["input"] == kind and r["batch"] == 1]
        if not rows:
            continue
        best = max([r for r in rows if passes(r)] or rows, key=lambda r: r["throughput_clips_per_s"])
        for baseline, threshold in CPU_SPEEDUP_TARGETS.items():
            out.append(_target(f"speed-up over {baseline}", best, (best["speedup"] or {}).get(baseline), threshold))
        # Against the fastest peer that passes the same quality gate (issue 18): a peer that is faster
        # by giving wrong answers (OpenVINO's int8 defaults: worst cosine 0.63 on AST-base) is no
        # alternative. The fastest at any quality is reported beside it (peer_lines).
        peers = [r for r in peer_rows if r["input"] == kind and r["batch"] == 1 and passes(r)]
        if peers:
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


DERIVED = (
    "Targets, ",
    "Fastest peer at any quality",
    "int8 loses to bf16 ",
    "int8 is at least as fast ",
)  # how derived notes start


def derived_notes(doc: dict) -> list[str]:
    """The sentences re-derived from the rows (targets, int8 vs bf16), replacing earlier ones."""
    kept = [n for n in doc.get("notes", []) if not n.startswith(DERIVED)]
    return [*kept, *target_lines(doc), *peer_lines(doc), *int8_vs_bf16_lines(doc)]


def peer_lines(doc: dict) -> list[str]:
    """Where the fastest peer at any quality is not the one the targets compare with: what it gives up."""
    lines = []
    for kind, what in (("fbank", "model only"), ("waveform", "end to end")):
        best = next((t for t in doc.get("targets", []) if t["input"] == kind), None)
        peers = [r for r in doc["results"] if r["status"] == "ok" and r["backend"] in PEER_BY_NAME
                 and r["input"] == kind and r["batch"] == 1]  # fmt: skip
        if best is None or not peers:
            continue
        fastest = max(peers, key=lambda r: r["throughput_clips_per_s"])
        if passes(fastest):
            continue
        mine = next(r for r in doc["results"] if (r["input"], r["backend"], r["batch"]) == (kind, best["backend"], 1))
        q = fastest["quality"] or {}
        ratio = mine["throughput_clips_per_s"] / fastest["throughput_clips_per_s"]
        lines.append(
            f"Fastest peer at any quality, {what}: {fastest['backend']} ({best['backend']} runs at {ratio:.2f}× "
            f"its speed), but its worst cosine {q.get('min_cosine', float('nan')):.3f} and top-1 "
            f"{top1(fastest) or 0:.0%} miss the quality target ({MIN_COSINE} / {MIN_TOP1:.0%}): the targets "
            "compare with the fastest peer that meets it."
        )
    return lines


__all__ = [
    "CPU_SPEEDUP_TARGETS",
    "DECISIVE_MARGIN",
    "MIN_COSINE",
    "MIN_TOP1",
    "check_targets",
    "derived_notes",
    "int8_vs_bf16_lines",
    "quality",
    "quality_inputs",
    "target_lines",
]
