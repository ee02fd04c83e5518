"""``manifest.json``: everything a runtime needs to know about an artifact directory.

Runtimes, parity, bench and the C++ hosts read only this; nothing is guessed from file names.

Layout (``format_version`` 1)::

    {
      "format": "ast-deploy-artifacts", "format_version": 1, "created": ISO-8601,
      "ast_deploy_version": "...",
      "source": {"path", "format", "sha256"},           # the checkpoint exported
      "reference": {"path": "reference", "format": "ast-deploy"},   # float32 weights, for parity
      "model": {ASTConfig fields}, "labels": [...], "activation": "sigmoid" | "softmax",
      "input": {"kind", "sample_rate", "num_samples", "num_frames", "num_mel_bins", "dtype",
                "names": [...], "output": "logits", "batch": {"min","opt","max"},
                "dynamic_axes": {name: {"0": "batch"}}, "normalization": {"mean","std"},
                "frontend": {FrontEndConfig fields}},
      "artifacts": [{"name", "file", "format", "precision", "opset", "tools", "sha256", "bytes",
                     "parity": {...} | null}],
      "skipped": [{"name", "reason"}]
    }
"""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from ..fileio import read_json_object, sha256_file

MANIFEST = "manifest.json"
FORMAT = "ast-deploy-artifacts"
FORMAT_VERSION = 1
REQUIRED = ("format", "format_version", "model", "labels", "activation", "input", "artifacts")


def read_manifest(directory: str | Path) -> dict:
    directory = Path(directory)
    path = directory / MANIFEST
    if not path.is_file():
        raise InputError(f"{directory}: no {MANIFEST} (not an artifact directory written by 'ast-deploy export')")
    manifest = read_json_object(path, "manifest")
    missing = [k for k in REQUIRED if k not in manifest]
    if missing:
        raise InputError(f"{path}: manifest lacks {', '.join(missing)}")
    if manifest["format"] != FORMAT or manifest["format_version"] != FORMAT_VERSION:
        raise InputError(
            f"{path}: format {manifest['format']!r} v{manifest['format_version']} is not {FORMAT!r} v{FORMAT_VERSION}"
        )
    if len(manifest["labels"]) != manifest["model"].get("num_labels"):
        raise InputError(f"{path}: {len(manifest['labels'])} labels for {manifest['model'].get('num_labels')} outputs")
    return manifest


def find_artifact(manifest: dict, name: str, directory: str | Path) -> dict:
    for artifact in manifest["artifacts"]:
        if artifact["name"] == name:
            return artifact
    have = ", ".join(a["name"] for a in manifest["artifacts"]) or "none"
    raise InputError(f"{directory}: no artifact {name!r} in the manifest (have: {have})")


def verify_artifact(directory: str | Path, artifact: dict) -> Path:
    """The artifact's path after checking that its bytes are the ones the manifest recorded."""
    path = Path(directory) / artifact["file"]
    if not path.is_file():
        raise InputError(f"{path}: listed in the manifest but missing")
    digest = sha256_file(path)
    if digest != artifact["sha256"]:
        raise InputError(f"{path}: sha256 {digest[:12]}... does not match the manifest ({artifact['sha256'][:12]}...)")
    return path
