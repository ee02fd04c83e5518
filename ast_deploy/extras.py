"""Optional dependencies: one way to ask whether an extra's library can be imported, one way to say it cannot.

Every "is X installed" probe of the package (OpenVINO, NNCF, ONNX Runtime, TensorRT, tritonclient,
polygraphy, sed_eval, matplotlib, ...) goes through :func:`missing`, so that each says the same
thing the same way: what is missing and the ``pip install 'ast-deploy[extra]'`` that brings it.
"""

from __future__ import annotations

import importlib


def missing(module: str | tuple[str, ...], extra: str, name: str | None = None) -> str | None:
    """Why ``module`` (or the first of several that fails) cannot be imported, as one line naming the
    extra that brings it (``name``: how users know the library; default the module); ``None`` when all import.

    An installed library that fails to import one of *its* dependencies is reported as such, with the
    import error: reinstalling the extra is still the fix, but "not installed" would mislead.
    """
    for m in (module,) if isinstance(module, str) else module:
        try:
            importlib.import_module(m)
        except ImportError as e:
            hint = f"pip install 'ast-deploy[{extra}]'"
            if e.name is None or m == e.name or m.startswith(f"{e.name}."):
                return f"{name or m} is not installed ({hint})"
            return f"{name or m} cannot be imported ({e}; {hint})"
    return None
