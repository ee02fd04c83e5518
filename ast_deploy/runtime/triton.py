"""``triton``: a model served by a Triton server, as a backend of the artifact directory it came from.

``ast-deploy parity ARTIFACTS --backends triton --url http://127.0.0.1:8000`` compares what the
server answers with the directory's PyTorch float32 reference, and ``bench`` times it, through the
same code as every local backend. The server is named by :func:`configure` (the CLI's ``--url``)
or the ``AST_DEPLOY_TRITON_URL`` / ``AST_DEPLOY_TRITON_MODEL`` environment variables. The served
model must come from this directory: its recorded source checkpoint and artifact hashes (the
``ast_deploy`` config parameter) are compared with the manifest before anything runs.

This backend is *remote*: it runs no local artifact and no reference weights, so the registry
lists it apart (:func:`~ast_deploy.runtime.registry.remote_backends`) and never picks it by default.

The client lives here too (:class:`TritonClient`, :class:`TritonBackend`): a served model is one more
runtime, so ``ast_deploy.client.open_url`` (predict through a server) and this backend share it, and
the runtime layer needs nothing from ``ast_deploy.serving`` (which writes repositories and runs servers).
URLs: ``http://HOST:PORT`` (Triton's HTTP endpoint, binary tensors) or ``grpc://HOST:PORT``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import torch

from ..errors import InputError, UnavailableError
from ..extras import missing
from ..frontend import FrontEndConfig
from .base import EMBEDDING_NAME, OUTPUT_NAME, Backend, InputSpec, Outputs
from .registry import BackendEntry

BACKENDS = (BackendEntry("triton", None, "fp32", options={"remote": True}),)
URL_ENV, MODEL_ENV = "AST_DEPLOY_TRITON_URL", "AST_DEPLOY_TRITON_MODEL"
_target: dict[str, str | None] = {"url": None, "model": None}
PARAMETER = "ast_deploy"  # the Triton config parameter holding a model's provenance and input spec (JSON)


def configure(url: str | None, model: str | None = None) -> None:
    """The server (and optionally the model) that backend ``triton`` talks to in this process."""
    _target["url"], _target["model"] = url, model


def target() -> tuple[str | None, str | None]:
    return _target["url"] or os.environ.get(URL_ENV) or None, _target["model"] or os.environ.get(MODEL_ENV) or None


def unavailable(entry: BackendEntry, device: torch.device, artifact: dict | None = None) -> str | None:
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


# --- the client ---------------------------------------------------------------------------------


PROTOCOLS = ("http", "grpc")
TRITON_DTYPES = {np.dtype("float32"): "FP32", np.dtype("int64"): "INT64"}


def client_unavailable() -> str | None:
    return missing(("tritonclient.http", "tritonclient.grpc"), "serve", "tritonclient")


def parse_url(url: str) -> tuple[str, str]:
    """``http://h:p`` / ``grpc://h:p`` / ``h:p`` (HTTP) -> (protocol, "host:port")."""
    parsed = urlparse(url if "://" in url else f"http://{url}")
    if parsed.scheme not in PROTOCOLS or not parsed.hostname or parsed.path not in ("", "/"):
        raise InputError(f"--url {url!r}: expected http://HOST:PORT or grpc://HOST:PORT")
    if parsed.port is None:
        raise InputError(f"--url {url!r}: give the port (Triton's defaults: HTTP 8000, gRPC 8001)")
    return parsed.scheme, f"{parsed.hostname}:{parsed.port}"


@dataclass
class ServedModel:
    """A served model as its config describes it."""

    name: str
    outputs: list[str]
    max_batch: int
    info: dict  # the ast_deploy parameter: artifact, files, parity, labels, input, activation

    @property
    def spec(self) -> InputSpec:
        i = self.info["input"]
        return InputSpec(
            i["kind"], i["sample_rate"], i["num_frames"], i["num_mel_bins"], i.get("num_samples"), 1, self.max_batch
        )

    @property
    def frontend(self) -> FrontEndConfig:
        return FrontEndConfig(**self.info["input"]["frontend"])

    @property
    def logits_output(self) -> str:
        return next(o for o in self.outputs if o.startswith(OUTPUT_NAME))

    @property
    def embedding_output(self) -> str | None:
        """The output holding the clip embedding (``embedding``; TorchScript's ``embedding__1``), or ``None``
        for a model of a directory exported before embeddings."""
        return next((o for o in self.outputs if o.startswith(EMBEDDING_NAME)), None)


class TritonClient:
    """One connection to a Triton server (HTTP or gRPC), for one model."""

    def __init__(self, url: str, model: str | None = None, timeout: float = 120.0, choose: bool = True):
        reason = client_unavailable()
        if reason:
            raise UnavailableError(reason)
        self.url = url
        self.protocol, self.address = parse_url(url)
        self.timeout = timeout
        if self.protocol == "http":
            import tritonclient.http as lib

            self.client = lib.InferenceServerClient(self.address, connection_timeout=timeout, network_timeout=timeout)
        else:
            import tritonclient.grpc as lib

            self.client = lib.InferenceServerClient(self.address)
        self.lib = lib
        self.errors = (lib.InferenceServerException,)
        try:
            self._check_live()
            # the model requests go to: ``model``, else the only one served (``choose=False``: none yet)
            self.model: ServedModel | None = self.served(model or self._only_model()) if choose or model else None
        except BaseException:
            # An open HTTP keep-alive connection holds a stopping tritonserver for its whole exit
            # timeout: a refused client closes its connection at once.
            self.close()
            raise

    def _check_live(self) -> None:
        try:
            live = self.client.is_server_live()
        except Exception as e:
            raise InputError(f"{self.url}: no Triton server answers ({type(e).__name__}: {e})") from None
        if not live:
            raise InputError(f"{self.url}: the Triton server is not live")

    def models(self) -> list[str]:
        """Names of the ready models in the server's repository."""
        index = self.client.get_model_repository_index()
        if self.protocol == "grpc":
            index = [{"name": m.name, "state": m.state} for m in index.models]
        return sorted(m["name"] for m in index if m.get("state") == "READY")

    def _only_model(self) -> str:
        models = self.models()
        if len(models) != 1:
            raise InputError(
                f"{self.url} serves {len(models)} models ({', '.join(models) or 'none'}): choose one with --model"
            )
        return models[0]

    def config(self, model: str) -> dict:
        try:
            if self.protocol == "grpc":
                from google.protobuf import json_format

                response = self.client.get_model_config(model)
                return json_format.MessageToDict(response.config, preserving_proto_field_name=True)
            return self.client.get_model_config(model)
        except self.errors as e:
            raise InputError(f"{self.url}: model {model!r}: {e.message()}") from None

    def served(self, model: str) -> ServedModel:
        config = self.config(model)
        param = config.get("parameters", {}).get(PARAMETER)
        if not param:
            raise InputError(
                f"{self.url}: model {model!r} was not written by 'ast-deploy triton' (no {PARAMETER} parameter)"
            )
        return ServedModel(
            model,
            [o["name"] for o in config.get("output", [])],
            int(config.get("max_batch_size", 0)),
            json.loads(param["string_value"]),
        )

    def infer(self, arrays: dict[str, np.ndarray], outputs: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
        """One request: named arrays in, named outputs out (Triton's error message as InputError)."""
        lib = self.lib
        inputs = []
        for name, array in arrays.items():
            array = np.ascontiguousarray(array)
            dtype = TRITON_DTYPES.get(array.dtype)
            if dtype is None:
                raise InputError(f"input {name!r}: dtype {array.dtype} is not float32 or int64")
            item = lib.InferInput(name, list(array.shape), dtype)
            if self.protocol == "http":
                item.set_data_from_numpy(array, binary_data=True)
            else:
                item.set_data_from_numpy(array)
            inputs.append(item)
        names = outputs or tuple(self.model.outputs)
        if self.protocol == "http":  # its timeouts are the connection's (set in __init__)
            requested = [lib.InferRequestedOutput(n, binary_data=True) for n in names]
            timeout = {}
        else:
            requested = [lib.InferRequestedOutput(n) for n in names]
            timeout = {"client_timeout": self.timeout}
        try:
            result = self.client.infer(self.model.name, inputs, outputs=requested, **timeout)
        except self.errors as e:
            raise InputError(f"{self.url} ({self.model.name}): {e.message()}") from None
        return {n: result.as_numpy(n) for n in names}

    def close(self) -> None:
        self.client.close()


class TritonBackend(Backend):
    """A served model as a runtime backend: predict, parity and bench run it unchanged."""

    name = "triton"

    def __init__(self, client: TritonClient):
        self.client = client
        super().__init__(client.model.spec, "cpu")
        self.precision = client.model.info.get("precision", "fp32")
        self.served = client.model
        self.outputs = (OUTPUT_NAME, EMBEDDING_NAME) if self.served.embedding_output else (OUTPUT_NAME,)

    def _run_outputs(self, inputs: torch.Tensor, num_samples: torch.Tensor | None, embedding: bool) -> Outputs:
        arrays = {self.spec.input_names[0]: inputs.detach().cpu().numpy()}
        if num_samples is not None:
            arrays["num_samples"] = num_samples.detach().cpu().to(torch.int64).numpy().reshape(-1, 1)
        names = (self.served.logits_output, *([self.served.embedding_output] if embedding else []))
        got = self.client.infer(arrays, names)
        return Outputs(*(torch.from_numpy(np.array(got[n], dtype=np.float32)) for n in names))

    def close(self) -> None:
        self.client.close()
