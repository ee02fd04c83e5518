"""``ast_deploy.client``: predict through a Triton server running a model from ``ast-deploy triton``.

>>> from ast_deploy.client import open_url
>>> clf = open_url("http://127.0.0.1:8000")
>>> clf.predict(["dog.wav"], top_k=5)[0].top(5)
"""

from .serving.client import ServedModel, TritonBackend, TritonClient, open_url, parse_url

__all__ = ["ServedModel", "TritonBackend", "TritonClient", "open_url", "parse_url"]
