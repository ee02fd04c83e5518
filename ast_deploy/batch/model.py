"""The model of a batch job: what the driver checks before Ray starts, and the actor that runs it.

The driver reads only what the decode tasks and the output need (labels, rate, identity, backend)
and fails early, as one line, on anything predict would refuse; each actor then opens the model once
(:func:`open_model`) and scores the windows of many files in shared batches (:class:`Scorer`).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from ..checkpoints import LoadOptions
from ..errors import InputError
from ..fileio import sha256_file
from ..windows import frame_samples, hop_length, pack_windows, window_starts
from .schema import TIMELINE_COLUMN, Columns, vectors


@dataclass(frozen=True)
class ModelSpec:
    """How every actor opens the model (pickled to the actors: plain values only)."""

    path: str
    backend: str | None
    device: str = "cpu"
    options: LoadOptions | None = None
    threads: int | None = None

    @property
    def is_artifact_dir(self) -> bool:
        return (Path(self.path) / "manifest.json").is_file()


@dataclass(frozen=True)
class ModelInfo:
    """What the driver knows of the model: recorded in ``_batch.json`` and given to the decode tasks."""

    backend: str
    labels: list[str]
    sample_rate: int
    frame_samples: int  # one analysis frame: the shortest audio a window can hold
    frame_ms: float
    sha256: str
    kind: str  # "artifacts" | "checkpoint"
    identity: str  # what sha256 is the digest of


def _sha256_dir(path: Path) -> str:
    """A directory checkpoint's digest: sha256 over its files' relative names and sha256s, sorted
    (the recipe of the manifest's ``source.sha256``, ``ast_deploy.export._sha256_dir``)."""
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(f"{f.relative_to(path)}\0{sha256_file(f)}\n".encode())
    return h.hexdigest()


def model_info(spec: ModelSpec, here: bool = True) -> ModelInfo:
    """Check the model as predict would (one line on any problem) and describe it, without running it.

    An artifact directory is read from its manifest only (opening OpenVINO here would compile the
    model once more for nothing); its identity is the sha256 of ``manifest.json``, which holds every
    artifact file's sha256. A checkpoint is loaded on the CPU (that is its check) and hashed.
    ``here``: the actors run on this machine, so a backend it cannot run is refused now (on a cluster
    the workers may have what the driver lacks: a GPU).
    """
    path = Path(spec.path)
    if not path.exists():
        raise InputError(f"{path}: no such checkpoint or artifact directory")
    if spec.is_artifact_dir:
        from ..artifacts import ArtifactDir

        artifacts = ArtifactDir(path)
        name = spec.backend or artifacts.default_backend(spec.device)
        if name not in artifacts.backend_names():
            raise InputError(f"unknown backend {name!r}; {path} has: {', '.join(artifacts.backend_names())}")
        why = artifacts.unavailable(name, spec.device) if here else None
        if why:
            raise InputError(f"backend {name!r} cannot run here: {why}")
        frontend = artifacts.frontend_config
        return ModelInfo(
            name,
            artifacts.labels,
            frontend.sample_rate,
            frame_samples(frontend),
            frontend.frame_length_ms,
            sha256_file(path / "manifest.json"),
            "artifacts",
            "manifest.json",
        )
    from .. import load

    clf = load(path, device="cpu", options=spec.options, backend=spec.backend)
    try:
        frontend = clf.frontend_config
        info = dict(
            backend=clf.backend.name,
            labels=list(clf.labels),
            sample_rate=clf.sample_rate,
            frame_samples=frame_samples(frontend),
            frame_ms=frontend.frame_length_ms,
        )
    finally:
        clf.close()
    digest = sha256_file(path) if path.is_file() else _sha256_dir(path)
    return ModelInfo(**info, sha256=digest, kind="checkpoint", identity=path.name)


def open_model(spec: ModelSpec):
    """The :class:`~ast_deploy.pipeline.Classifier` of ``spec``, with ``threads`` intra-op threads.

    ``ast_deploy.load`` / ``open_classifier`` take no thread count, and ONNX Runtime and OpenVINO
    otherwise use every core of the node, whatever the actor was given; so an artifact backend is
    opened here through ``ArtifactDir.open(..., threads)``.
    """
    import torch

    from .. import load
    from ..pipeline import Classifier

    if spec.threads:
        torch.set_num_threads(spec.threads)  # the PyTorch backends and the front end of fbank artifacts
    if not spec.is_artifact_dir:
        return load(spec.path, device=spec.device, options=spec.options, backend=spec.backend)
    from ..artifacts import ArtifactDir

    artifacts = ArtifactDir(spec.path)
    name = spec.backend or artifacts.default_backend(spec.device)
    runtime = artifacts.open(name, spec.device, spec.threads)
    return Classifier(runtime, artifacts.frontend_config, artifacts.labels, artifacts.activation)


def embeddings_unavailable(spec: ModelSpec) -> str | None:
    """Why ``--embeddings`` cannot be served by this model, or ``None``. The one place that decides it.

    A checkpoint always can (the PyTorch backends compute the embedding the head reads); an artifact
    directory can where its manifest lists the ``embedding`` output (exported since embeddings), read
    from the manifest alone, without opening the model. A path that is no model is left to
    :func:`model_info`, which names the problem."""
    if not spec.is_artifact_dir:
        return None
    from ..artifacts import ArtifactDir

    artifacts = ArtifactDir(spec.path)
    name = spec.backend or artifacts.default_backend(spec.device)
    if name not in artifacts.backend_names():
        return None  # model_info refuses the name, with the list
    return artifacts.embedding_unavailable(name)


@dataclass(frozen=True)
class ScoreSettings:
    """What the actors compute per file (part of the settings a resumed job must keep)."""

    top_k: int = 5
    aggregate: str = "mean"
    hop_seconds: float | None = None
    batch_size: int = 8  # windows per model call, across files
    columns: Columns = field(default_factory=Columns)
    events: Any = None  # ast_deploy.events.EventConfig with --events (of the parents with --rollup)
    rollup: str | None = None  # --rollup's spec: parents per file (ast_deploy.ontology.rollup_for)


class Scorer:
    """The Ray actor: the model opened once; each call scores the windows of a batch of decoded files.

    Windows of consecutive files share model batches of ``batch_size`` (a 1-window clip does not
    run at batch 1). Windows follow :func:`ast_deploy.windows.window_starts`, predict's rule, and
    each file's result is built by :class:`ast_deploy.pipeline.Prediction` (aggregation, top-k) and
    :func:`ast_deploy.events.prediction_events`, so that it equals predict's.
    """

    spec: ModelSpec
    settings: ScoreSettings

    def __init__(self) -> None:
        self.clf = open_model(self.spec)
        self.window = self.clf.window
        self.hop = hop_length(self.settings.hop_seconds, self.clf.sample_rate, self.window)
        max_batch = self.clf.max_batch or self.settings.batch_size
        self.batch = max(1, min(self.settings.batch_size, max_batch))
        # A backend compiled per batch shape (OpenVINO) runs every batch at one size: a partial batch
        # padded, rather than a compilation per size (docs/streaming.md, section 1).
        self.pad_to = self.batch if self.clf.static_batch_shapes else 1
        self.rollup = None
        if self.settings.rollup is not None:
            from ..ontology import rollup_for

            self.rollup = rollup_for(self.clf.labels, self.settings.rollup)

    def outputs(self, windows: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(scores (B, labels), embeddings (B, D) or None) of a batch of windows: the one call of the model,
        :meth:`ast_deploy.pipeline.Classifier.outputs`, which predict's stream calls too (the embeddings
        only with ``--embeddings``)."""
        return self.clf.outputs(windows, lengths, self.pad_to, embedding=self.settings.columns.embeddings)

    def __call__(self, batch: dict[str, np.ndarray]) -> pa.Table:
        n = len(batch["path"])
        samples = list(batch["samples"])
        ok = [batch["status"][i] == "ok" for i in range(n)]
        starts = [window_starts(len(samples[i]), self.window, self.hop) if ok[i] else [] for i in range(n)]
        jobs = [(i, s) for i in range(n) for s in starts[i]]
        scores: list[list[np.ndarray]] = [[] for _ in range(n)]
        embeds: list[list[np.ndarray]] = [[] for _ in range(n)]
        failed: dict[int, str] = {}
        for first in range(0, len(jobs), self.batch):
            chunk = jobs[first : first + self.batch]
            try:
                s, e = self._run(chunk, samples)
            except Exception as err:  # one file the model cannot take must not fail its batch-mates
                s, e = self._run_one_by_one(chunk, samples, failed, err)
            for row, (i, _) in enumerate(chunk):
                if s[row] is not None:
                    scores[i].append(s[row])
                    if e is not None:
                        embeds[i].append(e[row])
        return self._table(batch, samples, starts, scores, embeds, failed)

    def _run(self, chunk: list[tuple[int, int]], samples: list[np.ndarray]):
        windows, lengths = pack_windows([samples[i][start : start + self.window] for i, start in chunk], self.window)
        return self.outputs(windows, lengths)

    def _run_one_by_one(self, chunk, samples, failed: dict[int, str], err: Exception):
        """A failed batch again window by window: the files whose windows fail become error rows."""
        out_s: list[np.ndarray | None] = []
        out_e: list[np.ndarray | None] = []
        for i, start in chunk:
            try:
                s, e = self._run([(i, start)], samples)
                out_s.append(s[0])
                out_e.append(None if e is None else e[0])
            except Exception as one:
                failed.setdefault(
                    i, f"the model failed on this file: {type(one).__name__}: {' '.join(str(one).split())}"
                )
                out_s.append(None)
                out_e.append(None)
        return out_s, (None if all(e is None for e in out_e) else out_e)

    def _table(self, batch, samples, starts, scores, embeds, failed) -> pa.Table:
        from ..events import prediction_events
        from ..pipeline import Prediction

        st = self.settings
        cols = st.columns
        rate = self.clf.sample_rate
        rows: dict[str, list] = {name: [] for name in cols.files_schema(nested_timeline=True).names}
        clip_scores: list[np.ndarray | None] = []
        clip_embeds: list[np.ndarray | None] = []
        for i in range(len(batch["path"])):
            path = str(batch["path"][i])
            size, mtime = int(batch["size"][i]), int(batch["mtime"][i])
            rows["path"].append(path)
            rows["size"].append(None if size < 0 else size)
            rows["mtime"].append(None if mtime < 0 else mtime)
            error = str(batch["error"][i]) if batch["status"][i] != "ok" else failed.get(i)
            if error is not None:
                for name in (
                    "duration",
                    "sample_rate",
                    "windows",
                    "top_labels",
                    "top_scores",
                    "events",
                    "rollup",
                    TIMELINE_COLUMN,
                ):
                    if name in rows:
                        rows[name].append(None)
                rows["status"].append("error")
                rows["error"].append(error if error.startswith(path) else f"{path}: {error}")
                clip_scores.append(None)
                clip_embeds.append(None)
                continue
            p = Prediction(path, rate, len(samples[i]), starts[i], self.window, self.clf.labels, np.stack(scores[i]))
            top = p.top(st.top_k, st.aggregate)
            rows["duration"].append(p.duration)
            rows["sample_rate"].append(int(batch["sample_rate"][i]))
            rows["windows"].append(len(starts[i]))
            rows["top_labels"].append([t["label"] for t in top])
            rows["top_scores"].append([t["score"] for t in top])
            rows["status"].append("ok")
            rows["error"].append(None)
            clip_scores.append(p.mean_scores if st.aggregate == "mean" else p.max_scores)
            window_embeds = np.stack(embeds[i]) if embeds[i] else None
            clip_embeds.append(None if window_embeds is None else window_embeds.mean(axis=0))
            if cols.rollup:
                rows["rollup"].append(self.rollup.to_json(clip_scores[-1]))
            if cols.events and self.rollup is not None:  # events of the parents, as predict --rollup gives
                found = prediction_events(self.rollup.prediction(p), st.events, st.hop_seconds)
                rows["events"].append([self.rollup.event_json(e) for e in found])
            elif cols.events:
                rows["events"].append([e.to_json() for e in prediction_events(p, st.events, st.hop_seconds)])
            if cols.timeline:
                rows[TIMELINE_COLUMN].append((p, window_embeds))
        arrays: dict[str, Any] = {}
        schema = cols.files_schema(nested_timeline=True)
        for f in schema:
            if f.name == "scores":
                arrays[f.name] = vectors(
                    [None if s is None else s.astype(np.float32) for s in clip_scores], cols.score_type
                )
            elif f.name == "embedding":
                arrays[f.name] = vectors(clip_embeds, pa.float32())
            elif f.name == TIMELINE_COLUMN:
                arrays[f.name] = self._timeline(rows[f.name], cols)
            elif f.name == "mtime":
                arrays[f.name] = pa.array(rows["mtime"], pa.int64()).cast(f.type)
            else:
                arrays[f.name] = pa.array(rows[f.name], f.type)
        return pa.Table.from_pydict(arrays, schema=schema)

    @staticmethod
    def _timeline(files: list, cols: Columns) -> pa.ListArray:
        """The nested windows column: per file (``None`` for an error row) a list of window structs."""
        counts = np.array([0 if f is None else len(f[0].starts) for f in files], np.int32)
        offsets = np.zeros(len(files) + 1, np.int32)
        np.cumsum(counts, out=offsets[1:])
        done = [f for f in files if f is not None]
        index = (
            np.concatenate([np.arange(len(p.starts), dtype=np.int32) for p, _ in done])
            if done
            else np.zeros(0, np.int32)
        )
        starts = np.concatenate([np.asarray(p.starts, np.int64) for p, _ in done]) if done else np.zeros(0, np.int64)
        ends = (
            np.concatenate([np.minimum(np.asarray(p.starts) + p.window, p.num_samples) for p, _ in done])
            if done
            else starts
        )
        rate = done[0][0].sample_rate if done else 1
        fields = [
            pa.array(index, pa.int32()),
            pa.array(starts / rate, pa.float64()),
            pa.array(ends / rate, pa.float64()),
            vectors([row for p, _ in done for row in p.window_scores], cols.score_type),
        ]
        if cols.embeddings:
            per_window: list[np.ndarray | None] = []
            for p, e in done:
                per_window.extend([None] * len(p.starts) if e is None else list(e))
            fields.append(vectors(per_window, pa.float32()))
        windows = pa.StructArray.from_arrays(fields, fields=list(cols.window_type))
        mask = pa.array([f is None for f in files], pa.bool_())
        return pa.ListArray.from_arrays(pa.array(offsets), windows, mask=mask)


def scorer_class(spec: ModelSpec, settings: ScoreSettings) -> type[Scorer]:
    """A :class:`Scorer` subclass carrying ``spec`` and ``settings`` as class attributes.

    Ray Data puts constructor arguments in the object store, and an actor with such arguments and
    restarts enabled makes Ray print a warning per actor; the class itself (pickled by value) carries
    the few plain values instead.
    """
    # A name the module does not have, so that cloudpickle sends the class by value, attributes included.
    return type("BatchScorer", (Scorer,), {"spec": spec, "settings": settings})


def default_threads(actors: int) -> int:
    """Threads per actor on one machine: its cores shared among the actors."""
    return max(1, (os.cpu_count() or 1) // max(1, actors))


__all__ = [
    "ModelInfo",
    "ModelSpec",
    "ScoreSettings",
    "Scorer",
    "default_threads",
    "embeddings_unavailable",
    "model_info",
    "open_model",
    "scorer_class",
]
