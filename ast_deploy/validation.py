"""JSON documents against the JSON Schemas shipped as package data (the manifest, bench results).

The schemas are the contract with readers outside this package (the C++ runtime, dashboards), so a
document that breaks one is a bug of the writer, found where it is written. ``jsonschema`` comes
with the ``dev`` and ``bench`` extras, not with a plain install: where it is missing, validation is
skipped rather than made a runtime dependency.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources


@cache
def load_schema(package: str, name: str) -> dict:
    """The schema ``name`` shipped in ``package`` (read once)."""
    return json.loads(resources.files(package).joinpath(name).read_text(encoding="utf-8"))


def first_violation(schema: dict, doc: dict) -> str | None:
    """``"where: what"`` of the first violation of ``schema`` by ``doc`` (by path in the document), or
    ``None``: valid, or jsonschema is not installed."""
    try:
        import jsonschema
    except ImportError:
        return None
    validator = jsonschema.Draft202012Validator(schema)
    error = next(iter(sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))), None)
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "(document)"
    return f"{where}: {error.message}"


__all__ = ["first_violation", "load_schema"]
