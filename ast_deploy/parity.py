"""Parity: every artifact against the PyTorch float32 reference, on the same inputs.

Inputs are real audio when given (files or a labelled manifest), otherwise seeded signals that
cover what a deployment sees: speech-like harmonic sounds, noise at several levels, tones and
sweeps, near-silence, and clips shorter than the window (which exercise feature-domain padding).

Per backend: max/mean absolute error of logits and of scores, cosine similarity of logit vectors
(worst clip), top-1 and top-5 agreement, and with labels the task metric and its difference from
the reference. Thresholds depend on the artifact's precision (:data:`DEFAULT_THRESHOLDS`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from .audio import load_audio
from .cpu import cpu_info
from .frontend import KaldiFbank
from .labels import LABEL_SETS, LabelSet, builtin_label_set
from .model import apply_activation
from .runtime.base import Backend
from .windows import cut_windows, window_length


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
class ParityInputs:
    """Waveform windows (and their valid lengths) plus optional labels (indices per clip)."""

    windows: np.ndarray  # (N, samples)
    lengths: np.ndarray  # (N,)
    description: str
    labels: list[list[int]] | None = None


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
        from .fileio import write_json

        write_json(path, self.to_dict())


# --- inputs -----------------------------------------------------------------------------------


def synthetic_signals(n: int, num_samples: int, sample_rate: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` seeded test signals of up to ``num_samples`` (every 4th shorter than the window)."""
    rng = np.random.default_rng(seed)
    t = np.arange(num_samples) / sample_rate
    out = np.zeros((n, num_samples), dtype=np.float32)
    lengths = np.full(n, num_samples, dtype=np.int64)
    for i in range(n):
        kind = i % 5
        if kind == 0:  # speech-like: a gliding harmonic source through formant-ish peaks, syllable envelope
            f0 = rng.uniform(90, 220) * (1 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t))
            phase = 2 * np.pi * np.cumsum(f0) / sample_rate
            formants = rng.uniform([300, 900, 2200], [900, 2000, 3200])
            x = sum(
                np.sin(k * phase) * np.exp(-((k * f0.mean() - formants[:, None]) ** 2).min(0) / 2e5)
                for k in range(1, 30)
            )
            x *= np.clip(np.sin(2 * np.pi * rng.uniform(2, 5) * t), 0, None) ** 2
        elif kind == 1:  # white or brown noise at a random level
            x = rng.standard_normal(num_samples)
            if rng.random() < 0.5:
                x = np.cumsum(x)
                x -= x.mean()
        elif kind == 2:  # tones and a sweep
            x = sum(np.sin(2 * np.pi * f * t) for f in rng.uniform(100, 6000, size=3))
            x += np.sin(2 * np.pi * (100 + 3000 * t / t[-1]) * t)
        elif kind == 3:  # near-silence with a click train
            x = rng.standard_normal(num_samples) * 1e-4
            x[:: int(sample_rate * rng.uniform(0.05, 0.3))] += 0.5
        else:  # impulsive events in noise
            x = rng.standard_normal(num_samples) * 0.01
            for start in rng.integers(0, num_samples - 2000, size=5):
                x[start : start + 2000] += rng.standard_normal(2000) * np.hanning(2000)
        x = x / (np.abs(x).max() + 1e-9) * rng.uniform(0.05, 0.9)
        if i % 4 == 3:  # a clip shorter than the window: padded in the feature domain
            lengths[i] = int(rng.integers(num_samples // 4, num_samples))
            x[lengths[i] :] = 0.0
        out[i] = x.astype(np.float32)
    return out, lengths


HARD_SIGNALS = (
    "silence", "dc offset", "clipped noise", "clipped square wave", "very quiet noise", "very loud sweep",
    "speech-like in noise", "speech-like over mains hum",
)  # fmt: skip


def hard_signals(num_samples: int, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """:data:`HARD_SIGNALS`: the edges of what a deployment sees, where reduced precision breaks first.

    Digital silence and a DC offset (the front end subtracts the mean: the log-mel floor everywhere),
    full-scale clipping (broadband, maximal energy in every bin), audio 100 dB down (spectra near the
    floor), a full-scale sweep, and mixtures. A static int8 scale calibrated on ordinary audio clips
    the loud ones and drowns the quiet ones; an int16-saturating int8 kernel fails on the loud ones.
    """
    rng = np.random.default_rng(12345)  # fixed: the same signals everywhere, unlike the seeded ones
    t = np.arange(num_samples) / sample_rate
    speech, _ = synthetic_signals(1, num_samples, sample_rate, seed=99)
    signals = [
        np.zeros(num_samples),
        np.full(num_samples, 0.3),
        np.clip(rng.standard_normal(num_samples) * 3, -1, 1),
        np.sign(np.sin(2 * np.pi * 150 * t)),
        rng.standard_normal(num_samples) * 1e-5,
        0.99 * np.sin(2 * np.pi * (50 + 7000 * t / max(t[-1], 1e-9)) * t),
        speech[0] + rng.standard_normal(num_samples) * 0.05,
        speech[0] + 0.3 * np.sin(2 * np.pi * 50 * t),
    ]
    return np.stack(signals).astype(np.float32), np.full(len(signals), num_samples, dtype=np.int64)


def synthetic_inputs(artifacts, n: int = 16, seed: int = 0, hard: bool = True) -> ParityInputs:
    """What :func:`run_parity` compares on when given no inputs: ``n`` seeded signals of the artifact's window,
    plus (``hard``) the :data:`HARD_SIGNALS`."""
    window = window_length(artifacts.spec.num_samples, artifacts.frontend_config)
    windows, lengths = synthetic_signals(n, window, artifacts.spec.sample_rate, seed)
    description = f"{n} seeded synthetic signals (seed {seed})"
    if hard:
        hard_windows, hard_lengths = hard_signals(window, artifacts.spec.sample_rate)
        windows, lengths = np.concatenate([windows, hard_windows]), np.concatenate([lengths, hard_lengths])
        description += f" + {len(hard_windows)} hard signals"
    return ParityInputs(windows, lengths, description)


def audio_inputs(paths: list[Path], window: int, sample_rate: int) -> ParityInputs:
    windows, lengths = [], []
    for path in paths:
        w, n, _ = cut_windows(load_audio(path, sample_rate), window, window)
        windows.append(w)
        lengths.append(n)
    return ParityInputs(np.concatenate(windows), np.concatenate(lengths), f"{len(paths)} audio files")


def model_label_set(labels: list[str]) -> LabelSet:
    """The model's labels; with the machine ids of the shipped set they come from, if any, so that the
    authors' JSON manifests (which name labels by mid) resolve."""
    for name in LABEL_SETS:
        known = builtin_label_set(name)
        if known.names == labels:
            return known
    return LabelSet(list(labels), list(labels))


def manifest_inputs(
    manifest: Path, labels: list[str], window: int, sample_rate: int, limit: int | None
) -> ParityInputs:
    """The first window of each clip of a labelled manifest (any format ``ast_deploy.manifests`` reads)."""
    from .manifests import read_split

    examples = read_split(manifest, model_label_set(labels), multi_label=True).examples[:limit]
    windows, lengths = [], []
    for example in examples:
        w, n, _ = cut_windows(load_audio(example.path, sample_rate, head=window), window, window)
        windows.append(w)  # one window: only that much of the file is decoded
        lengths.append(n)
    targets = [list(e.labels) for e in examples]
    return ParityInputs(
        np.concatenate(windows), np.concatenate(lengths), f"{len(examples)} clips of {manifest}", targets
    )


# --- comparison -------------------------------------------------------------------------------


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
    out = []
    pad_to = batch if backend.static_batch_shapes else 1
    for i in range(0, len(inputs.windows), batch):
        x = torch.from_numpy(inputs.windows[i : i + batch])
        n = torch.from_numpy(inputs.lengths[i : i + batch])
        if backend.spec.kind == "fbank":
            with torch.inference_mode():
                logits = backend.run_padded(frontend(x, n), None, pad_to)
        else:
            logits = backend.run_padded(x, n, pad_to)
        out.append(logits.float().cpu())
        if progress:
            progress(min(i + batch, len(inputs.windows)))
    return torch.cat(out)


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
) -> BackendParity:
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
) -> ParityReport:
    """Compare ``backends`` (default: every artifact in the manifest this machine can run; the others are
    listed in ``refused`` with the reason) with PyTorch float32. A backend named in ``backends`` that cannot
    run here raises :class:`~ast_deploy.errors.UnavailableError`.

    The reference runs once for all backends; every backend runs at :func:`parity_batch`.
    ``progress(backend, done, total)`` reports each batch ("pytorch" is the reference)."""
    from .artifacts import ArtifactDir

    artifacts = artifacts if isinstance(artifacts, ArtifactDir) else ArtifactDir(artifacts)
    thresholds = {**DEFAULT_THRESHOLDS, **(thresholds or {})}
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
    ref = run_backend(reference, inputs, frontend, batch, reporter("pytorch"))
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
            logits = run_backend(backend, inputs, frontend, batch, reporter(name))
        finally:
            backend.close()
        precision = precisions.get(name, backend.precision)
        result = compare(name, precision, logits, ref, artifacts.activation, thresholds[precision], inputs.labels)
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


# Errors are absolute differences from the PyTorch float32 reference.
COLUMNS = ("backend", "prec", "max Δlogit", "mean Δlogit", "max Δscore", "min cos", "top-1", "top-5", "task", "ok")


def table_cells(rows: list[dict]) -> list[list[str]]:
    """One row of :data:`COLUMNS` per artifact (with a ``parity`` entry) or parity result."""
    cells = []
    for row in rows:
        p = row.get("parity", row)
        if not p:
            cells.append([row["name"], row["precision"], *["-"] * 7, "not checked"])
            continue
        task = p.get("task_metric")
        top1 = f"{p['top1_agreement']:.0%}"
        if p.get("top1_decisive") is not None:  # int8: agreement on clips with a clear winner, too
            top1 += f" ({p['top1_decisive']:.0%} of {p['decisive_clips']})"
        cells.append([
            p["backend"], p["precision"], f"{p['max_abs_logit']:.1e}", f"{p['mean_abs_logit']:.1e}",
            f"{p['max_abs_score']:.1e}", f"{p['min_cosine']:.5f}", top1, f"{p['top5_agreement']:.0%}",
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
