"""A client of a served ast-deploy model: the same windows, batches, scores and JSON as local predict.

``open_url("http://127.0.0.1:8000")`` returns a :class:`~ast_deploy.pipeline.Classifier` whose
backend is a :class:`TritonBackend`: audio is read, resampled and cut into windows on this side by
the same code as local predict, each batch of windows is one inference request, and the logits
come back to the same activation, aggregation and output. The model's labels, input spec and
front end come from the ``ast_deploy`` parameter of its Triton config (written by
``ast-deploy triton``), so nothing else is needed locally.

URLs: ``http://HOST:PORT`` (Triton's HTTP endpoint, binary tensors) or ``grpc://HOST:PORT``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import urlparse

import numpy as np
import torch

from ..errors import InputError, UnavailableError
from ..frontend import FrontEndConfig
from ..pipeline import Classifier
from ..runtime.base import Backend, InputSpec
from .repository import PARAMETER

PROTOCOLS = ("http", "grpc")
TRITON_DTYPES = {np.dtype("float32"): "FP32", np.dtype("int64"): "INT64"}


def client_unavailable() -> str | None:
    try:
        import tritonclient.grpc
        import tritonclient.http  # noqa: F401
    except ImportError as e:
        return f"tritonclient is not installed (pip install 'ast-deploy[serve]'): {e}"
    return None


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
        return next(o for o in self.outputs if o.startswith("logits"))


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
            live = self.client.is_server_live()
        except Exception as e:
            raise InputError(f"{url}: no Triton server answers ({type(e).__name__}: {e})") from None
        if not live:
            raise InputError(f"{url}: the Triton server is not live")
        # the model requests go to: ``model``, else the only one served (``choose=False``: none yet)
        self.model: ServedModel | None = self.served(model or self._only_model()) if choose or model else None

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

    def _run(self, inputs: torch.Tensor, num_samples: torch.Tensor | None) -> torch.Tensor:
        arrays = {self.spec.input_names[0]: inputs.detach().cpu().numpy()}
        if num_samples is not None:
            arrays["num_samples"] = num_samples.detach().cpu().to(torch.int64).numpy().reshape(-1, 1)
        logits = self.client.infer(arrays, (self.served.logits_output,))[self.served.logits_output]
        return torch.from_numpy(np.array(logits, dtype=np.float32))

    def close(self) -> None:
        self.client.close()


def open_url(url: str, model: str | None = None) -> Classifier:
    """A :class:`Classifier` for the model served at ``url`` (the only one, or ``model``)."""
    client = TritonClient(url, model)
    backend = TritonBackend(client)
    info = client.model.info
    return Classifier(backend, client.model.frontend, list(info["labels"]), info["activation"])


__all__ = ["ServedModel", "TritonBackend", "TritonClient", "client_unavailable", "open_url", "parse_url"]
