"""Parity: every artifact against the PyTorch float32 reference, on the same inputs.

>>> from ast_deploy.parity import run_parity
>>> report = run_parity("artifacts/")          # every artifact this machine runs, on seeded signals
>>> report.passed, [r.min_cosine for r in report.results]

Modules: :mod:`.inputs` (what is compared on: real audio, a labelled manifest, seeded and hard
signals), :mod:`.compare` (the figures, the thresholds per precision, ``run_parity``, tables);
polygraphy as a second judge, apart: :mod:`.handoff` (our parity data and gates as polygraphy
files and commands, ``--polygraphy DIR``) and :mod:`.crosscheck` (polygraphy's verdict beside ours,
``--crosscheck polygraphy``). The package namespace holds the comparison's public names.
"""

from __future__ import annotations

from .compare import (
    DEFAULT_THRESHOLDS,
    EMBEDDING_MIN_COSINE,
    PARITY_BATCH,
    BackendParity,
    EmbeddingParity,
    ParityReport,
    Thresholds,
    compare,
    markdown,
    parity_batch,
    run_backend,
    run_outputs,
    run_parity,
    table,
    task_metric,
    threshold_overrides,
)
from .inputs import (
    HARD_SIGNALS,
    ParityInputs,
    audio_inputs,
    hard_signals,
    manifest_inputs,
    model_label_set,
    synthetic_inputs,
    synthetic_signals,
)

__all__ = [
    "DEFAULT_THRESHOLDS",
    "EMBEDDING_MIN_COSINE",
    "HARD_SIGNALS",
    "PARITY_BATCH",
    "BackendParity",
    "EmbeddingParity",
    "ParityInputs",
    "ParityReport",
    "Thresholds",
    "audio_inputs",
    "compare",
    "hard_signals",
    "manifest_inputs",
    "markdown",
    "model_label_set",
    "parity_batch",
    "run_backend",
    "run_outputs",
    "run_parity",
    "synthetic_inputs",
    "synthetic_signals",
    "table",
    "task_metric",
    "threshold_overrides",
]
