"""``ast-deploy export``: a checkpoint becomes an artifact directory with a manifest.

One module per target format (``torchscript``, ``onnx``, ``onnx_fp16``, ``onnx_int8``, ``aoti``,
``aoti_int8``, ``openvino``, ``openvino_int8``, ``tensorrt``), each exposing ``NAME`` (the artifact), ``FORMAT`` (the runtime that
runs it: several artifacts share one), ``FILE``, ``PRECISION``, ``REQUIRES``, ``unavailable()`` and
``build(graph, path, deps, options)``. This module orders them, builds intermediates a requested
format needs (an FP16 ONNX for TensorRT, say) without publishing them, checks parity, and writes
the directory atomically.
"""

from __future__ import annotations

import dataclasses
import datetime
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from ..checkpoints import LoadOptions, load_checkpoint, save_checkpoint
from ..errors import InputError, UnavailableError
from ..fileio import atomic_dir, sha256_file
from ..runtime import registry
from ..windows import frame_samples, window_length
from . import aoti, aoti_int8, onnx, onnx_fp16, onnx_int8, openvino, openvino_int8, tensorrt, torchscript
from .graph import BatchRange, ExportOptions, build_graph
from .manifest import FORMAT, FORMAT_VERSION, embedding_entry, file_entries, output_entries, write_manifest

FORMATS = {
    m.NAME: m for m in (torchscript, onnx, onnx_fp16, onnx_int8, aoti, aoti_int8, openvino, openvino_int8, tensorrt)
}
REFERENCE_DIR = "reference"


class ParityFailure(Exception):
    """Some artifacts failed parity; the directory was published without them (exit status 1).

    ``manifest`` is what was published, with ``failed`` naming each failure and its parity figures."""

    def __init__(self, message: str, manifest: dict):
        super().__init__(message)
        self.manifest = manifest


def runnable_variants(artifact_names: list[str], device: str = "cpu") -> list[str]:
    """Registry variants of ``artifact_names`` (``openvino-int8-bf16``, ...) that can run on ``device`` here."""
    return [
        name
        for name, entry in registry.entries().items()
        if entry.artifact in artifact_names and registry.unavailable(name, device) is None
    ]


def parse_formats(text: str) -> tuple[list[str], bool]:
    """``--to`` -> (format names, whether unavailable ones are skipped rather than fatal)."""
    if text.strip() in ("all-available", "all"):
        return list(FORMATS), True
    names = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [n for n in names if n not in FORMATS]
    if unknown or not names:
        raise InputError(
            f"--to {text!r}: unknown format {unknown[0] if unknown else ''!r}; "
            f"known: {', '.join(FORMATS)}, all-available"
        )
    return names, False


def build_order(requested: list[str]) -> list[str]:
    """Requested formats plus their prerequisites, prerequisites first."""
    order: list[str] = []

    def visit(name: str) -> None:
        for dep in FORMATS[name].REQUIRES:
            visit(dep)
        if name not in order:
            order.append(name)

    for name in requested:
        visit(name)
    return order


def export(
    checkpoint: str | Path,
    out: str | Path,
    to: str = "all-available",
    input_kind: str = "waveform",
    batch: str = "1:1:32",
    clip_seconds: float | None = None,
    verify: bool = True,
    force: bool = False,
    load_options: LoadOptions | None = None,
    options: ExportOptions | None = None,
    parity_inputs=None,
    log: Callable[[str], None] = print,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict:
    """Export ``checkpoint`` to ``out``; returns the manifest. Raises :class:`ParityFailure` after
    publishing when an artifact failed parity (the failing files are not published); its ``manifest``
    holds what was published and what failed. ``progress(backend, done, total)`` follows parity."""
    from ..parity.compare import run_parity

    checkpoint, out = Path(checkpoint), Path(out)
    requested, skip_unavailable = parse_formats(to)
    batch_range = BatchRange.parse(batch)
    if out.exists() and not force:
        raise InputError(f"{out}: already exists (use --force to replace it)")
    ckpt = load_checkpoint(checkpoint, load_options)
    graph = build_graph(ckpt, input_kind, batch_range, clip_seconds)

    skipped = []
    for name in list(requested):
        reason = FORMATS[name].unavailable()
        if reason:
            if not skip_unavailable:
                raise UnavailableError(f"--to {name}: {reason}")
            skipped.append({"name": name, "reason": reason})
            requested.remove(name)
            log(f"skipping {name}: {reason}")
    if not requested:
        raise UnavailableError("no requested format can be produced on this machine")
    options = options or ExportOptions()
    if options.calibration:  # read (and reject bad files) before anything is built
        from .calibration import load_calibration

        window = window_length(graph.spec.num_samples, ckpt.frontend)
        graph.calibration = load_calibration(options.calibration, ckpt.labels, window, graph.spec.sample_rate)
    if options.timing_cache is None:  # beside the output directory, so that re-exports reuse it
        options = dataclasses.replace(options, timing_cache=out.parent / f".{out.name}.tensorrt-timing.cache")

    with atomic_dir(out, overwrite=force) as tmp, tempfile.TemporaryDirectory(dir=tmp.parent) as scratch:
        save_checkpoint(tmp / REFERENCE_DIR, ckpt.config, ckpt.state_dict, ckpt.labels, ckpt.frontend)
        paths: dict[str, Path] = {}
        artifacts = []
        for name in build_order(requested):
            fmt = FORMATS[name]
            path = (tmp if name in requested else Path(scratch)) / fmt.FILE
            log(f"building {name} ...")
            start = time.perf_counter()
            info = fmt.build(graph, path, paths, options)
            paths[name] = path
            # FILE first (what a runtime opens), then any companions the module lists in FILES; a module whose
            # files depend on the graph returns them, primary first, as "files".
            written = info.pop("files", None) or [fmt.FILE, *(f for f in getattr(fmt, "FILES", ()) if f != fmt.FILE)]
            if name in requested:
                files = file_entries(tmp, written)
                artifacts.append(
                    {
                        "name": name,
                        "files": files,
                        "format": fmt.FORMAT,
                        "precision": fmt.PRECISION,
                        "opset": info.pop("opset", None),
                        "build_seconds": round(time.perf_counter() - start, 2),
                        **info,
                        "parity": None,
                    }
                )
                log(
                    f"built {name}: {', '.join(f['file'] for f in files)} "
                    f"({sum(f['bytes'] for f in files) / 2**20:.1f} MiB, {time.perf_counter() - start:.1f} s)"
                )
        manifest = make_manifest(checkpoint, ckpt, graph, batch_range, artifacts, skipped)
        write_manifest(tmp, manifest)

        failed = []
        if verify:
            log("checking parity against PyTorch float32 ...")
            variants = runnable_variants([a["name"] for a in artifacts])
            report = run_parity(
                tmp, [a["name"] for a in artifacts] + variants, inputs=parity_inputs, progress=progress
            )  # engines run on the GPU regardless
            by_name = {r.backend: {**r.to_dict(), "inputs": report.inputs, "cpu": report.cpu} for r in report.results}
            for artifact in artifacts:
                artifact["parity"] = by_name[artifact["name"]]
                # Variants (openvino-int8-bf16 runs this artifact in bf16) are judged too: a variant is chosen
                # by default only where it passed. A failing variant costs the artifact nothing.
                checked = {v: by_name[v] for v in variants if registry.get(v).artifact == artifact["name"]}
                if checked:
                    artifact["variants"] = checked
                for name, result in checked.items():
                    if not result["passed"]:
                        log(f"parity failed for variant {name}: {'; '.join(result['failures'])} (not used by default)")
                if not artifact["parity"]["passed"]:
                    failed.append(artifact)
                    for entry in artifact["files"]:
                        (tmp / entry["file"]).unlink(missing_ok=True)
                    log(
                        f"parity FAILED for {artifact['name']}: {'; '.join(artifact['parity']['failures'])} "
                        "(not published)"
                    )
            manifest["artifacts"] = [a for a in artifacts if a not in failed]
            manifest["failed"] = [{"name": a["name"], "parity": a["parity"]} for a in failed]
            write_manifest(tmp, manifest)
    if failed:
        raise ParityFailure(
            f"{', '.join(a['name'] for a in failed)} failed parity and were not published in {out}", manifest
        )
    return manifest


def make_manifest(source: Path, ckpt, graph, batch: BatchRange, artifacts: list[dict], skipped: list[dict]) -> dict:
    from .. import __version__

    spec = graph.spec
    dynamic = {name: {"0": "batch"} for name in [*spec.input_names, *graph.output_names]}
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "ast_deploy_version": __version__,
        "source": {
            "path": str(source.resolve()),
            "format": ckpt.format,
            "sha256": sha256_file(source) if source.is_file() else _sha256_dir(source),
        },
        "reference": {"path": REFERENCE_DIR, "format": "ast-deploy"},
        "model": ckpt.config.to_dict(),
        "labels": ckpt.labels,
        "activation": ckpt.config.activation,
        "input": {
            "kind": spec.kind,
            "sample_rate": spec.sample_rate,
            "num_samples": spec.num_samples,
            # The window rule's sizes, so that no reader recomputes them (the C++ runtime reads them).
            "window_samples": window_length(spec.num_samples, ckpt.frontend),
            "frame_samples": frame_samples(ckpt.frontend),
            "num_frames": spec.num_frames,
            "num_mel_bins": spec.num_mel_bins,
            "dtype": "float32",
            "names": list(spec.input_names),
            "dtypes": {"waveform": "float32", "num_samples": "int64"}
            if spec.kind == "waveform"
            else {"fbank": "float32"},
            "output": "logits",
            "batch": {"min": batch.min, "opt": batch.opt, "max": batch.max},
            "dynamic_axes": dynamic,
            "normalization": {
                "mean": ckpt.frontend.mean,
                "std": ckpt.frontend.std,
                "formula": "(fbank - mean) / (2 * std)",
            },
            "frontend": ckpt.frontend.to_dict(),
        },
        "outputs": output_entries(ckpt.config),
        "embedding": embedding_entry(ckpt.config),
        "artifacts": artifacts,
        "skipped": skipped,
        "environment": {"torch": torch.__version__},
    }


def _sha256_dir(path: Path) -> str:
    """A directory checkpoint's digest: sha256 over its files' names and digests, sorted."""
    import hashlib

    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(f"{f.relative_to(path)}\0{sha256_file(f)}\n".encode())
    return h.hexdigest()


__all__ = ["FORMATS", "ExportOptions", "ParityFailure", "export", "parse_formats"]
