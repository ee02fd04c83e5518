"""Labelled audio manifests, read the same way by training, evaluation and parity.

Three formats, detected from the path:

* the AST authors' JSON, ``{"data": [{"wav": "a.wav", "labels": "/m/09x0r,/m/05zppz"}]}``, with a
  label CSV ``index,mid,display_name`` (labels may be mids or display names);
* a CSV ``path,label[;label...]`` (a header row ``path,label(s)`` is optional);
* a directory with one sub-directory per class (names starting with ``_`` or ``.`` are ignored,
  e.g. Speech Commands' ``_background_noise_``).

Relative audio paths are relative to the manifest's own directory.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError
from .fileio import read_json_object
from .labels import LabelSet

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif", ".au", ".opus")


@dataclass(frozen=True)
class Example:
    path: Path
    labels: tuple[int, ...]
    where: str  # "manifest.csv:12": where the entry came from, for error messages


@dataclass
class Split:
    """The examples of one manifest, their label set and where they came from."""

    examples: list[Example]
    labels: LabelSet
    source: str

    def __len__(self) -> int:
        return len(self.examples)


def label_set_from_names(names: Sequence[str]) -> LabelSet:
    return LabelSet(list(names), list(names))


def read_split(path: str | Path, labels: LabelSet | None = None, multi_label: bool = False) -> Split:
    """Read any manifest format. ``labels`` fixes the label set (else it is what the manifest uses, sorted)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such manifest file or directory")
    if path.is_dir():
        examples, labels = _read_folders(path, labels)
    elif path.suffix.lower() == ".json":
        if labels is None:
            raise InputError(f"{path}: a JSON manifest names labels by mid; give its label CSV (label_csv=...)")
        examples = _read_json(path, labels)
    else:
        examples, labels = _read_csv(path, labels)
    if not examples:
        raise InputError(f"{path}: the manifest has no examples (empty split)")
    if not multi_label:
        several = next((e for e in examples if len(e.labels) != 1), None)
        if several is not None:
            raise InputError(
                f"{several.where}: {len(several.labels)} labels on one clip in a single-label task "
                "(set multi_label=true for multi-label data)"
            )
    return Split(examples, labels, str(path))


def _resolve(base: Path, name: str) -> Path:
    p = Path(name).expanduser()
    return p if p.is_absolute() else base / p


def _label_indices(tokens: Sequence[str], labels: LabelSet, table: dict[str, int], where: str) -> tuple[int, ...]:
    out = []
    for token in tokens:
        if token not in table:
            known = ", ".join(labels.names[:5]) + (", ..." if len(labels) > 5 else "")
            raise InputError(f"{where}: label {token!r} is not one of the {len(labels)} labels ({known})")
        out.append(table[token])
    return tuple(dict.fromkeys(out))  # order kept, duplicates dropped


def _read_json(path: Path, labels: LabelSet) -> list[Example]:
    entries = read_json_object(path, "JSON manifest").get("data")
    if not isinstance(entries, list):
        raise InputError(f'{path}: expected {{"data": [{{"wav": ..., "labels": ...}}, ...]}}')
    table = labels.index_of()
    examples = []
    for i, entry in enumerate(entries):
        where = f"{path}: entry {i}"
        if not isinstance(entry, dict) or "wav" not in entry or "labels" not in entry:
            raise InputError(f"{where}: expected an object with 'wav' and 'labels'")
        tokens = [t.strip() for t in str(entry["labels"]).split(",") if t.strip()]
        examples.append(
            Example(_resolve(path.parent, str(entry["wav"])), _label_indices(tokens, labels, table, where), where)
        )
    return examples


def _read_csv(path: Path, labels: LabelSet | None) -> tuple[list[Example], LabelSet]:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read CSV manifest ({e})") from None
    parsed = []
    for line_no, row in enumerate(rows, start=1):
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        if line_no == 1 and row[0].strip().lower() in ("path", "wav", "file", "filename"):
            continue  # header
        if len(row) < 2 or not row[1].strip():
            raise InputError(f"{path}:{line_no}: expected 'path,label[;label...]', got {','.join(row)!r}")
        tokens = [t.strip() for t in row[1].split(";") if t.strip()]
        parsed.append((line_no, row[0].strip(), tokens))
    if labels is None:
        labels = label_set_from_names(sorted({t for _, _, tokens in parsed for t in tokens}))
    table = labels.index_of()
    examples = [
        Example(_resolve(path.parent, name), _label_indices(tokens, labels, table, f"{path}:{n}"), f"{path}:{n}")
        for n, name, tokens in parsed
    ]
    return examples, labels


def _read_folders(root: Path, labels: LabelSet | None) -> tuple[list[Example], LabelSet]:
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))
    if labels is None:
        labels = label_set_from_names(classes)
    table = labels.index_of()
    examples = []
    for name in classes:
        files = sorted(f for f in (root / name).rglob("*") if f.suffix.lower() in AUDIO_EXTENSIONS)
        where = f"{root / name}"
        index = _label_indices([name], labels, table, where)
        examples += [Example(f, index, str(f)) for f in files]
    return examples, labels
