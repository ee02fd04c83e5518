"""The Triton python-backend model: any ast-deploy runtime backend behind Triton's dynamic batcher.

``model.py`` in a python-backend model directory imports :class:`TritonPythonModel` from here. The
model opens its artifact through :class:`~ast_deploy.artifacts.ArtifactDir` (hashes checked), takes
each batch Triton's scheduler forms, checks every request on its own (a bad one gets its own error;
the others are answered), runs the valid rows as one batch and answers ``logits`` and ``scores``, and
``embedding`` (the clip embedding) where the artifact has it (exported since embeddings).

Tensors cross the stub through DLPack into torch, never through ``Tensor.as_numpy()``: the python
backend stub that ``nvidia-pytriton`` 0.7 ships was built against NumPy 1.x, and under NumPy 2 its
NumPy path reads garbage (inputs) and rejects outputs ("output tensor shape does not match size"),
while DLPack is exact under both.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch

from ..errors import InputError
from ..model import apply_activation
from ..runtime.base import EMBEDDING_NAME, Backend
from .repository import ARTIFACTS_SUBDIR

OUTPUTS = ("logits", "scores")  # and "embedding" where the backend has one (BatchRunner.outputs)


class BatchRunner:
    """Per-request checks, one backend call per scheduler batch, per-request results."""

    def __init__(self, backend: Backend, activation: str):
        self.backend = backend
        self.activation = activation
        self.outputs = (*OUTPUTS, EMBEDDING_NAME) if backend.has_embedding else OUTPUTS
        # Triton enforces the batch bound; each request is checked for everything else.
        self.request_spec = dataclasses.replace(backend.spec, min_batch=1, max_batch=None)

    def check(self, inputs: torch.Tensor, num_samples: torch.Tensor | None) -> None:
        self.request_spec.check(inputs, num_samples, "request")
        if not bool(torch.isfinite(inputs).all()):
            raise InputError(f"request: {self.backend.spec.kind} holds NaN or infinite values")

    def run(self, requests: list[tuple[torch.Tensor, torch.Tensor | None]]) -> list[tuple[torch.Tensor, ...] | str]:
        """``[(inputs, num_samples), ...]`` -> per request ``(logits, scores[, embedding])`` (:attr:`outputs`)
        or an error message."""
        results: list[tuple[torch.Tensor, ...] | str] = [""] * len(requests)
        good = []
        for i, (x, n) in enumerate(requests):
            if n is not None:
                n = n.reshape(-1)  # (B, 1) on the wire, (B,) in the graph
            try:
                self.check(x, n)
            except InputError as e:
                results[i] = str(e)
                continue
            good.append((i, x, n))
        if not good:
            return results
        x = torch.cat([g[1] for g in good])
        n = torch.cat([g[2] for g in good]) if good[0][2] is not None else None
        try:
            with torch.inference_mode():
                out = self.backend.run(x, n, embedding=self.backend.has_embedding)
                logits = out.logits.float().cpu().contiguous()
                rows = [logits, apply_activation(logits, self.activation).contiguous()]
                if out.embedding is not None:
                    rows.append(out.embedding.float().cpu().contiguous())
        except Exception as e:  # the runtime failed: every request of this batch gets the reason
            for i, _, _ in good:
                results[i] = f"{self.backend.name}: {type(e).__name__}: {e}"
            return results
        start = 0
        for i, xi, _ in good:
            stop = start + len(xi)
            results[i] = tuple(t[start:stop].contiguous() for t in rows)
            start = stop
        return results


def open_runner(model_dir: Path, backend: str, device: str = "cpu", threads: int | None = None) -> BatchRunner:
    from ..artifacts import ArtifactDir

    artifacts = ArtifactDir(model_dir)
    if threads:
        torch.set_num_threads(threads)
    return BatchRunner(artifacts.open(backend, device, threads), artifacts.activation)


class TritonPythonModel:
    """What Triton's python backend instantiates (one per model instance, in its own stub process)."""

    def initialize(self, args: dict) -> None:
        config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        version_dir = Path(args["model_repository"]) / args["model_version"]
        device = "cpu"
        if args.get("model_instance_kind") == "GPU":
            device = f"cuda:{args['model_instance_device_id']}"
        threads = int(params["threads"]) if params.get("threads") else None
        self.runner = open_runner(version_dir / ARTIFACTS_SUBDIR, params["backend"], device, threads)
        self.input_names = self.runner.backend.spec.input_names

    def execute(self, requests):
        import triton_python_backend_utils as pb_utils
        from torch.utils.dlpack import to_dlpack

        def tensor(request, name):
            t = pb_utils.get_input_tensor_by_name(request, name)
            return torch.from_dlpack(t.to_dlpack())

        batch = []
        for request in requests:
            named = [tensor(request, name) for name in self.input_names]
            batch.append((named[0], named[1] if len(named) > 1 else None))
        responses = []
        for result in self.runner.run(batch):
            if isinstance(result, str):
                responses.append(pb_utils.InferenceResponse(output_tensors=[], error=pb_utils.TritonError(result)))
            else:
                outputs = [
                    pb_utils.Tensor.from_dlpack(n, to_dlpack(t))
                    for n, t in zip(self.runner.outputs, result, strict=True)
                ]
                responses.append(pb_utils.InferenceResponse(output_tensors=outputs))
        return responses

    def finalize(self) -> None:
        self.runner.backend.close()
