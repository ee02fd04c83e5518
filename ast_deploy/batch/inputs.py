"""The files of a batch job: INPUT arguments (files, folders, globs, lists of paths) -> one Arrow table.

Every entry is a ``path`` (absolute local path, or a URI such as ``s3://bucket/key`` for any
filesystem pyarrow opens) with its ``size`` and ``mtime`` (microseconds since the epoch), the
resume key of :mod:`.store`. The table is sorted by path and holds each path once. Folders are
walked recursively for audio files (:data:`ast_deploy.manifests.AUDIO_EXTENSIONS`; hidden entries
skipped); files named explicitly, on the command line or in a list, are taken whatever their
extension. A path listed but missing, or a dangling symbolic link, is kept with ``size = mtime = -1``:
it becomes an error row, not an aborted job.

The listing is built in Arrow batches of :data:`CHUNK` paths (about 100 bytes per path), not as
Python objects per file, so that 10 million paths cost about 1 GB, not several.
"""

from __future__ import annotations

import csv
import glob
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from ..errors import InputError
from ..manifests import AUDIO_EXTENSIONS

LIST_EXTENSIONS = (".txt", ".lst", ".list", ".csv", ".tsv")  # an INPUT with these is a list of paths
CHUNK = 65536
MISSING = -1  # size / mtime of a path that cannot be stat'ed (its row will be an error row)

LISTING_SCHEMA = pa.schema([("path", pa.string()), ("size", pa.int64()), ("mtime", pa.int64())])

_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_uri(path: str) -> bool:
    return bool(_URI.match(path))


def filesystem(uri: str):
    """``(pyarrow filesystem, path inside it, URI prefix)`` of a URI; one line naming it if pyarrow cannot open it."""
    import pyarrow.fs as pafs

    try:
        fs, inner = pafs.FileSystem.from_uri(uri)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError, ValueError) as e:
        raise InputError(f"{uri}: cannot open this URI with pyarrow ({' '.join(str(e).split())})") from None
    # Paths come back from listings without the scheme (s3: "bucket/key", file: "/abs/path").
    scheme = uri[: uri.index("://") + 3]
    return fs, inner, scheme


@dataclass
class Listing:
    table: pa.Table  # LISTING_SCHEMA, sorted by path, each path once
    warnings: list[str] = field(default_factory=list)  # sub-folders that could not be read

    def __len__(self) -> int:
        return self.table.num_rows


class _Builder:
    """Rows appended in Python, kept as Arrow record batches of CHUNK rows."""

    def __init__(self) -> None:
        self.batches: list[pa.RecordBatch] = []
        self.paths: list[str] = []
        self.sizes: list[int] = []
        self.mtimes: list[int] = []

    def add(self, path: str, size: int, mtime_us: int) -> None:
        self.paths.append(path)
        self.sizes.append(size)
        self.mtimes.append(mtime_us)
        if len(self.paths) >= CHUNK:
            self._seal()

    def _seal(self) -> None:
        if self.paths:
            self.batches.append(pa.record_batch([self.paths, self.sizes, self.mtimes], schema=LISTING_SCHEMA))
            self.paths, self.sizes, self.mtimes = [], [], []

    def table(self) -> pa.Table:
        self._seal()
        table = pa.Table.from_batches(self.batches, schema=LISTING_SCHEMA).combine_chunks()
        if table.num_rows == 0:
            return table
        table = table.sort_by("path")
        paths = table.column("path")
        # The same file reached through two INPUTs (a folder and a glob inside it) is listed once.
        keep = pc.invert(pc.equal(paths.slice(1), paths.slice(0, len(paths) - 1)))
        return table.filter(pa.concat_arrays([pa.array([True]), *keep.chunks]))


def _is_audio(name: str) -> bool:
    return name.lower().endswith(AUDIO_EXTENSIONS)


def _stat_local(path: str) -> tuple[int, int]:
    try:
        st = os.stat(path)
    except OSError:
        return MISSING, MISSING
    return st.st_size, st.st_mtime_ns // 1000


def _walk_local(root: str, out: _Builder, warnings: list[str]) -> None:
    """Audio files under ``root``, recursively; symbolic links to folders are not followed (cycles)."""
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except OSError as e:
            if folder == root:
                raise InputError(f"{root}: cannot list this folder ({e.strerror or e})") from None
            warnings.append(f"{folder}: cannot list this folder ({e.strerror or e}); its files are not included")
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                    continue
            except OSError:
                pass
            if _is_audio(entry.name):
                size, mtime = _stat_local(entry.path)  # follows a link; a dangling one is MISSING
                out.add(entry.path, size, mtime)


def _walk_uri(uri: str, out: _Builder, must_exist: bool) -> None:
    import pyarrow.fs as pafs

    fs, inner, scheme = filesystem(uri)
    try:
        info = fs.get_file_info(inner)
        if info.type == pafs.FileType.Directory:
            infos = fs.get_file_info(pafs.FileSelector(inner, recursive=True))
        else:
            infos = [info]
    except OSError as e:
        raise InputError(f"{uri}: cannot list ({' '.join(str(e).split())})") from None
    for i in infos:
        if i.type == pafs.FileType.NotFound:
            if must_exist:
                raise InputError(f"{uri}: no such file or folder")
            out.add(uri, MISSING, MISSING)
        elif i.type == pafs.FileType.File and (i is info or _is_audio(i.base_name)):
            mtime = i.mtime_ns // 1000 if i.mtime_ns is not None else MISSING
            out.add(scheme + i.path.lstrip("/") if scheme != "file://" else scheme + i.path, i.size, mtime)


def _add_path(path: str, out: _Builder, warnings: list[str], must_exist: bool) -> None:
    """One file or folder (local or URI). ``must_exist``: a missing path is an input error (a command-line
    argument), else an entry that will become an error row (a line of a list)."""
    if is_uri(path):
        _walk_uri(path, out, must_exist)
        return
    path = os.path.abspath(path)
    if os.path.isdir(path):
        _walk_local(path, out, warnings)
    elif os.path.lexists(path) or not must_exist:
        size, mtime = _stat_local(path)
        out.add(path, size, mtime)
    else:
        raise InputError(f"{path}: no such file, folder or list of paths")


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
        entries = [(i, r[column].strip() if len(r) > column else "") for i, r in enumerate(rows, 1)]
    else:
        entries = [(i, line.strip()) for i, line in enumerate(text.splitlines(), 1)]
    for _line, entry in entries:
        if not entry or entry.startswith("#"):
            continue
        yield entry if is_uri(entry) or os.path.isabs(entry) else str(base / entry)


def list_inputs(inputs: list[str]) -> Listing:
    """Every audio file named by ``inputs`` (files, folders, globs, list files, URIs); input errors
    for an argument that names nothing, and for no file found at all."""
    out = _Builder()
    warnings: list[str] = []
    for arg in inputs:
        arg = str(arg)
        if not is_uri(arg) and not os.path.lexists(arg) and glob.has_magic(arg):
            matches = sorted(glob.glob(arg, recursive=True))
            if not matches:
                raise InputError(f"{arg}: no file or folder matches this pattern")
            for m in matches:
                _add_path(m, out, warnings, must_exist=True)
        elif not is_uri(arg) and os.path.isfile(arg) and arg.lower().endswith(LIST_EXTENSIONS):
            for entry in read_list(Path(arg)):
                _add_path(entry, out, warnings, must_exist=False)
        else:
            _add_path(arg, out, warnings, must_exist=True)
    table = out.table()
    if table.num_rows == 0:
        raise InputError(
            f"no audio files found in {', '.join(map(str, inputs))} (looked for {', '.join(AUDIO_EXTENSIONS)})"
        )
    return Listing(table, warnings)


__all__ = ["LISTING_SCHEMA", "MISSING", "Listing", "filesystem", "is_uri", "list_inputs", "read_list"]
