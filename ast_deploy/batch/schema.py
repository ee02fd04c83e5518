"""The Parquet tables a batch job writes, and the Arrow arrays its actors build.

``files/``: one row per input file (always these columns, in this order; the optional ones only when
asked for, so that a dataset's schema is fixed by its ``_batch.json`` settings):

==============  ===============================  ===============================================
column          type                             meaning
==============  ===============================  ===============================================
path            string                           absolute local path or URI (the resume key)
size            int64, null                      bytes (null: the file could not be stat'ed)
mtime           timestamp[us, UTC], null         modification time (part of the resume key)
duration        float64, null                    seconds at the model's rate
sample_rate     int32, null                      the file's own rate
windows         int32, null                      windows scored
top_labels      list<string>, null               the ``--top-k`` best labels, best first
top_scores      list<float32>, null              their clip scores (``--aggregate`` over windows)
status          string                           ``ok`` or ``error``
error           string, null                     one line naming the problem (error rows)
scores          list<float16|float32>, null      ``--scores``: every label's clip score
embedding       list<float32>, null              ``--embeddings``: mean over windows
events          list<struct>, null               ``--events``: label, index, onset, offset, peak; with
                                                 ``--rollup`` the parents' events: label, mid, index
                                                 (the parent's place in ``_batch.json``'s
                                                 ``settings.rollup.parents``), onset, offset, peak
rollup          list<struct>, null               ``--rollup``: every parent (label, mid, score: the
                                                 max over its labels of the ``--aggregate`` clip
                                                 scores), best first
==============  ===============================  ===============================================

``timeline/`` (``--timeline``): one row per window: path, window (index), start, end (seconds),
scores (every label, the ``--scores`` dtype or float32), embedding (with ``--embeddings``).

The actors return the ``files`` columns plus, with ``--timeline``, a nested ``_timeline`` column
(a list of window structs per file) that the writer flattens into the timeline table, so that a
file's row and its windows travel and are committed together.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

TIMELINE_COLUMN = "_timeline"

EVENT_TYPE = pa.struct(
    [
        ("label", pa.string()),
        ("index", pa.int32()),
        ("onset", pa.float64()),
        ("offset", pa.float64()),
        ("peak", pa.float32()),
    ]
)
# --rollup --events: a parent's event also names its ontology id.
PARENT_EVENT_TYPE = pa.struct([EVENT_TYPE.field(0), ("mid", pa.string()), *list(EVENT_TYPE)[1:]])
ROLLUP_TYPE = pa.struct([("label", pa.string()), ("mid", pa.string()), ("score", pa.float32())])


@dataclass(frozen=True)
class Columns:
    """Which optional columns a job writes (part of the settings a resumed job must keep)."""

    scores: str | None = None  # "float16" | "float32"
    embeddings: bool = False
    events: bool = False
    timeline: bool = False
    rollup: bool = False  # --rollup: the parents per file (and events of parents with events)

    @property
    def score_type(self) -> pa.DataType:
        return pa.float16() if self.scores == "float16" else pa.float32()

    def files_schema(self, nested_timeline: bool = False) -> pa.Schema:
        fields = [
            ("path", pa.string()),
            ("size", pa.int64()),
            ("mtime", pa.timestamp("us", tz="UTC")),
            ("duration", pa.float64()),
            ("sample_rate", pa.int32()),
            ("windows", pa.int32()),
            ("top_labels", pa.list_(pa.string())),
            ("top_scores", pa.list_(pa.float32())),
            ("status", pa.string()),
            ("error", pa.string()),
        ]
        if self.scores:
            fields.append(("scores", pa.list_(self.score_type)))
        if self.embeddings:
            fields.append(("embedding", pa.list_(pa.float32())))
        if self.events:
            fields.append(("events", pa.list_(PARENT_EVENT_TYPE if self.rollup else EVENT_TYPE)))
        if self.rollup:
            fields.append(("rollup", pa.list_(ROLLUP_TYPE)))
        if nested_timeline and self.timeline:
            fields.append((TIMELINE_COLUMN, pa.list_(self.window_type)))
        return pa.schema(fields)

    @property
    def window_type(self) -> pa.StructType:
        fields = [
            ("window", pa.int32()),
            ("start", pa.float64()),
            ("end", pa.float64()),
            ("scores", pa.list_(self.score_type)),
        ]
        if self.embeddings:
            fields.append(("embedding", pa.list_(pa.float32())))
        return pa.struct(fields)

    def timeline_schema(self) -> pa.Schema:
        return pa.schema([("path", pa.string()), *((f.name, f.type) for f in self.window_type)])


def vectors(rows: list[np.ndarray | None], value_type: pa.DataType) -> pa.ListArray:
    """A list column of 1-D float vectors (``None``: a null row) without one Python object per value."""
    lengths = np.array([0 if r is None else len(r) for r in rows], np.int32)
    offsets = np.zeros(len(rows) + 1, np.int32)
    np.cumsum(lengths, out=offsets[1:])
    present = [r for r in rows if r is not None]
    dtype = np.float16 if value_type == pa.float16() else np.float32
    values = np.concatenate(present).astype(dtype, copy=False) if present else np.zeros(0, dtype)
    mask = pa.array([r is None for r in rows], pa.bool_())
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values, type=value_type), mask=mask)


def split_timeline(table: pa.Table, columns: Columns) -> tuple[pa.Table, pa.Table | None]:
    """(files rows, timeline rows) from an actor's output: the nested windows flattened, one row each."""
    if TIMELINE_COLUMN not in table.column_names:
        return table, None
    nested = table.column(TIMELINE_COLUMN).combine_chunks()
    files = table.drop_columns([TIMELINE_COLUMN])
    windows = pc.list_flatten(nested)
    parents = pc.list_parent_indices(nested)
    paths = pc.take(files.column("path"), parents)
    arrays = [paths, *(windows.field(i) for i in range(windows.type.num_fields))]
    return files, pa.Table.from_arrays(arrays, schema=columns.timeline_schema())


__all__ = ["EVENT_TYPE", "TIMELINE_COLUMN", "Columns", "split_timeline", "vectors"]
