"""Audio named on a command line: files, folders, glob patterns (and, for ``ast-deploy batch``, lists of
paths and URIs), resolved the same way by every verb that takes audio.

- A **file** named explicitly is taken whatever its extension (the decoder says whether it is audio).
- A **folder** stands for the audio files under it, recursively (:data:`AUDIO_EXTENSIONS`, any case),
  in sorted order; hidden entries (``.name``) are skipped and links to folders are not followed
  (they could make cycles).
- A **glob pattern** (``'clips/*.wav'``, ``'data/**/*.flac'``; quoted, so that the shell leaves it to
  us) stands for what it matches, sorted; ``**`` matches any depth. A path that exists is never read as
  a pattern, so a file whose name holds ``[`` or ``*`` is still that file.
- ``lists=True`` (batch): a ``.txt``/``.lst``/``.list`` file holds one path per line, a ``.csv``/``.tsv``
  its ``path`` column (else its first); relative paths are relative to the list's folder, and an entry
  that does not exist is kept (batch records it as an error row instead of aborting a long job).
- ``uris=True`` (batch): ``s3://...``, ``gs://...``, ``file://...`` are passed on for the caller to
  open; elsewhere a URI is refused in one line.

:func:`iter_inputs` yields what the arguments name one path at a time (batch lists millions), and
:func:`audio_files` is the short list the other verbs take.
"""

from __future__ import annotations

import csv
import glob
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .errors import InputError
from .manifests import AUDIO_EXTENSIONS

LIST_EXTENSIONS = (".txt", ".lst", ".list", ".csv", ".tsv")  # with lists=True, such a file lists paths

_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_uri(path: str) -> bool:
    return bool(_URI.match(path))


def is_audio_name(name: str) -> bool:
    return name.lower().endswith(AUDIO_EXTENSIONS)


def is_pattern(arg: str) -> bool:
    """A glob pattern for us to expand: it has ``*``, ``?`` or ``[`` and names no existing path."""
    return not is_uri(arg) and glob.has_magic(arg) and not os.path.lexists(arg)


def is_path_list(arg: str) -> bool:
    return not is_uri(arg) and arg.lower().endswith(LIST_EXTENSIONS) and os.path.isfile(arg)


@dataclass(frozen=True)
class Named:
    """One path an argument stands for. ``origin``: ``argument`` (named or matched: it exists, unless it
    is a URI), ``folder`` (found under one), ``list`` (a line of a list of paths: it may not exist)."""

    path: str
    origin: Literal["argument", "folder", "list"]


def walk_audio(root: str, warnings: list[str]) -> Iterator[str]:
    """Audio files under the folder ``root``, recursively, sorted within each folder. ``root`` that
    cannot be listed is an :class:`InputError`; a sub-folder that cannot be, a line in ``warnings``."""
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as e:
            if folder == root:
                raise InputError(f"{root}: cannot list this folder ({e.strerror or e})") from None
            warnings.append(f"{folder}: cannot list this folder ({e.strerror or e}); its files are not included")
            continue
        folders = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    folders.append(entry.path)
                    continue
            except OSError:
                pass
            if is_audio_name(entry.name):
                yield entry.path
        stack.extend(reversed(folders))  # depth first, in name order


def expand_pattern(pattern: str) -> list[str]:
    """The paths a glob pattern matches, sorted (``**``: any depth); none is an :class:`InputError`."""
    matches = sorted(glob.glob(pattern, recursive=True))
    if not matches:
        raise InputError(f"{pattern}: no file or folder matches this pattern")
    return matches


def expand_patterns(args: Iterable[str | Path]) -> list[str]:
    """``args`` with each glob pattern replaced by what it matches (for inputs read elsewhere, such as
    ``--calibration``'s files, folders and manifests)."""
    return [match for arg in map(str, args) for match in (expand_pattern(arg) if is_pattern(arg) else [arg])]


def read_list(path: Path) -> Iterator[str]:
    """Paths of a list file: one per line (.txt, .lst, .list; blank and ``#`` lines skipped), or the
    ``path`` column (else the first) of a .csv/.tsv. Relative paths are relative to the list's folder,
    as in :mod:`ast_deploy.manifests`."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read this list of paths ({e})") from None
    base = path.parent
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        rows = [r for r in csv.reader(text.splitlines(), delimiter="\t" if suffix == ".tsv" else ",") if r]
        column = 0
        if rows and any(c.strip().lower() == "path" for c in rows[0]):
            column = [c.strip().lower() for c in rows[0]].index("path")
            rows = rows[1:]
        entries = [r[column].strip() if len(r) > column else "" for r in rows]
    else:
        entries = [line.strip() for line in text.splitlines()]
    for entry in entries:
        if not entry or entry.startswith("#"):
            continue
        yield entry if is_uri(entry) or os.path.isabs(entry) else str(base / entry)


def _existing(path: str, warnings: list[str]) -> Iterator[Named]:
    if os.path.isdir(path):
        yield from (Named(p, "folder") for p in walk_audio(path, warnings))
    else:
        yield Named(path, "argument")


def iter_inputs(
    args: Iterable[str | Path],
    *,
    lists: bool = False,
    uris: bool = False,
    warnings: list[str] | None = None,
    flag: str | None = None,
) -> Iterator[Named]:
    """Every path the arguments stand for, in argument order (see the module's rules); ``warnings``
    collects the sub-folders that could not be read. A missing path, a pattern that matches nothing,
    or (without ``uris``) a URI is an :class:`InputError` naming the argument (after ``flag``, if given)."""
    warnings = [] if warnings is None else warnings
    where = f"{flag} " if flag else ""
    for arg in map(str, args):
        if is_uri(arg):
            if not uris:
                raise InputError(f"{where}{arg}: URIs are read by 'ast-deploy batch'; give a file, folder or pattern")
            yield Named(arg, "argument")
        elif is_pattern(arg):
            for match in expand_pattern(arg):
                yield from _existing(match, warnings)
        elif lists and is_path_list(arg):
            for entry in read_list(Path(arg)):
                if is_uri(entry) or not os.path.isdir(entry):
                    yield Named(entry, "list")
                else:
                    yield from _existing(entry, warnings)
        elif os.path.lexists(arg):  # a dangling link is kept: reading it names the problem
            yield from _existing(arg, warnings)
        else:
            what = "file, folder or list of paths" if lists else "file or folder"
            raise InputError(f"{where}{arg}: no such {what}")


def audio_files(args: Iterable[str | Path], warnings: list[str] | None = None, flag: str | None = None) -> list[Path]:
    """The audio files that ``args`` (files, folders, patterns) stand for, each once, in argument order;
    an :class:`InputError` when there are none."""
    args = [str(a) for a in args]
    seen: dict[str, Path] = {}
    for named in iter_inputs(args, warnings=warnings, flag=flag):
        seen.setdefault(os.path.normpath(named.path), Path(named.path))
    if not seen:
        where = f"{flag} " if flag else ""
        raise InputError(f"{where}{', '.join(args)}: no audio files found (looked for {', '.join(AUDIO_EXTENSIONS)})")
    return list(seen.values())


__all__ = [
    "AUDIO_EXTENSIONS",
    "LIST_EXTENSIONS",
    "Named",
    "audio_files",
    "expand_pattern",
    "expand_patterns",
    "is_audio_name",
    "is_path_list",
    "is_pattern",
    "is_uri",
    "iter_inputs",
    "read_list",
    "walk_audio",
]
