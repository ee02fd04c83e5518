"""The output directory of a batch job: Parquet shards committed by rename, and the resume keys.

Layout (``OUT`` a local path or a URI that pyarrow opens)::

    OUT/_batch.json                 model identity (sha256), backend, labels, settings
    OUT/labels.csv                  the label set (index,mid,display_name: ``--labels`` reads it)
    OUT/files/part-RUN-SEQ.parquet  one row per input file
    OUT/timeline/part-RUN-SEQ.parquet   (--timeline) one row per window, same shard name

Exactly one row per file, whatever kills the job and when:

* a shard is written under a temporary name (``.part-….tmp``, which pyarrow, Spark, DuckDB's
  ``*.parquet`` globs and polars all skip) and renamed; its timeline shard is committed *before* it,
  so a file is done exactly when its row is in a committed ``files/`` shard. A timeline shard
  without its files shard (killed between the two renames) is deleted at the next start, and so
  are temporary files;
* a file is done when ``(path, size, mtime)`` is in ``files/``; the model's identity is in
  ``_batch.json`` and a different model or different settings are refused (one dataset, one model);
* a row whose file has changed (same path, other size or mtime), or an error row under
  ``--retry-errors``, is removed before the file is processed again: its shard is rewritten without
  it (timeline first, then files, each by rename);
* one job at a time per local ``OUT`` (an exclusive ``flock`` on ``OUT/.lock``, released by the
  kernel however the job ends). Object stores have no such lock: run one job per prefix.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import secrets
import time

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..errors import InputError
from ..fileio import atomic_file, write_json
from .inputs import MISSING, filesystem, is_uri

FORMAT = "ast-deploy-batch"
FORMAT_VERSION = 1
META = "_batch.json"
FILES, TIMELINE = "files", "timeline"
KEY_SCHEMA = pa.schema(
    [("path", pa.string()), ("size", pa.int64()), ("mtime", pa.int64()), ("status", pa.string()), ("shard", pa.int32())]
)


class OutputDir:
    def __init__(self, out: str) -> None:
        self.where = str(out)
        if is_uri(self.where):
            self.fs, self.root, _ = filesystem(self.where)
            self.local = False
        else:
            import pyarrow.fs as pafs

            self.fs, self.root, self.local = pafs.LocalFileSystem(), os.path.abspath(self.where), True
        self.run = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)
        self.seq = 0
        self.shards: list[str] = []  # committed files/ shard names, oldest first
        self._lock = None

    # --- paths --------------------------------------------------------------------------------

    def _path(self, *parts: str) -> str:
        return "/".join([self.root.rstrip("/"), *(p for p in parts if p)])

    def _exists(self, path: str) -> bool:
        import pyarrow.fs as pafs

        return self.fs.get_file_info(path).type != pafs.FileType.NotFound

    def _names(self, table: str) -> list[str]:
        import pyarrow.fs as pafs

        infos = self.fs.get_file_info(pafs.FileSelector(self._path(table), allow_not_found=True))
        return sorted(i.base_name for i in infos if i.type == pafs.FileType.File)

    # --- opening ------------------------------------------------------------------------------

    def open(self, meta: dict) -> None:
        """Create or reopen ``OUT`` for ``meta`` (a job's model and settings); clean what a killed job left."""
        import pyarrow.fs as pafs

        try:
            info = self.fs.get_file_info(self.root)
            if info.type == pafs.FileType.File:
                raise InputError(f"--out {self.where}: exists and is not a directory")
            foreign = info.type == pafs.FileType.Directory and not self._exists(self._path(META))
            if foreign and self.fs.get_file_info(pafs.FileSelector(self.root)):
                raise InputError(f"--out {self.where}: exists, is not empty and holds no {META} (not a batch output)")
            for sub in (FILES, TIMELINE):
                self.fs.create_dir(self._path(sub), recursive=True)
        except OSError as e:
            raise InputError(f"--out {self.where}: cannot create ({' '.join(str(e).split())})") from None
        self._take_lock()
        self._clean()
        self.shards = [n for n in self._names(FILES) if _is_shard(n)]
        old = self._read_meta()
        if old is not None and self.shards:
            _check_same(old, meta, self.where)
        else:  # new, or no row committed yet (a first run killed early): this job's settings hold
            self._write_text(META, json.dumps(meta, indent=2) + "\n")
            self._write_text("labels.csv", _labels_csv(meta["labels"]))

    def _take_lock(self) -> None:
        if not self.local:
            return
        import fcntl

        self._lock = open(self._path(".lock"), "a+")  # noqa: SIM115 - held until close()
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            self._lock = None
            raise InputError(f"--out {self.where}: another ast-deploy batch job is writing to it") from None

    def close(self) -> None:
        if self._lock is not None:
            self._lock.close()  # releases the flock
            self._lock = None

    def _read_meta(self) -> dict | None:
        path = self._path(META)
        if not self._exists(path):
            return None
        try:
            with self.fs.open_input_stream(path) as f:
                data = json.loads(f.read().decode("utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise InputError(f"{self.where}/{META}: cannot read ({e})") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise InputError(f"{self.where}/{META}: not an ast-deploy batch output")
        if data.get("format_version") != FORMAT_VERSION:
            raise InputError(
                f"{self.where}/{META}: format version {data.get('format_version')}, this is {FORMAT_VERSION}"
            )
        return data

    def _clean(self) -> None:
        """Remove temporary files of killed jobs, and timeline shards whose files shard never got committed."""
        committed = set(self._names(FILES))
        for table in ("", FILES, TIMELINE):
            for name in self._names(table):
                orphan = table == TIMELINE and _is_shard(name) and name not in committed
                if (name.startswith(".") and name.endswith(".tmp")) or orphan:
                    self.fs.delete_file(self._path(table, name) if table else self._path(name))

    # --- writing ------------------------------------------------------------------------------

    def _write_text(self, name: str, text: str) -> None:
        if self.local:
            if name.endswith(".json"):
                write_json(self._path(name), json.loads(text))
            else:
                with atomic_file(self._path(name)) as f:
                    f.write(text)
            return
        tmp = self._path(f".{name}.{secrets.token_hex(4)}.tmp")
        with self.fs.open_output_stream(tmp) as f:
            f.write(text.encode("utf-8"))
        self.fs.move(tmp, self._path(name))

    def _write_table(self, table_dir: str, name: str, table: pa.Table) -> None:
        """``table`` as ``OUT/table_dir/name``, written under a temporary name and renamed (object stores:
        copied, which is atomic per object, then the temporary deleted)."""
        dst = self._path(table_dir, name)
        if self.local:
            with atomic_file(dst, "wb") as f:
                pq.write_table(table, f, compression="zstd")
                f.flush()
                os.fsync(f.fileno())  # the rename must not reach the disk before the data
            return
        tmp = self._path(table_dir, f".{name}.{secrets.token_hex(4)}.tmp")
        with self.fs.open_output_stream(tmp) as f:
            pq.write_table(table, f, compression="zstd")
        self.fs.move(tmp, dst)

    def write(self, files: pa.Table, timeline: pa.Table | None) -> str:
        """Commit one shard: the timeline's first, then the files rows (the commit)."""
        name = f"part-{self.run}-{self.seq:06d}.parquet"
        self.seq += 1
        if timeline is not None:
            self._write_table(TIMELINE, name, timeline)
        self._write_table(FILES, name, files)
        self.shards.append(name)
        return name

    # --- resume -------------------------------------------------------------------------------

    def done(self) -> pa.Table:
        """``(path, size, mtime, status, shard)`` of every committed row; size/mtime ``-1`` where null,
        ``shard`` an index into :attr:`shards`."""
        parts = []
        for index, name in enumerate(self.shards):
            t = self._read(FILES, name, ["path", "size", "mtime", "status"])
            mtime = pc.cast(t.column("mtime"), pa.timestamp("us", tz="UTC")).cast(pa.int64())
            parts.append(
                pa.table(
                    [
                        t.column("path"),
                        pc.fill_null(t.column("size"), MISSING),
                        pc.fill_null(mtime, MISSING),
                        t.column("status"),
                        pa.array([index] * t.num_rows, pa.int32()),
                    ],
                    schema=KEY_SCHEMA,
                )
            )
        return pa.concat_tables(parts) if parts else KEY_SCHEMA.empty_table()

    def _read(self, table_dir: str, name: str, columns: list[str] | None = None) -> pa.Table:
        path = self._path(table_dir, name)
        try:
            return pq.read_table(path, columns=columns, filesystem=self.fs)
        except (OSError, pa.ArrowInvalid) as e:
            raise InputError(f"{self.where}/{table_dir}/{name}: cannot read this shard ({e})") from None

    def drop(self, rows: pa.Table) -> int:
        """Remove rows ``(path, shard)`` from their shards (timeline first); the number of file rows removed."""
        removed = 0
        for index in sorted(set(rows.column("shard").to_pylist())):
            name = self.shards[index]
            paths = rows.filter(pc.equal(rows.column("shard"), index)).column("path")
            for table_dir in (TIMELINE, FILES):
                if table_dir == TIMELINE and not self._exists(self._path(TIMELINE, name)):
                    continue
                t = self._read(table_dir, name)
                kept = t.filter(pc.invert(pc.is_in(t.column("path"), value_set=paths.combine_chunks())))
                if table_dir == FILES:
                    removed += t.num_rows - kept.num_rows
                if kept.num_rows:
                    self._write_table(table_dir, name, kept)
                else:
                    self.fs.delete_file(self._path(table_dir, name))
        self.shards = [n for n in self._names(FILES) if _is_shard(n)]
        return removed


def _is_shard(name: str) -> bool:
    return name.startswith("part-") and name.endswith(".parquet")


def _labels_csv(labels: list[str]) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["index", "mid", "display_name"])
    for i, name in enumerate(labels):
        w.writerow([i, name, name])
    return out.getvalue()


# Keys of _batch.json that must be equal for a job to add rows to an existing output.
_SAME = {"model.sha256": "model", "model.backend": "backend", "labels": "label set", "settings": "settings"}


def _check_same(old: dict, new: dict, where: str) -> None:
    def get(d: dict, dotted: str):
        for part in dotted.split("."):
            d = d.get(part) if isinstance(d, dict) else None
        return d

    for key, what in _SAME.items():
        a, b = get(old, key), get(new, key)
        if a == b:
            continue
        if key == "settings":
            diff = sorted(k for k in {**a, **b} if a.get(k) != b.get(k))
            detail = ", ".join(f"{k}: {a.get(k)!r} there, {b.get(k)!r} now" for k in diff)
        else:
            detail = f"{a!r} there, {b!r} now" if key != "labels" else f"{len(a)} labels there, {len(b)} now"
        raise InputError(
            f"--out {where}: holds results of another {what} ({detail}); resume with the same model and "
            f"settings, or write to another --out"
        )


@contextlib.contextmanager
def opened(out: str, meta: dict):
    store = OutputDir(out)
    store.open(meta)
    try:
        yield store
    finally:
        store.close()


__all__ = ["FILES", "FORMAT", "FORMAT_VERSION", "META", "TIMELINE", "OutputDir", "opened"]
