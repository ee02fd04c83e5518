"""The AudioSet ontology: parents of a class, a model's labels mapped onto it, and roll-up of scores.

The ontology (632 classes, a DAG: 38 classes have two parents, e.g. "Choir" is under both "Singing"
and "Musical instrument") ships in ``ast_deploy/labels/ontology/`` with its CC BY-SA 4.0 licence.
A model's labels are mapped onto it **by ontology id** (the ``mid`` of the authors' label CSV):
a label that is an id itself (``/m/0jbk``), or a display name that is the name of an ontology class
(the AudioSet label set's display names are exactly the ontology's names, so any model fine-tuned on
AudioSet classes maps without its CSV). A label set of one's own classes (the quickstart's keywords,
ESC-50's made-up ids) has no ontology ids and is refused with one line: rolling up a class that is
not in the ontology would silently drop it.

Roll-up: a parent's score is the **max** over itself and its descendants among the model's labels
(a clip "contains Animal" as strongly as its most likely animal sound). ``--rollup`` takes a depth
(``0``: the 7 top categories; ``1``: "Human voice", "Vehicle", "Domestic animals, pets", ...) or parent
names / ids. Depth is the length of the shortest path from a top category, so a class with two
parents sits at its shallowest level. Parents with no descendant among the labels are left out.

For predict/stream/batch (docs/decisions.md, "Roll-up")::

    rollup = rollup_for(clf.labels, "1")          # once per model; InputError for own label sets
    rollup.to_json(prediction.mean_scores)        # [{"label", "mid", "score"}, ...] best first
    rollup.apply(prediction.window_scores)        # (windows, parents) scores
    rollup.prediction(prediction)                 # a Prediction of the parents: events of parents
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from .errors import InputError

ONTOLOGY_FILE = "ontology.json"


@dataclass(frozen=True)
class OntologyClass:
    mid: str
    name: str
    children: tuple[str, ...]
    restrictions: tuple[str, ...]  # "abstract" (never a label), "blacklist" (not rated in AudioSet)


@dataclass(frozen=True)
class Ontology:
    """The classes by id, in file order, with their parents and depths precomputed."""

    classes: dict[str, OntologyClass]
    parents: dict[str, tuple[str, ...]] = field(repr=False)
    depths: dict[str, int] = field(repr=False)
    _by_name: dict[str, str] = field(repr=False)

    def __len__(self) -> int:
        return len(self.classes)

    @property
    def roots(self) -> list[str]:
        """The top categories ("Human sounds", "Animal", "Music", ...), in file order."""
        return [mid for mid in self.classes if not self.parents[mid]]

    def name(self, mid: str) -> str:
        return self.classes[mid].name

    def find(self, key: str, exact: bool = False) -> str | None:
        """The id of a class given by id or by name, or None. Names are compared case-insensitively
        (what people type), or exactly with ``exact`` (a model's labels: "dog" is not "Dog")."""
        key = key.strip()
        if key in self.classes:
            return key
        mid = self._by_name.get(key.casefold())
        return None if mid is None or (exact and self.classes[mid].name != key) else mid

    def resolve(self, key: str, where: str = "--rollup") -> str:
        """Like :meth:`find`, but an unknown class is an :class:`InputError` with the closest names."""
        mid = self.find(key)
        if mid is None:
            close = difflib.get_close_matches(key, [c.name for c in self.classes.values()], n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise InputError(f"{where}: {key!r} is not an AudioSet ontology class (name or id){hint}")
        return mid

    def ancestors(self, mid: str) -> set[str]:
        """Every class above ``mid`` along any path (not ``mid`` itself)."""
        out: set[str] = set()
        stack = list(self.parents[mid])
        while stack:
            parent = stack.pop()
            if parent not in out:
                out.add(parent)
                stack.extend(self.parents[parent])
        return out

    def descendants(self, mid: str) -> set[str]:
        """Every class below ``mid`` (not ``mid`` itself)."""
        out: set[str] = set()
        stack = list(self.classes[mid].children)
        while stack:
            child = stack.pop()
            if child not in out:
                out.add(child)
                stack.extend(self.classes[child].children)
        return out

    def paths(self, mid: str) -> list[list[str]]:
        """Every path from a top category down to ``mid`` (ids, top first)."""
        if not self.parents[mid]:
            return [[mid]]
        return [[*path, mid] for parent in self.parents[mid] for path in self.paths(parent)]

    def at_depth(self, depth: int) -> list[str]:
        """The classes whose shallowest depth is ``depth`` (0: the top categories), in file order."""
        return [mid for mid in self.classes if self.depths[mid] == depth]


def _parse(data, where: str) -> Ontology:
    if not isinstance(data, list) or not all(isinstance(e, dict) and "id" in e and "name" in e for e in data):
        raise InputError(f"{where}: not an AudioSet ontology (a JSON list of classes with id and name)")
    classes = {
        e["id"]: OntologyClass(e["id"], e["name"], tuple(e.get("child_ids", ())), tuple(e.get("restrictions", ())))
        for e in data
    }
    parents: dict[str, list[str]] = {mid: [] for mid in classes}
    for c in classes.values():
        for child in c.children:
            if child not in classes:
                raise InputError(f"{where}: class {c.mid} lists unknown child {child}")
            parents[child].append(c.mid)
    # Shallowest depth by breadth-first search from the roots; a cycle leaves classes unreached.
    depths: dict[str, int] = {}
    frontier = [mid for mid in classes if not parents[mid]]
    level = 0
    while frontier:
        nxt = []
        for mid in frontier:
            if mid not in depths:
                depths[mid] = level
                nxt.extend(classes[mid].children)
        frontier, level = nxt, level + 1
    if len(depths) != len(classes):
        raise InputError(f"{where}: the ontology has a cycle or classes unreachable from a top category")
    by_name = {c.name.casefold(): c.mid for c in classes.values()}
    return Ontology(classes, {k: tuple(v) for k, v in parents.items()}, depths, by_name)


@functools.cache
def _shipped() -> Ontology:
    with resources.as_file(resources.files("ast_deploy") / "labels" / "ontology" / ONTOLOGY_FILE) as path:
        return _parse(json.loads(path.read_text(encoding="utf-8")), str(path))


def load_ontology(path: str | Path | None = None) -> Ontology:
    """The shipped AudioSet ontology (cached), or an ontology JSON of the same layout at ``path``."""
    if path is None:
        return _shipped()
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: cannot read the ontology ({e})") from None
    return _parse(data, str(path))


def label_mids(labels: Sequence[str], mids: Sequence[str] | None = None, ontology: Ontology | None = None) -> list[str]:
    """The ontology id of each label: ``mids[i]`` when given (a label CSV's ``mid`` column), else the
    label itself when it is an id, else the id of the ontology class with that name.

    A label set with labels that are not ontology classes is refused (:class:`InputError`, one line):
    roll-up would drop them without a word.
    """
    onto = ontology or load_ontology()
    keys = list(mids) if mids is not None else list(labels)
    if len(keys) != len(labels):
        raise ValueError(f"{len(keys)} mids for {len(labels)} labels")
    out = [key if key in onto.classes else (None if mids is not None else onto.find(key, exact=True)) for key in keys]
    missing = [labels[i] for i, mid in enumerate(out) if mid is None]
    if missing:
        raise InputError(
            f"--rollup needs AudioSet labels (ids or names of the AudioSet ontology), but {len(missing)} of "
            f"{len(labels)} labels are not ontology classes (first: {missing[0]!r}); a label set of your own "
            "classes cannot be rolled up"
        )
    return out  # type: ignore[return-value]


def parse_rollup_spec(text: str | int | Sequence[str]) -> int | list[str]:
    """``--rollup``'s value: a depth (``"1"``), or parent classes by name or id.

    Ontology names contain commas ("Channel, environment and background"), so a list is separated by
    ``;``; a plain ``,`` separates names only when the whole text is not itself a class name
    (``"Animal,Music,Speech,Vehicle"`` works). Names are checked by :func:`rollup_for`.
    """
    if isinstance(text, int):
        depth = text
    elif isinstance(text, str) and text.strip().isdigit():
        depth = int(text)
    else:
        if isinstance(text, str):
            whole = text.strip()
            if ";" in whole:
                parts = whole.split(";")
            elif load_ontology().find(whole) is not None:
                parts = [whole]
            else:
                parts = whole.split(",")
        else:
            parts = list(text)
        names = [p.strip() for p in parts if p.strip()]
        if not names:
            raise InputError("--rollup: give a depth (0 = the top categories) or parent class names")
        return names
    if depth < 0:
        raise InputError(f"--rollup: depth must be 0 or more, got {depth}")
    return depth


class Rollup:
    """Scores of a label set rolled up to parent classes: ``apply`` (arrays), ``to_json`` (one vector).

    ``members[j]`` are the label indices whose class is parent ``j`` or one of its descendants.
    """

    def __init__(self, parents: list[str], members: list[np.ndarray], ontology: Ontology):
        self.mids = parents
        self.labels = [ontology.name(mid) for mid in parents]
        self.members = members
        self.ontology = ontology

    def __len__(self) -> int:
        return len(self.mids)

    def apply(self, scores: np.ndarray) -> np.ndarray:
        """``(..., labels)`` scores -> ``(..., parents)``: the max over each parent's members."""
        scores = np.asarray(scores)
        out = np.empty((*scores.shape[:-1], len(self.mids)), scores.dtype)
        for j, idx in enumerate(self.members):
            out[..., j] = scores[..., idx].max(axis=-1)
        return out

    def to_json(self, scores: np.ndarray, top_k: int | None = None) -> list[dict]:
        """One score vector (labels,) -> ``[{"label", "mid", "score"}, ...]``, best first (ties in
        ontology order), the ``top_k`` best or all."""
        rolled = self.apply(np.asarray(scores)[None, :])[0]
        order = np.argsort(-rolled, kind="stable")[: top_k or len(rolled)]
        return [{"label": self.labels[j], "mid": self.mids[j], "score": float(rolled[j])} for j in order]

    def prediction(self, prediction):
        """A :class:`~ast_deploy.pipeline.Prediction` of the parents: the same windows, the parents'
        names as labels, the window scores rolled up. Its events are the parents' events."""
        return dataclasses.replace(
            prediction, labels=list(self.labels), window_scores=self.apply(prediction.window_scores)
        )

    def event_json(self, event) -> dict:
        """A parent's :class:`~ast_deploy.events.Event` as JSON: ``label``, ``mid`` (its ontology id),
        ``index`` (its place among the parents), ``onset``, ``offset``, ``peak``."""
        doc = event.to_json()
        return {"label": doc.pop("label"), "mid": self.mids[event.index], **doc}


@functools.lru_cache(maxsize=32)
def _rollup_cached(labels: tuple[str, ...], mids: tuple[str, ...] | None, spec: int | tuple[str, ...]) -> Rollup:
    onto = load_ontology()
    label_ids = label_mids(labels, mids, onto)
    index_of: dict[str, list[int]] = {}
    for i, mid in enumerate(label_ids):
        index_of.setdefault(mid, []).append(i)
    if isinstance(spec, int):
        candidates = onto.at_depth(spec)
        if not candidates:
            deepest = max(onto.depths.values())
            raise InputError(f"--rollup: the ontology is {deepest + 1} levels deep (0..{deepest}), not {spec}")
    else:
        candidates = list(dict.fromkeys(onto.resolve(name) for name in spec))  # unique, in the order given
    parents, members = [], []
    for mid in candidates:
        idx = sorted(i for m in ({mid} | onto.descendants(mid)) for i in index_of.get(m, ()))
        if idx:
            parents.append(mid)
            members.append(np.asarray(idx, np.int64))
        elif not isinstance(spec, int):  # a parent asked for by name that covers none of the labels
            raise InputError(f"--rollup: {onto.name(mid)!r} has none of the model's {len(labels)} labels below it")
    if not parents:
        raise InputError(f"--rollup: no class at depth {spec} has any of the model's labels below it")
    return Rollup(parents, members, onto)


def rollup_for(labels: Sequence[str], spec: str | int | Sequence[str], mids: Sequence[str] | None = None) -> Rollup:
    """A :class:`Rollup` of the label set ``labels`` (display names or ids; ``mids`` from a label CSV,
    if any) to the parents that ``spec`` names (:func:`parse_rollup_spec`). Cached per label set and spec."""
    parsed = parse_rollup_spec(spec)
    key = parsed if isinstance(parsed, int) else tuple(parsed)
    return _rollup_cached(tuple(labels), None if mids is None else tuple(mids), key)


def rollup_json(scores: np.ndarray, labels: Sequence[str], spec: str | int | Sequence[str]) -> list[dict]:
    """``[{"label", "mid", "score"}, ...]`` (best first) of one score vector (labels,): the ``rollup``
    list of a file or a window in ``--json`` output."""
    return rollup_for(labels, spec).to_json(scores)


def ancestors_by_name(name: str, ontology: Ontology | None = None) -> set[str]:
    """Names of every class above the class called ``name`` (a convenience for people and tests)."""
    onto = ontology or load_ontology()
    return {onto.name(m) for m in onto.ancestors(onto.resolve(name, "ontology"))}


def names(mids: Iterable[str], ontology: Ontology | None = None) -> list[str]:
    onto = ontology or load_ontology()
    return [onto.name(m) for m in mids]


__all__ = [
    "Ontology",
    "OntologyClass",
    "Rollup",
    "ancestors_by_name",
    "label_mids",
    "load_ontology",
    "parse_rollup_spec",
    "rollup_for",
    "rollup_json",
]
