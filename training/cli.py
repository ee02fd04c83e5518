"""Registers the training verbs on the ``ast-deploy`` CLI (entry point ``ast_deploy.cli``)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add ``train``, ``evaluate``, ``stats``, ``prepare`` and ``quickstart`` to the CLI."""
