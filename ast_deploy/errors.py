"""User-facing errors: one line naming the problem and where; the CLI exits with status 2."""

from __future__ import annotations


class InputError(Exception):
    """Bad input from the user (a file, a flag, a checkpoint): reported as one line, exit status 2."""


class UnavailableError(InputError):
    """Something this machine cannot do (a missing library or device): one line, exit status 2."""
