"""``ast-deploy bench``: latency, throughput, memory and first-call time of every backend.

>>> from ast_deploy.bench import Timing, make_plan, run
>>> doc = run(make_plan("artifacts/", batch_sizes="1,8", timing=Timing(iters=20, seconds=None)))

Modules: ``sources`` (what can run), ``plan`` (a request, checked), ``harness`` (timing one job,
isolation), ``runner`` (a plan's jobs and the result document), ``roofline`` (the hardware limit),
``environment`` (where it ran), ``memory`` (peak RSS), ``report`` (markdown, console, plot),
``schema.json``; ``peers`` and ``targets`` for ``benchmarks/side_by_side.py`` (transformers and the
CPU peers measured like any backend, and the speed and quality targets checked on its results).
The CLI verb is ``ast_deploy.cli.bench``.
"""

from __future__ import annotations

from .harness import Job, Timing, latency_stats, measure, new_row
from .plan import BenchPlan, make_plan
from .runner import SCHEMA_VERSION, run
from .schema import validate

__all__ = [
    "SCHEMA_VERSION",
    "BenchPlan",
    "Job",
    "Timing",
    "latency_stats",
    "make_plan",
    "measure",
    "new_row",
    "run",
    "validate",
]
