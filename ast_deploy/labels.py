"""Label sets: the AST authors' CSV format ``index,mid,display_name`` and the sets shipped with the package."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .errors import InputError

# Label sets of the paper's tasks, shipped in ast_deploy/labels/.
LABEL_SETS = {
    "audioset": "audioset_class_labels_indices.csv",
    "esc50": "esc50_class_labels_indices.csv",
    "speechcommands": "speechcommands_class_labels_indices.csv",
}


@dataclass(frozen=True)
class LabelSet:
    mids: list[str]
    names: list[str]

    def __len__(self) -> int:
        return len(self.names)

    def index_of(self) -> dict[str, int]:
        """Machine id or display name -> index (the authors' manifests use mids)."""
        table = {name: i for i, name in enumerate(self.names)}
        table.update({mid: i for i, mid in enumerate(self.mids)})
        return table


def read_label_csv(path: str | Path) -> LabelSet:
    """Read ``index,mid,display_name`` rows; indices must be 0..n-1 (in any order)."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read label CSV ({e.__class__.__name__}: {e})") from e
    if rows and rows[0][:1] == ["index"]:
        rows = rows[1:]
    entries: dict[int, tuple[str, str]] = {}
    for line_no, row in enumerate(rows, start=2):
        if not row:
            continue
        if len(row) < 3:
            raise InputError(f"{path}:{line_no}: expected 'index,mid,display_name', got {','.join(row)!r}")
        try:
            index = int(row[0])
        except ValueError:
            raise InputError(f"{path}:{line_no}: index {row[0]!r} is not an integer") from None
        if index in entries:
            raise InputError(f"{path}:{line_no}: index {index} appears twice")
        entries[index] = (row[1], row[2])
    if not entries:
        raise InputError(f"{path}: label CSV has no labels")
    if sorted(entries) != list(range(len(entries))):
        raise InputError(f"{path}: indices must be 0..{len(entries) - 1} without gaps")
    mids, names = zip(*(entries[i] for i in range(len(entries))), strict=False)
    return LabelSet(list(mids), list(names))


def builtin_label_set(name: str) -> LabelSet:
    if name not in LABEL_SETS:
        raise InputError(f"unknown label set {name!r}; known: {', '.join(LABEL_SETS)}")
    with resources.as_file(resources.files("ast_deploy") / "labels" / LABEL_SETS[name]) as path:
        return read_label_csv(path)


def generic_labels(n: int) -> list[str]:
    return [f"class_{i}" for i in range(n)]
