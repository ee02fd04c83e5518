"""Corpus-scale tagging on Ray Data: ``ast-deploy batch MODEL INPUT... --out DIR`` (docs/batch.md).

>>> from ast_deploy.batch import BatchOptions, run_batch
>>> counts = run_batch(BatchOptions("artifacts/", ["archive/"], "tags/", actors=2, threads_per_actor=4))

:mod:`.inputs` lists the files, :mod:`.decode` decodes them in Ray tasks, :mod:`.model` runs the
model in an actor pool, :mod:`.schema` is the Parquet schema, :mod:`.store` commits shards and
keeps the resume keys, :mod:`.job` ties them together. Needs the ``batch`` extra (ray[data], pyarrow).
"""

from __future__ import annotations

from .job import BatchOptions, Counts, JobFailed, run_batch

__all__ = ["BatchOptions", "Counts", "JobFailed", "run_batch"]
