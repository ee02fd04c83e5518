"""``manifest.json``: everything a runtime needs to know about an artifact directory.

Runtimes, parity, bench and the C++ hosts read only this; nothing is guessed from file names.

Layout (``format_version`` 2)::

    {
      "format": "ast-deploy-artifacts", "format_version": 2, "created": ISO-8601,
      "ast_deploy_version": "...",
      "source": {"path", "format", "sha256"},           # the checkpoint exported
      "reference": {"path": "reference", "format": "ast-deploy"},   # float32 weights, for parity
      "model": {ASTConfig fields}, "labels": [...], "activation": "sigmoid" | "softmax",
      "input": {"kind", "sample_rate", "num_samples", "window_samples", "frame_samples", "num_frames",
                "num_mel_bins", "dtype", "names": [...], "output": "logits", "batch": {"min","opt","max"},
                "dynamic_axes": {name: {"0": "batch"}}, "normalization": {"mean","std"},
                "frontend": {FrontEndConfig fields}},
      "outputs": [{"name": "logits", "shape": ["batch", num_labels], "dtype", "meaning"},
                  {"name": "embedding", "shape": ["batch", embed_dim], "dtype", "meaning"}],
      "embedding": {"output": "embedding", "dim", "definition", "per_file"},
      "artifacts": [{"name", "files": [{"file", "sha256", "bytes"}, ...], "format", "precision",
                     "opset", "tools", "parity": {...} | null}],
      "skipped": [{"name", "reason"}]
    }

An artifact is one or more files, relative to the directory; the first is the primary file, the one
a runtime opens (:func:`primary_file`); the others are companions it reads beside it (an OpenVINO
IR's ``model.bin`` beside ``model.xml``, say). An export module names them in ``FILES`` (primary
first), or in ``FILE`` alone when there is one.

``input.window_samples`` (samples per window) and ``input.frame_samples`` (one analysis frame, the
shortest audio with a window) are the window rule's sizes (:mod:`ast_deploy.windows`), recorded so that
no reader recomputes them (the C++ runtime reads them); :func:`read_manifest` derives them, by that
rule, for manifests written before they were recorded.

``outputs`` lists the graph outputs every artifact of the directory answers, by tensor name, in order:
``logits`` and ``embedding`` (the clip embedding, defined once for the directory under ``embedding``:
:data:`ast_deploy.model.EMBEDDING_DEFINITION`). A manifest without ``outputs`` (or without
``embedding`` among them) was written before embeddings were exported: its artifacts answer
``logits`` alone, which work as ever, and asking them for embeddings is one :class:`InputError`
(:func:`output_names`; ``ArtifactDir.embedding_unavailable``).

Format 1 gave each artifact a single ``"file", "sha256", "bytes"``. :func:`read_manifest` still reads
it and hands out the format-2 shape (``files`` with one entry), so nothing else sees format 1.

``manifest.schema.json`` (beside this module) is the JSON Schema of both formats: every manifest
Python writes goes through :func:`write_manifest`, which validates it, and the C++ tests validate the
manifests they feed the C++ reader.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ..errors import InputError
from ..fileio import read_json_object, sha256_file, write_json
from ..frontend import FrontEndConfig
from ..model import EMBEDDING_DEFINITION, EMBEDDING_NAME, OUTPUT_NAME, ASTConfig
from ..validation import first_violation, load_schema
from ..windows import frame_samples, window_length

MANIFEST = "manifest.json"
FORMAT = "ast-deploy-artifacts"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
REQUIRED = ("format", "format_version", "model", "labels", "activation", "input", "artifacts")
FILE_KEYS = ("file", "sha256", "bytes")
SCHEMA = "manifest.schema.json"


def read_manifest(directory: str | Path) -> dict:
    """The manifest of ``directory`` in the format-2 shape (a format-1 one is upgraded in memory)."""
    directory = Path(directory)
    path = directory / MANIFEST
    if not path.is_file():
        raise InputError(f"{directory}: no {MANIFEST} (not an artifact directory written by 'ast-deploy export')")
    manifest = read_json_object(path, "manifest")
    missing = [k for k in REQUIRED if k not in manifest]
    if missing:
        raise InputError(f"{path}: manifest lacks {', '.join(missing)}")
    version = manifest["format_version"]
    if manifest["format"] != FORMAT or type(version) is not int or version not in READABLE_VERSIONS:
        raise InputError(
            f"{path}: format {manifest['format']!r} v{version} is not {FORMAT!r} "
            f"v{' or v'.join(map(str, READABLE_VERSIONS))}"
        )
    if len(manifest["labels"]) != manifest["model"].get("num_labels"):
        raise InputError(f"{path}: {len(manifest['labels'])} labels for {manifest['model'].get('num_labels')} outputs")
    if not isinstance(manifest["artifacts"], list):
        raise InputError(f"{path}: manifest artifacts is not a list")
    if version == 1:
        manifest["artifacts"] = [_upgrade_v1(a, path, i) for i, a in enumerate(manifest["artifacts"])]
        manifest["format_version"] = FORMAT_VERSION
        manifest["upgraded_from_format_version"] = 1
    for i, artifact in enumerate(manifest["artifacts"]):
        _check_artifact(artifact, path, i)
    _fill_window_sizes(manifest["input"], path)
    _check_outputs(manifest, path)
    return manifest


def _check_outputs(manifest: dict, path: Path) -> None:
    """``outputs``, where recorded, is a list of named outputs that starts with ``logits``."""
    outputs = manifest.get("outputs")
    if outputs is None:
        return  # written before embeddings: logits only (output_names)
    if not (
        isinstance(outputs, list)
        and outputs
        and all(isinstance(o, dict) and isinstance(o.get("name"), str) for o in outputs)
    ):
        raise InputError(f"{path}: manifest outputs is not a list of named outputs")
    if outputs[0]["name"] != OUTPUT_NAME:
        raise InputError(f"{path}: manifest outputs start with {outputs[0]['name']!r}, not {OUTPUT_NAME!r}")


def output_entries(config: ASTConfig) -> list[dict]:
    """The ``outputs`` of a manifest written now: every exported graph answers both, in this order."""
    return [
        {
            "name": OUTPUT_NAME,
            "shape": ["batch", config.num_labels],
            "dtype": "float32",
            "meaning": "the classifier head's output per window, before the activation (scores = activation(logits))",
        },
        {
            "name": EMBEDDING_NAME,
            "shape": ["batch", config.embed_dim],
            "dtype": "float32",
            "meaning": "the clip embedding of each window: the head's input (see embedding.definition)",
        },
    ]


def embedding_entry(config: ASTConfig) -> dict:
    """The manifest's ``embedding``: what the ``embedding`` output is, once for the directory."""
    return {
        "output": EMBEDDING_NAME,
        "dim": config.embed_dim,
        "definition": EMBEDDING_DEFINITION,
        "per_file": "mean over the file's windows",
    }


def output_names(manifest: dict) -> list[str]:
    """The graph outputs of the manifest's artifacts, in order: ``["logits", "embedding"]``, or
    ``["logits"]`` for a manifest written before embeddings were exported."""
    outputs = manifest.get("outputs")
    if not outputs:
        return [OUTPUT_NAME]
    return [o["name"] for o in outputs]


def _fill_window_sizes(section, path: Path) -> None:
    """Check ``input.window_samples`` and ``input.frame_samples``, or derive them (in memory, as format 1
    is upgraded) for a manifest written before they were recorded, by the window rule from its graph and
    front end."""
    if not isinstance(section, dict):
        raise InputError(f"{path}: manifest input is not an object")
    if "window_samples" not in section or "frame_samples" not in section:
        try:
            frontend = FrontEndConfig(**section["frontend"])
        except (KeyError, TypeError):
            raise InputError(f"{path}: manifest input lacks window_samples and a frontend to derive it from") from None
        section.setdefault("window_samples", window_length(section.get("num_samples"), frontend))
        section.setdefault("frame_samples", frame_samples(frontend))
    for key in ("window_samples", "frame_samples"):
        if type(section[key]) is not int or section[key] < 1:
            raise InputError(f"{path}: manifest input.{key} is not a positive integer")
    graph_samples = section.get("num_samples")
    if graph_samples is not None and section["window_samples"] != graph_samples:
        raise InputError(
            f"{path}: manifest input.window_samples {section['window_samples']} differs from input.num_samples "
            f"{graph_samples} (a waveform graph's window is its input)"
        )


def validate_manifest(manifest: dict) -> None:
    """Raise ``ValueError`` naming the first place where ``manifest`` breaks ``manifest.schema.json`` (a bug
    of its writer); a no-op where jsonschema is not installed."""
    problem = first_violation(load_schema(__package__, SCHEMA), manifest)
    if problem is not None:
        raise ValueError(f"manifest does not match {SCHEMA}: {problem}")


def write_manifest(directory: str | Path, manifest: dict) -> Path:
    """Validate ``manifest`` and write it to ``directory/manifest.json`` atomically."""
    validate_manifest(manifest)
    path = Path(directory) / MANIFEST
    write_json(path, manifest)
    return path


def _upgrade_v1(artifact, path: Path, i: int) -> dict:
    """A format-1 entry (``file``, ``sha256``, ``bytes``) -> format 2 (``files``), key order kept."""
    if not isinstance(artifact, dict) or not isinstance(artifact.get("file"), str) or "sha256" not in artifact:
        raise InputError(f"{path}: manifest artifacts[{i}] lacks name, format, file or sha256")
    out = {}
    for key, value in artifact.items():
        if key == "file":
            out["files"] = [{k: artifact.get(k) for k in FILE_KEYS}]
        elif key not in FILE_KEYS:
            out[key] = value
    return out


def _check_artifact(artifact, path: Path, i: int) -> None:
    where = f"{path}: manifest artifacts[{i}]"
    if not isinstance(artifact, dict) or not all(isinstance(artifact.get(k), str) for k in ("name", "format")):
        raise InputError(f"{where} lacks name, format or files")
    files = artifact.get("files")
    if not isinstance(files, list) or not files:
        raise InputError(f"{where} ({artifact['name']}) lists no files")
    for j, entry in enumerate(files):
        if not (
            isinstance(entry, dict) and isinstance(entry.get("file"), str) and isinstance(entry.get("sha256"), str)
        ):
            raise InputError(f"{where} ({artifact['name']}) files[{j}] lacks file or sha256")


def primary_file(artifact: dict) -> str:
    """The file a runtime opens: the first of the artifact's files, relative to the directory."""
    return artifact["files"][0]["file"]


def artifact_bytes(artifact: dict) -> int:
    """Size of all the artifact's files together."""
    return sum(f.get("bytes") or 0 for f in artifact["files"])


def file_entries(directory: str | Path, names: Iterable[str]) -> list[dict]:
    """``[{"file", "sha256", "bytes"}, ...]`` of the files ``names`` in ``directory``, in that order."""
    directory = Path(directory)
    return [{"file": n, "sha256": sha256_file(directory / n), "bytes": (directory / n).stat().st_size} for n in names]


def find_artifact(manifest: dict, name: str, directory: str | Path) -> dict:
    for artifact in manifest["artifacts"]:
        if artifact["name"] == name:
            return artifact
    have = ", ".join(a["name"] for a in manifest["artifacts"]) or "none"
    raise InputError(f"{directory}: no artifact {name!r} in the manifest (have: {have})")


def verify_artifact(directory: str | Path, artifact: dict) -> Path:
    """The primary file's path after checking that every file of the artifact is there and holds
    the bytes the manifest recorded."""
    directory = Path(directory)
    for entry in artifact["files"]:
        path = directory / entry["file"]
        if not path.is_file():
            raise InputError(f"{path}: listed in the manifest but missing")
        digest = sha256_file(path)
        if digest != entry["sha256"]:
            raise InputError(f"{path}: sha256 {digest[:12]}... does not match the manifest ({entry['sha256'][:12]}...)")
    return directory / primary_file(artifact)
