"""``triton``: a model served by a Triton server, as a backend of the artifact directory it came from.

``ast-deploy parity ARTIFACTS --backends triton --url http://127.0.0.1:8000`` compares what the
server answers with the directory's PyTorch float32 reference, and ``bench`` times it, through the
same code as every local backend. The server is named by :func:`configure` (the CLI's ``--url``)
or the ``AST_DEPLOY_TRITON_URL`` / ``AST_DEPLOY_TRITON_MODEL`` environment variables. The served
model must come from this directory: its recorded source checkpoint and artifact hashes (the
``ast_deploy`` config parameter) are compared with the manifest before anything runs.

This backend is *remote*: it runs no local artifact and no reference weights, so the registry
lists it apart (:func:`~ast_deploy.runtime.registry.remote_backends`) and never picks it by default.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..errors import InputError
from .base import Backend, InputSpec
from .registry import BackendEntry

BACKENDS = (BackendEntry("triton", None, "fp32", options={"remote": True}),)
URL_ENV, MODEL_ENV = "AST_DEPLOY_TRITON_URL", "AST_DEPLOY_TRITON_MODEL"
_target: dict[str, str | None] = {"url": None, "model": None}


def configure(url: str | None, model: str | None = None) -> None:
    """The server (and optionally the model) that backend ``triton`` talks to in this process."""
    _target["url"], _target["model"] = url, model


def target() -> tuple[str | None, str | None]:
    return _target["url"] or os.environ.get(URL_ENV) or None, _target["model"] or os.environ.get(MODEL_ENV) or None


def unavailable(entry: BackendEntry, device: torch.device, artifact: dict | None = None) -> str | None:
    from ..serving.client import client_unavailable

    reason = client_unavailable()
    if reason:
        return reason
    if target()[0] is None:
        return f"no Triton server given (--url, or {URL_ENV})"
    return None


def open_artifact(
    entry: BackendEntry, path: Path, spec: InputSpec, device: torch.device, threads: int | None, artifact: dict
) -> Backend:
    raise InputError("backend 'triton' runs no local artifact; open it with open_remote()")


def open_remote(entry: BackendEntry, artifacts, device: torch.device) -> Backend:
    """The served model of ``artifacts`` (an :class:`~ast_deploy.artifacts.ArtifactDir`) at the configured URL."""
    from ..serving.client import TritonBackend, TritonClient

    url, model = target()
    if url is None:
        raise InputError(f"backend 'triton': {unavailable(entry, device)}")
    source = (artifacts.manifest.get("source") or {}).get("sha256")
    client = TritonClient(url, model, choose=False)
    if model is None:  # the one served model that comes from this directory
        candidates = {}
        for name in client.models():
            try:
                served = client.served(name)
            except InputError:  # a model not written by ast-deploy shares the server: not ours
                continue
            if _matches(served.info, artifacts, source):
                candidates[name] = served
        if len(candidates) != 1:
            client.close()
            raise InputError(
                f"{url}: {len(candidates)} served models come from {artifacts.path} "
                f"({', '.join(candidates) or 'none'}); name one with --model or {MODEL_ENV}"
            )
        ((model, client.model),) = candidates.items()
    # (a named model was fetched by TritonClient itself)
    if not _matches(client.model.info, artifacts, source):
        client.close()
        raise InputError(
            f"{url}: model {model!r} was not exported from {artifacts.path} (its checkpoint or files differ)"
        )
    backend = TritonBackend(client)
    if backend.spec.kind != artifacts.spec.kind or backend.spec.num_samples != artifacts.spec.num_samples:
        backend.close()
        raise InputError(f"{url}: model {model!r} takes other inputs than {artifacts.path}")
    return backend


def _matches(info: dict, artifacts, source: str | None) -> bool:
    """The served model was exported from the same checkpoint as ``artifacts``, and its files are
    the manifest artifact's files (same names and sha256)."""
    if info.get("source_sha256") != source:
        return False
    artifact = artifacts.artifact(info.get("artifact", ""))
    if artifact is None:
        return False
    mine = {(f["file"], f["sha256"]) for f in artifact["files"]}
    return {(f["file"], f["sha256"]) for f in info.get("files", [])} == mine
