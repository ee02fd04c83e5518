"""Serving: Triton model repositories (:mod:`.repository`), the bundled server (:mod:`.server`) and the
model that runs an ast-deploy backend inside Triton (:mod:`.python_model`). The client that predicts
through a served model is :mod:`ast_deploy.client` (on :mod:`ast_deploy.runtime.triton`).

The layer is optional: the ``serve`` extra brings ``tritonclient``; the server binary comes from the
``nvidia-pytriton`` wheel, installed without its dependencies (see docs/serving.md).
"""

from __future__ import annotations

from .repository import RepositoryOptions, parse_config, plan_repository, write_repository

__all__ = ["RepositoryOptions", "parse_config", "plan_repository", "write_repository"]
