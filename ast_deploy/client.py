"""``ast_deploy.client``: predict through a Triton server running a model from ``ast-deploy triton``.

>>> from ast_deploy.client import open_url
>>> clf = open_url("http://127.0.0.1:8000")
>>> clf.predict(["dog.wav"], top_k=5)[0].top(5)

:func:`open_url` returns a :class:`~ast_deploy.pipeline.Classifier` whose backend is a
:class:`~ast_deploy.runtime.triton.TritonBackend`: audio is read, resampled and cut into windows on
this side by the same code as local predict, each batch of windows is one inference request, and the
logits come back to the same activation, aggregation and output. The model's labels, input spec and
front end come from the ``ast_deploy`` parameter of its Triton config (written by ``ast-deploy
triton``), so nothing else is needed locally.
"""

from __future__ import annotations

from .pipeline import Classifier
from .runtime.triton import ServedModel, TritonBackend, TritonClient, parse_url


def open_url(url: str, model: str | None = None) -> Classifier:
    """A :class:`Classifier` for the model served at ``url`` (the only one, or ``model``)."""
    client = TritonClient(url, model)
    backend = TritonBackend(client)
    info = client.model.info
    return Classifier(backend, client.model.frontend, list(info["labels"]), info["activation"])


__all__ = ["ServedModel", "TritonBackend", "TritonClient", "open_url", "parse_url"]
