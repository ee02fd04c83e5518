"""Running a :class:`~ast_deploy.bench.plan.BenchPlan`: its jobs one after the other (in worker processes
or in this one), then the result document (``schema.json``) with its derived fields.

The plan checks a request, the harness measures one job; this module is what joins them, so that
neither of those needs the other's module.
"""

from __future__ import annotations

import torch

from . import environment
from .harness import Emit, run_isolated, run_job
from .plan import BenchPlan
from .roofline import measure_roofline, roofline_fraction
from .schema import validate

SCHEMA_VERSION = 1


def finalize(doc: dict) -> dict:
    """Derived fields: speed-up over each baseline (same input and batch) and the roofline fraction."""
    rows = doc["results"]
    index = {(r["backend"], r["input"], r["batch"]): r for r in rows}
    for row in rows:
        if row["status"] != "ok":
            continue
        speedup = {}
        for name in doc["settings"]["baselines"]:
            base = index.get((name, row["input"], row["batch"]))
            ok = base is not None and base["status"] == "ok"
            speedup[name] = base["latency_ms"]["mean"] / row["latency_ms"]["mean"] if ok else None
        row["speedup"] = speedup
        if doc.get("roofline"):
            row["roofline_fraction"] = roofline_fraction(row, doc["roofline"])
    return doc


def document(
    plan_settings: dict,
    source: dict,
    rows: list[dict],
    roofline: dict | None,
    unavailable: dict,
    argv: list[str] | None = None,
    kind: str = "ast-deploy-bench",
    env: dict | None = None,
) -> dict:
    """The result document (see ``schema.json``), with derived fields filled in; ``env`` defaults
    to :func:`environment.collect` of ``argv``."""
    doc = {
        "schema_version": SCHEMA_VERSION,
        "kind": kind,
        "source": source,
        "settings": plan_settings,
        "environment": env or environment.collect(argv),
        "roofline": roofline,
        "unavailable": [{"backend": n, "reason": r} for n, r in unavailable.items()],
        "results": rows,
    }
    return finalize(doc)


def run(plan: BenchPlan, emit: Emit | None = None, argv: list[str] | None = None) -> dict:
    """Measure every (input kind, backend, batch size) of ``plan``; the validated result document.

    ``argv`` is the command line recorded with the results (default ``sys.argv``). ``emit`` receives progress events: ``{"phase": "job", "job": Job, "index": i, "total": n}``
    before each job, then the worker's own events (loading, warm-up, timing, row).
    """
    emit = emit or (lambda event: None)
    roofline = None
    if plan.roofline:
        emit({"phase": "roofline"})
        previous = torch.get_num_threads()
        if plan.threads:
            torch.set_num_threads(plan.threads)
        try:
            roofline = measure_roofline(plan.source.config, plan.device)
        finally:
            torch.set_num_threads(previous)
    rows: list[dict] = []
    jobs = plan.jobs()
    for i, job in enumerate(jobs):
        emit({"phase": "job", "job": job, "index": i, "total": len(jobs)})
        if plan.isolation == "none":
            rows += run_job(job, plan.source, emit)
        else:
            rows += run_isolated(job, emit)
    doc = document(plan.settings(), plan.source.describe(), rows, roofline, plan.unavailable, argv)
    validate(doc)
    return doc


__all__ = ["SCHEMA_VERSION", "document", "finalize", "run"]
