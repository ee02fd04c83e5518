"""``ast-deploy``: a thin typer layer over the Python API.

Verbs mirror the workflow: train -> export -> parity -> bench -> predict. :mod:`.app` holds the
typer app, the consoles, plugin loading and the mapping of errors to exit statuses; :mod:`.options`
the options several verbs share; one module per verb registers it on the app when imported.
Plugins (the ``training`` package's verbs) register through the ``ast_deploy.cli`` entry-point
group with ``register(app)`` and may use ``with_load_options``, ``DeviceOption``, ``JsonOption``,
``print_json`` and the consoles.
"""

from __future__ import annotations

from .app import app, console, err_console, main, run
from .options import DeviceOption, JsonOption, print_json, with_load_options

# isort: off
# Importing a verb module registers its verbs; this order (the workflow's) is the order of --help.
from . import export, parity, bench, predict, stream, batch, info, convert, init  # noqa: F401
from . import triton, serve  # noqa: F401
from . import thresholds, evaluate_events  # noqa: F401
# isort: on

__all__ = [
    "DeviceOption",
    "JsonOption",
    "app",
    "console",
    "err_console",
    "main",
    "print_json",
    "run",
    "with_load_options",
]
