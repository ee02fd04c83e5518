"""polygraphy as a second judge: ``parity --crosscheck polygraphy`` runs our gates (as the hand-off's
checks, :func:`ast_deploy.parity.handoff.gate_checks`) through polygraphy's ``Comparator`` (its ONNX
Runtime runner for ONNX artifacts, its TensorRT runner for engines where TensorRT exists) and reports
polygraphy's verdict beside ours (:func:`crosscheck`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..errors import UnavailableError
from ..export.manifest import verify_artifact
from ..extras import missing
from ..runtime.tensorrt import tensorrt_missing
from .compare import DEFAULT_THRESHOLDS
from .handoff import (
    POLYGRAPHY_FORMATS,
    README_FILE,
    REFERENCE_RUNNER,
    Check,
    HandoffData,
    gate_checks,
    handoff_data,
    quiet,
    require_polygraphy,
    write_handoff,
)


@dataclass
class CrossCheck:
    """polygraphy's verdict on one artifact, beside ours."""

    backend: str
    runner: str | None
    passed: bool | None  # None: not run
    checks: list[dict] = field(default_factory=list)
    skipped: str | None = None
    agrees: bool | None = None

    def to_dict(self) -> dict:
        return {"tool": "polygraphy", **asdict(self)}


def _runner(artifact: dict, path: Path):
    if artifact["format"] == "onnx":
        from polygraphy.backend.onnxrt import OnnxrtRunner, SessionFromOnnx

        return OnnxrtRunner(SessionFromOnnx(str(path), providers=["cpu"]), name=f"onnxrt:{artifact['name']}")
    from polygraphy.backend.common import BytesFromPath
    from polygraphy.backend.trt import EngineFromBytes, TrtRunner

    return TrtRunner(EngineFromBytes(BytesFromPath(str(path))), name=f"trt:{artifact['name']}")


def _unavailable(artifact: dict) -> str | None:
    if artifact["format"] not in POLYGRAPHY_FORMATS:
        return f"polygraphy runs ONNX and TensorRT artifacts, not {artifact['format']}"
    if artifact["format"] == "tensorrt":
        return tensorrt_missing()
    return missing("onnxruntime", "onnx")


def run_checks(runner, data: HandoffData, checks: list[Check]) -> list[dict]:
    """Run ``runner`` on the feeds once and apply each check against the reference; polygraphy decides."""
    from polygraphy.comparator import Comparator, RunResults
    from polygraphy.comparator.postprocess import TopKPostprocessFunc
    from polygraphy.exception import PolygraphyException

    try:
        with quiet():
            outputs = Comparator.run([runner], data_loader=data.feeds)
    except PolygraphyException as e:
        raise UnavailableError(f"polygraphy could not run {runner.name}: {str(e).splitlines()[0]}") from None
    ((name, iterations),) = list(outputs.items())
    arrays = [np.asarray(it["logits"]) for it in iterations]
    verdicts = []
    for check in checks:
        results = RunResults()
        results.add([{"logits": a.copy()} for a in arrays], runner_name=name)
        results.add([{"logits": r.copy()} for r in data.reference], runner_name=REFERENCE_RUNNER)
        with quiet():
            if check.kind == "top1":
                results = Comparator.postprocess(results, TopKPostprocessFunc(k=1))
            accuracy = Comparator.compare_accuracy(results, compare_func=check.compare_func())
        ((_, per_iteration),) = list(accuracy[0].items())
        passed_iterations = sum(all(bool(v) for v in it.values()) for it in per_iteration)
        verdicts.append(
            {
                "check": check.label,
                "flags": check.flags,
                "gate": check.gate,
                "passed": bool(accuracy),
                "iterations_passed": passed_iterations,
                "iterations": len(per_iteration),
            }
        )
    return verdicts


def crosscheck(artifacts, data: HandoffData, results, thresholds: dict | None = None) -> list[CrossCheck]:
    """polygraphy's verdict on each backend of ``results`` (our :class:`BackendParity` list)."""
    require_polygraphy()
    thresholds = {**DEFAULT_THRESHOLDS, **(thresholds or {})}
    out = []
    for ours in results:
        artifact = artifacts.artifact(ours.backend)
        reason = "not an artifact of this directory" if artifact is None else _unavailable(artifact)
        if reason:
            out.append(CrossCheck(ours.backend, None, None, skipped=reason))
            continue
        checks = gate_checks(thresholds[artifact["precision"]], data.reference)
        runner = _runner(artifact, verify_artifact(artifacts.path, artifact))
        verdicts = run_checks(runner, data, checks)
        passed = all(v["passed"] for v in verdicts if v["gate"])
        out.append(CrossCheck(ours.backend, runner.name.split(":")[0], passed, verdicts, agrees=passed == ours.passed))
    return out


def crosscheck_lines(checks: list[CrossCheck], ours: dict[str, bool]) -> list[str]:
    """One line per backend for the parity report: polygraphy's verdict and ours."""
    lines = []
    for c in checks:
        if c.passed is None:
            lines.append(f"polygraphy on {c.backend}: not run ({c.skipped})")
            continue
        detail = "; ".join(
            f"{v['check']} {v['iterations_passed']}/{v['iterations']}{'' if v['gate'] else ' (info)'}" for v in c.checks
        )
        verdict = "PASSED" if c.passed else "FAILED"
        agree = "agrees" if c.agrees else "DISAGREES"
        lines.append(
            f"polygraphy ({c.runner} runner) on {c.backend}: {verdict} [{detail}]; "
            f"ours: {'passed' if ours[c.backend] else 'failed'} ({agree})"
        )
    return lines


def attach_to_parity(
    artifacts, report, inputs, directory: Path | None, crosscheck_with: str | None, thresholds: dict | None = None
) -> list[str]:
    """``parity --polygraphy DIR`` and ``--crosscheck polygraphy`` on a finished report: writes DIR, stores
    polygraphy's verdict in each result's ``crosscheck`` and returns the lines to print beside our table."""
    data = handoff_data(artifacts, inputs)
    lines = []
    if directory is not None:
        write_handoff(artifacts, directory, data, thresholds)
        lines.append(f"polygraphy hand-off written to {directory} (commands in {directory / README_FILE})")
    if crosscheck_with is not None:
        checks = crosscheck(artifacts, data, report.results, thresholds)
        for ours, theirs in zip(report.results, checks):
            ours.crosscheck = theirs.to_dict()
        lines += crosscheck_lines(checks, {r.backend: r.passed for r in report.results})
    return lines


__all__ = ["CrossCheck", "attach_to_parity", "crosscheck", "crosscheck_lines", "run_checks"]
