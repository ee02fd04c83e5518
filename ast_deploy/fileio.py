"""Atomic writes: nothing is left half-written. Files and directories are written under a
temporary name beside their destination and renamed into place (rename is atomic on POSIX)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import InputError


@contextlib.contextmanager
def atomic_dir(dst: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary directory that becomes ``dst`` when the block succeeds.

    On failure it is removed. An existing ``dst`` is an error unless ``overwrite``; then it is
    replaced only after the new one is complete.
    """
    dst = Path(dst)
    if dst.exists() and not overwrite:
        raise InputError(f"{dst}: already exists (use --force to replace it)")
    if dst.exists() and not dst.is_dir():
        raise InputError(f"{dst}: exists and is not a directory")
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent))
    try:
        yield tmp
        _publish_permissions(tmp)
        if dst.exists():
            old = dst.with_name(f".{dst.name}.old-{os.getpid()}")
            os.replace(dst, old)
            os.replace(tmp, dst)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, dst)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def atomic_file(dst: str | Path, mode: str = "w") -> Iterator:
    """Open a temporary file beside ``dst``; it replaces ``dst`` when the block succeeds."""
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent)
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
            yield f
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, dst)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _publish_permissions(root: Path) -> None:
    """Give a finished temporary tree the modes a plain mkdir/open would have.

    ``mkdtemp``/``mkstemp`` (and safetensors) create owner-only entries (0700/0600); published
    model directories must be readable by others (a serving user, a container) as the umask allows.
    """
    mask = _umask()
    for path in [root, *root.rglob("*")]:
        if path.is_symlink():
            continue
        executable = path.is_dir() or path.stat().st_mode & stat.S_IXUSR
        os.chmod(path, (0o777 if executable else 0o666) & ~mask)


def write_json(path: str | Path, data) -> None:
    with atomic_file(path) as f:
        json.dump(data, f, indent=2)
        f.write("\n")


def read_json_object(path: str | Path, what: str = "JSON") -> dict:
    """A JSON file that must hold an object; :class:`InputError` naming the file otherwise."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: cannot read {what} ({e})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: {what} is not a JSON object")
    return data


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
