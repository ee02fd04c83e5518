"""The versioned JSON Schema of result documents (``schema.json``) and validation against it."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources


@cache
def schema() -> dict:
    return json.loads(resources.files(__package__).joinpath("schema.json").read_text(encoding="utf-8"))


def validate(doc: dict) -> None:
    """Raise ``ValueError`` naming the first violation; a no-op where jsonschema is not installed."""
    try:
        import jsonschema
    except ImportError:
        return
    validator = jsonschema.Draft202012Validator(schema())
    error = next(iter(sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))), None)
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(document)"
        raise ValueError(
            f"benchmark result does not match schema v{doc.get('schema_version')}: {where}: {error.message}"
        )
