"""The files of a batch job: INPUT arguments -> one Arrow table.

The arguments follow :mod:`ast_deploy.inputs` (files, folders, glob patterns, lists of paths, URIs),
as every verb's audio arguments do. Every entry is a ``path`` (absolute local path, or a URI such as
``s3://bucket/key`` for any filesystem pyarrow opens; folder URIs are walked here) with its ``size``
and ``mtime`` (microseconds since the epoch), the resume key of :mod:`.store`. The table is sorted
by path and holds each path once. A path listed but missing, or a dangling symbolic link, is kept
with ``size = mtime = -1``: it becomes an error row, not an aborted job.

The listing is built in Arrow batches of :data:`CHUNK` paths (about 100 bytes per path), not as
Python objects per file, so that 10 million paths cost about 1 GB, not several.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from ..errors import InputError
from ..inputs import AUDIO_EXTENSIONS, is_audio_name, is_uri, iter_inputs, read_list

CHUNK = 65536
MISSING = -1  # size / mtime of a path that cannot be stat'ed (its row will be an error row)

LISTING_SCHEMA = pa.schema([("path", pa.string()), ("size", pa.int64()), ("mtime", pa.int64())])


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


def _stat_local(path: str) -> tuple[int, int]:
    try:
        st = os.stat(path)  # follows a link; a dangling one is MISSING
    except OSError:
        return MISSING, MISSING
    return st.st_size, st.st_mtime_ns // 1000


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
        elif i.type == pafs.FileType.File and (i is info or is_audio_name(i.base_name)):
            mtime = i.mtime_ns // 1000 if i.mtime_ns is not None else MISSING
            out.add(scheme + i.path.lstrip("/") if scheme != "file://" else scheme + i.path, i.size, mtime)


def list_inputs(inputs: list[str]) -> Listing:
    """Every audio file named by ``inputs`` (files, folders, globs, list files, URIs: the rules of
    :mod:`ast_deploy.inputs`); input errors for an argument that names nothing, and for no file found at all."""
    out = _Builder()
    warnings: list[str] = []
    for named in iter_inputs(inputs, lists=True, uris=True, warnings=warnings):
        if is_uri(named.path):  # a folder URI is walked here, by pyarrow
            _walk_uri(named.path, out, must_exist=named.origin == "argument")
        else:
            path = os.path.abspath(named.path)
            out.add(path, *_stat_local(path))
    table = out.table()
    if table.num_rows == 0:
        raise InputError(
            f"no audio files found in {', '.join(map(str, inputs))} (looked for {', '.join(AUDIO_EXTENSIONS)})"
        )
    return Listing(table, warnings)


__all__ = ["LISTING_SCHEMA", "MISSING", "Listing", "filesystem", "is_uri", "list_inputs", "read_list"]
