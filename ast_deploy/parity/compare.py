"""The comparison: every backend against the PyTorch float32 reference, on the same inputs
(:mod:`.inputs`: real audio when given, otherwise seeded signals).

Per backend: max/mean absolute error of logits and of scores, cosine similarity of logit vectors
(worst clip), top-1 and top-5 agreement, and with labels the task metric and its difference from
the reference. Thresholds depend on the artifact's precision (:data:`DEFAULT_THRESHOLDS`). Where the
artifact has an ``embedding`` output, the clip embeddings are judged too: cosine with the reference's
``forward_features`` per clip, bounded per precision (:data:`EMBEDDING_MIN_COSINE`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..cpu import cpu_info
from ..frontend import KaldiFbank
from ..model import apply_activation
from ..runtime.base import Backend, Outputs
from .inputs import ParityInputs, synthetic_inputs


@dataclass(frozen=True)
class Thresholds:
    max_abs_logit: float | None = None  # float32: the same function up to rounding
    min_cosine: float | None = None  # reduced precision: same direction of the logit vector
    min_top1: float | None = None  # ... and the same decision
    # When set, top-1 agreement is judged on decisive clips only: those whose reference top-1 leads
    # the runner-up by at least this many logits (near-ties may legitimately flip).
    decisive_margin: float | None = None


# Why these numbers. float32: export reorders float32 arithmetic only (fusions, matmul blocking),
# worth ~1e-6 relative; 1e-4 absolute leaves margin on logits of order 1-10. FP16/BF16: per-element
# error is ~1e-3 relative, so elementwise bounds would fail on healthy models; what must hold is the
# decision (top-1, 99 % of clips) and the shape of the score vector (cosine). INT8: logit errors are
# ~0.01 on average but reach 0.07 (AST-base) to 0.10 (the quickstart's model) with ONNX Runtime's
# per-tensor activation scales, so top-1 flips wherever the reference's top two are that close, and
# most clips of a random-weight model are. The decision is therefore judged on decisive clips only
# (reference margin >= 0.05 logits) with the same 99 % bar as FP16; cosine >= 0.99. The raw agreement
# and, with labels, the task metric's change are reported beside it.
DEFAULT_THRESHOLDS: dict[str, Thresholds] = {
    "fp32": Thresholds(max_abs_logit=1e-4),
    "fp16": Thresholds(min_cosine=0.999, min_top1=0.99),
    "bf16": Thresholds(min_cosine=0.999, min_top1=0.99),
    "int8": Thresholds(min_cosine=0.99, min_top1=0.99, decisive_margin=0.05),
}


# The clip embedding (the head's input; ast_deploy.model.EMBEDDING_DEFINITION) against the reference's
# forward_features, per clip: the worst cosine must reach this. Measured worst (docs/parity.md#embeddings: four
# fixture models, waveform and fbank graphs, 64 seeded + 8 hard signals and 30 unseen-voice clips): fp32
# 1 - 7e-11 (bound: 1 - 1e-5); fp16 1 - 6e-7 (bound 1 - 5e-4, 800x the measured gap); bf16 0.99990 (bound
# 0.999, 10x); int8 0.99915 (bound 0.99, 12x, the logits' bound). The CLI's logit bounds (--max-abs-logit,
# --min-cosine, --min-top1) leave these alone; run_parity(embedding_thresholds=...) replaces them.
EMBEDDING_MIN_COSINE: dict[str, float] = {"fp32": 0.99999, "fp16": 0.9995, "bf16": 0.999, "int8": 0.99}


def threshold_overrides(
    max_abs_logit: float | None = None, min_cosine: float | None = None, min_top1: float | None = None
) -> dict[str, Thresholds]:
    """Thresholds replacing :data:`DEFAULT_THRESHOLDS` (``run_parity(thresholds=...)``), from the CLI's bounds.

    ``max_abs_logit`` bounds float32 artifacts; ``min_cosine`` and ``min_top1`` both fp16 and bf16
    ones, where a bound not given keeps its default. Bounds not given override nothing.
    """
    overrides = {}
    if max_abs_logit is not None:
        overrides["fp32"] = Thresholds(max_abs_logit=max_abs_logit)
    if min_cosine is not None or min_top1 is not None:
        for precision in ("fp16", "bf16"):
            base = DEFAULT_THRESHOLDS[precision]
            overrides[precision] = Thresholds(
                min_cosine=min_cosine if min_cosine is not None else base.min_cosine,
                min_top1=min_top1 if min_top1 is not None else base.min_top1,
            )
    return overrides


@dataclass
class EmbeddingParity:
    """The clip embeddings of one backend against the reference's (``forward_features``), over the inputs."""

    min_cosine: float  # worst clip
    mean_cosine: float
    max_abs: float  # largest elementwise difference
    bound: float  # the min_cosine it had to reach (EMBEDDING_MIN_COSINE of its precision)


@dataclass
class BackendParity:
    backend: str
    precision: str
    thresholds: Thresholds
    max_abs_logit: float
    mean_abs_logit: float
    max_abs_score: float
    mean_abs_score: float
    min_cosine: float
    mean_cosine: float
    top1_agreement: float
    top5_agreement: float
    top1_decisive: float | None = None  # agreement on clips with a clear reference winner
    decisive_clips: int | None = None
    task_metric: dict | None = None
    failures: list[str] = field(default_factory=list)
    crosscheck: dict | None = None  # a second judge's verdict (parity --crosscheck polygraphy); not ours
    embedding: EmbeddingParity | None = None  # None: the artifact has no embedding output (exported before them)

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict:
        d = asdict(self)
        d["passed"] = self.passed
        if d["crosscheck"] is None:
            del d["crosscheck"]
        return d


@dataclass
class ParityReport:
    inputs: str
    num_inputs: int
    reference: str
    results: list[BackendParity]
    reference_task_metric: dict | None = None
    cpu: dict | None = None  # the CPU the comparison ran on (ast_deploy.cpu): its class decides int8/bf16 kernels
    refused: list[dict] = field(default_factory=list)  # artifacts this machine cannot run: {"backend", "reason"}

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    def to_dict(self) -> dict:
        return {
            "inputs": self.inputs,
            "num_inputs": self.num_inputs,
            "reference": self.reference,
            "reference_task_metric": self.reference_task_metric,
            "cpu": self.cpu,
            "refused": self.refused,
            "passed": self.passed,
            "results": [r.to_dict() for r in self.results],
        }

    def write_json(self, path: str | Path) -> None:
        from ..fileio import write_json

        write_json(path, self.to_dict())


PARITY_BATCH = 8  # per call: 2-3x fewer calls than batch 1, and one static shape for OpenVINO


def parity_batch(spec, num_inputs: int) -> int:
    """The batch parity runs a backend at: :data:`PARITY_BATCH` (or fewer inputs), within the artifact's range."""
    batch = min(PARITY_BATCH, max(num_inputs, 1), spec.max_batch or PARITY_BATCH)
    return max(batch, spec.min_batch)


def run_backend(
    backend: Backend,
    inputs: ParityInputs,
    frontend: KaldiFbank | None,
    batch: int,
    progress: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """Logits (N, labels) on the host, in batches of ``batch``. A backend that compiles one static shape per
    batch size (OpenVINO) runs the last, partial batch padded to ``batch``: one compilation, not two.
    ``progress(inputs done)`` after each batch."""
    return run_outputs(backend, inputs, frontend, batch, progress).logits


def run_outputs(
    backend: Backend,
    inputs: ParityInputs,
    frontend: KaldiFbank | None,
    batch: int,
    progress: Callable[[int], None] | None = None,
    embedding: bool = False,
) -> Outputs:
    """:func:`run_backend`, and with ``embedding`` the clip embeddings (N, embed_dim) from the same calls."""
    logits, embeds = [], []
    pad_to = batch if backend.static_batch_shapes else 1
    for i in range(0, len(inputs.windows), batch):
        x = torch.from_numpy(inputs.windows[i : i + batch])
        n = torch.from_numpy(inputs.lengths[i : i + batch])
        if backend.spec.kind == "fbank":
            with torch.inference_mode():
                out = backend.run(frontend(x, n), None, embedding, pad_to)
        else:
            out = backend.run(x, n, embedding, pad_to)
        logits.append(out.logits.float().cpu())
        if embedding:
            embeds.append(out.embedding.float().cpu())
        if progress:
            progress(min(i + batch, len(inputs.windows)))
    return Outputs(torch.cat(logits), torch.cat(embeds) if embedding else None)


def task_metric(scores: np.ndarray, targets: list[list[int]], activation: str) -> dict:
    """Accuracy for single-label tasks, mAP for multi-label ones (the paper's metrics)."""
    if activation == "softmax":
        hits = [int(np.argmax(s)) in t for s, t in zip(scores, targets)]
        return {"metric": "accuracy", "value": float(np.mean(hits))}
    y = np.zeros_like(scores)
    for row, t in zip(y, targets):
        row[t] = 1
    aps = [average_precision(y[:, c], scores[:, c]) for c in range(y.shape[1]) if y[:, c].any()]
    return {"metric": "mAP", "value": float(np.mean(aps)) if aps else math.nan}


def average_precision(y: np.ndarray, s: np.ndarray) -> float:
    order = np.argsort(-s, kind="stable")
    y = y[order]
    precision = np.cumsum(y) / np.arange(1, len(y) + 1)
    return float((precision * y).sum() / max(y.sum(), 1))


def compare(
    name: str,
    precision: str,
    logits: torch.Tensor,
    ref: torch.Tensor,
    activation: str,
    thresholds: Thresholds,
    targets: list[list[int]] | None,
    embedding: torch.Tensor | None = None,
    ref_embedding: torch.Tensor | None = None,
    min_embedding_cosine: float | None = None,
) -> BackendParity:
    """Judge ``logits`` against the reference's ``ref`` (and, when both are given, ``embedding`` against
    ``ref_embedding``: worst cosine >= ``min_embedding_cosine``, default :data:`EMBEDDING_MIN_COSINE` of ``precision``)."""
    logits, ref = logits.double(), ref.double()
    scores, ref_scores = apply_activation(logits, activation), apply_activation(ref, activation)
    cosine = torch.nn.functional.cosine_similarity(logits, ref, dim=-1)
    k = min(5, ref.shape[-1])
    top5 = [len(set(a.tolist()) & set(b.tolist())) / k for a, b in zip(logits.topk(k).indices, ref.topk(k).indices)]
    result = BackendParity(
        backend=name,
        precision=precision,
        thresholds=thresholds,
        max_abs_logit=float((logits - ref).abs().max()),
        mean_abs_logit=float((logits - ref).abs().mean()),
        max_abs_score=float((scores - ref_scores).abs().max()),
        mean_abs_score=float((scores - ref_scores).abs().mean()),
        min_cosine=float(cosine.min()),
        mean_cosine=float(cosine.mean()),
        top1_agreement=float((logits.argmax(-1) == ref.argmax(-1)).double().mean()),
        top5_agreement=float(np.mean(top5)),
    )
    if targets is not None:
        result.task_metric = task_metric(scores.numpy(), targets, activation)
    t = thresholds
    if not torch.isfinite(logits).all():
        result.failures.append("non-finite logits")
    if t.max_abs_logit is not None and not result.max_abs_logit <= t.max_abs_logit:
        result.failures.append(f"max |logit error| {result.max_abs_logit:.3g} > {t.max_abs_logit:g}")
    if t.min_cosine is not None and not result.min_cosine >= t.min_cosine:
        result.failures.append(f"min cosine {result.min_cosine:.6f} < {t.min_cosine:g}")
    top1 = result.top1_agreement
    if t.decisive_margin is not None:
        best2 = ref.topk(min(2, ref.shape[-1])).values
        decisive = (best2[:, 0] - best2[:, -1]) >= t.decisive_margin
        agree = logits.argmax(-1) == ref.argmax(-1)
        result.decisive_clips = int(decisive.sum())
        result.top1_decisive = top1 = float(agree[decisive].double().mean()) if decisive.any() else 1.0
    if t.min_top1 is not None and not top1 >= t.min_top1:
        what = (
            f"top-1 agreement on clips decided by >= {t.decisive_margin} logits"
            if t.decisive_margin
            else "top-1 agreement"
        )
        result.failures.append(f"{what} {top1:.3f} < {t.min_top1:g}")
    if embedding is not None and ref_embedding is not None:
        bound = EMBEDDING_MIN_COSINE[precision] if min_embedding_cosine is None else min_embedding_cosine
        result.embedding = judge_embedding(embedding, ref_embedding, bound, result.failures)
    return result


def judge_embedding(embedding: torch.Tensor, ref: torch.Tensor, bound: float, failures: list[str]) -> EmbeddingParity:
    """Per-clip cosine of the embeddings with the reference's; a failure line when the worst is below ``bound``."""
    embedding, ref = embedding.double(), ref.double()
    cosine = torch.nn.functional.cosine_similarity(embedding, ref, dim=-1)
    result = EmbeddingParity(
        min_cosine=float(cosine.min()),
        mean_cosine=float(cosine.mean()),
        max_abs=float((embedding - ref).abs().max()),
        bound=bound,
    )
    if not torch.isfinite(embedding).all():
        failures.append("non-finite embedding")
    elif not result.min_cosine >= bound:
        failures.append(f"min embedding cosine {result.min_cosine:.6f} < {bound:g}")
    return result


ParityProgress = Callable[[str, int, int], None]  # (backend, inputs done, inputs in all)


def run_parity(
    artifacts,
    backends: list[str] | None = None,
    inputs: ParityInputs | None = None,
    n: int = 16,
    device: str = "cpu",
    thresholds: dict[str, Thresholds] | None = None,
    seed: int = 0,
    progress: ParityProgress | None = None,
    embedding_thresholds: dict[str, float] | None = None,
) -> ParityReport:
    """Compare ``backends`` (default: every artifact in the manifest this machine can run; the others are
    listed in ``refused`` with the reason) with PyTorch float32. A backend named in ``backends`` that cannot
    run here raises :class:`~ast_deploy.errors.UnavailableError`.

    The reference runs once for all backends; every backend runs at :func:`parity_batch`. A backend whose
    graph has the clip embedding (every artifact exported since embeddings) has it judged too
    (``embedding_thresholds`` replaces :data:`EMBEDDING_MIN_COSINE` per precision); an older one, its logits only.
    ``progress(backend, done, total)`` reports each batch ("pytorch" is the reference)."""
    from ..artifacts import ArtifactDir

    artifacts = artifacts if isinstance(artifacts, ArtifactDir) else ArtifactDir(artifacts)
    thresholds = {**DEFAULT_THRESHOLDS, **(thresholds or {})}
    embedding_bounds = {**EMBEDDING_MIN_COSINE, **(embedding_thresholds or {})}
    if inputs is None:
        inputs = synthetic_inputs(artifacts, n, seed)
    frontend = KaldiFbank(artifacts.frontend_config)
    batch = parity_batch(artifacts.spec, len(inputs.windows))
    total = len(inputs.windows)

    def reporter(name: str) -> Callable[[int], None] | None:
        return None if progress is None else (lambda done: progress(name, done, total))

    if progress:
        progress("pytorch", 0, total)
    reference = artifacts.open("pytorch", "cpu")
    ref, ref_embedding = run_outputs(reference, inputs, frontend, batch, reporter("pytorch"), embedding=True)
    ref_metric = (
        task_metric(apply_activation(ref.double(), artifacts.activation).numpy(), inputs.labels, artifacts.activation)
        if inputs.labels
        else None
    )
    results, refused = [], []
    if backends is None:
        backends = []
        for name in artifacts.artifact_names():
            reason = artifacts.unavailable(name, device)
            if reason:
                refused.append({"backend": name, "reason": reason})
            else:
                backends.append(name)
    precisions = {a["name"]: a["precision"] for a in artifacts.manifest["artifacts"]}
    for name in backends:
        if progress:
            progress(name, 0, total)
        backend = artifacts.open(name, device)
        try:
            logits, embedding = run_outputs(
                backend, inputs, frontend, batch, reporter(name), embedding=backend.has_embedding
            )
        finally:
            backend.close()
        precision = precisions.get(name, backend.precision)
        result = compare(
            name, precision, logits, ref, artifacts.activation, thresholds[precision], inputs.labels,
            embedding, ref_embedding, embedding_bounds[precision],
        )  # fmt: skip
        if result.task_metric and ref_metric:
            result.task_metric["difference"] = result.task_metric["value"] - ref_metric["value"]
        results.append(result)
    return ParityReport(
        inputs.description,
        len(inputs.windows),
        "pytorch float32 (cpu)",
        results,
        ref_metric,
        cpu_info().to_dict(),
        refused,
    )


# Errors are absolute differences from the PyTorch float32 reference; "emb cos": the worst clip's embedding cosine.
COLUMNS = (
    "backend", "prec", "max Δlogit", "mean Δlogit", "max Δscore", "min cos", "emb cos", "top-1", "top-5", "task", "ok",
)  # fmt: skip


def table_cells(rows: list[dict]) -> list[list[str]]:
    """One row of :data:`COLUMNS` per artifact (with a ``parity`` entry) or parity result."""
    cells = []
    for row in rows:
        p = row.get("parity", row)
        if not p:
            cells.append([row["name"], row["precision"], *["-"] * 8, "not checked"])
            continue
        task = p.get("task_metric")
        top1 = f"{p['top1_agreement']:.0%}"
        if p.get("top1_decisive") is not None:  # int8: agreement on clips with a clear winner, too
            top1 += f" ({p['top1_decisive']:.0%} of {p['decisive_clips']})"
        cells.append([
            p["backend"], p["precision"], f"{p['max_abs_logit']:.1e}", f"{p['mean_abs_logit']:.1e}",
            f"{p['max_abs_score']:.1e}", f"{p['min_cosine']:.5f}",
            f"{p['embedding']['min_cosine']:.5f}" if p.get("embedding") else "-", top1, f"{p['top5_agreement']:.0%}",
            f"{task['metric']} {task['value']:.3f} ({task.get('difference', 0):+.3f})" if task else "-",
            "yes" if p["passed"] else "NO: " + "; ".join(p["failures"]),
        ])  # fmt: skip
    return cells


def table(rows: list[dict]):
    """The parity results as a rich table."""
    from rich.table import Table

    out = Table()
    for column in COLUMNS:
        out.add_column(column, justify="left" if column in ("backend", "prec", "ok") else "right")
    for cells in table_cells(rows):
        out.add_row(*cells)
    return out


def markdown(rows: list[dict], title: str) -> str:
    """The parity results as a markdown table."""
    lines = [f"**{title}**", "", "| " + " | ".join(COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |" for cells in table_cells(rows)]
    return "\n".join(lines) + "\n"
