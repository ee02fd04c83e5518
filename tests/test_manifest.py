"""``manifest.json`` format 2 (an artifact is a list of files, the primary one first) and format 1.

``tests/manifest_v1`` is an artifact directory written by the format-1 exporter (commit 73d9d7b,
``ast-deploy export --to torchscript --input waveform --batch 1:2:4``) from a random-weight model of
one block, width 32, 100 frames and 5 labels: small enough to commit, a real export all the same.
Its ``manifest.json`` must never be edited: it stands for directories users already have.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import REPO_ROOT, SPEECH_WAV, assert_input_error, run_cli

from ast_deploy.artifacts import ArtifactDir
from ast_deploy.errors import InputError
from ast_deploy.export.manifest import (
    FORMAT_VERSION,
    primary_file,
    read_manifest,
    validate_manifest,
    verify_artifact,
    write_manifest,
)
from ast_deploy.fileio import sha256_file

V1_DIR = REPO_ROOT / "tests" / "manifest_v1"
COMPANION = "model.extra.bin"

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def v1_manifest() -> dict:
    return json.loads((V1_DIR / "manifest.json").read_text())


def windows(spec, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch`` windows of the speech fixture, the last one shorter than a full window."""
    speech, _ = sf.read(str(SPEECH_WAV), dtype="float32")
    x = np.stack([speech[i * 8000 : i * 8000 + spec.num_samples] for i in range(batch)])
    lengths = torch.full((batch,), spec.num_samples, dtype=torch.int64)
    lengths[-1] = 9000
    x[-1, 9000:] = 0
    return torch.from_numpy(x), lengths


@pytest.fixture
def two_files(tmp_path) -> Path:
    """The v1 directory rewritten as format 2 with a companion file after the TorchScript module."""
    out = tmp_path / "two_files"
    shutil.copytree(V1_DIR, out)
    (out / COMPANION).write_bytes(bytes(range(256)) * 8)
    manifest = v1_manifest()
    (artifact,) = manifest["artifacts"]
    files = [{k: artifact.pop(k) for k in ("file", "sha256", "bytes")}]
    files.append({"file": COMPANION, "sha256": sha256_file(out / COMPANION), "bytes": 2048})
    manifest["artifacts"] = [{"name": artifact.pop("name"), "files": files, **artifact}]
    manifest["format_version"] = 2
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return out


# --- format 1, read as format 2 ----------------------------------------------------------------


def test_the_v1_fixture_is_format_1_and_small():
    raw = v1_manifest()
    assert raw["format_version"] == 1 and [a["file"] for a in raw["artifacts"]] == ["model.ts"]
    assert "files" not in raw["artifacts"][0]
    assert sum(p.stat().st_size for p in V1_DIR.rglob("*") if p.is_file()) < 2 * 2**20


def test_v1_manifest_is_read_in_the_format_2_shape():
    raw = v1_manifest()["artifacts"][0]
    manifest = read_manifest(V1_DIR)
    assert manifest["format_version"] == FORMAT_VERSION == 2
    (artifact,) = manifest["artifacts"]
    assert artifact["files"] == [{"file": "model.ts", "sha256": raw["sha256"], "bytes": raw["bytes"]}]
    assert not {"file", "sha256", "bytes"} & set(artifact)
    assert list(artifact)[:2] == ["name", "files"]  # where "file" was
    assert primary_file(artifact) == "model.ts"
    assert verify_artifact(V1_DIR, artifact) == V1_DIR / "model.ts"
    shown = run_cli("info", V1_DIR, "--json")
    assert shown.code == 0, shown.stderr
    assert shown.json()["artifacts"][0]["files"][0]["file"] == "model.ts"


def test_v1_directory_runs_like_its_reference():
    artifacts = ArtifactDir(V1_DIR)
    assert artifacts.artifact_names() == ["torchscript"]
    x, n = windows(artifacts.spec, 3)
    got = artifacts.open("torchscript")(x, n)
    want = artifacts.open("pytorch")(x, n)
    assert got.shape == (3, 5) and float(want.abs().max()) > 0.1  # random weights: logits far from zero
    torch.testing.assert_close(got, want, atol=1e-4, rtol=0)


def test_v1_directory_predicts_through_the_cli():
    torchscript = run_cli("predict", V1_DIR, SPEECH_WAV, "--json", "--backend", "torchscript", "-k", "5")
    pytorch = run_cli("predict", V1_DIR, SPEECH_WAV, "--json", "--backend", "pytorch", "-k", "5")
    assert torchscript.code == pytorch.code == 0, torchscript.stderr + pytorch.stderr
    got, want = torchscript.json()["results"][0]["top"], pytorch.json()["results"][0]["top"]
    assert [t["label"] for t in got] == [t["label"] for t in want]
    np.testing.assert_allclose([t["score"] for t in got], [t["score"] for t in want], atol=1e-4)


def test_tampered_v1_file_is_refused(tmp_path):
    copy = tmp_path / "v1"
    shutil.copytree(V1_DIR, copy)
    data = bytearray((copy / "model.ts").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / "model.ts").write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"model\.ts: sha256 [0-9a-f]{12}\.\.\. does not match the manifest"):
        ArtifactDir(copy).open("torchscript")


# --- format 2: several files -------------------------------------------------------------------


def test_every_file_of_an_artifact_is_checked(two_files):
    artifact = read_manifest(two_files)["artifacts"][0]
    assert [f["file"] for f in artifact["files"]] == ["model.ts", COMPANION]
    assert verify_artifact(two_files, artifact) == two_files / "model.ts"  # the primary file
    artifacts = ArtifactDir(two_files)
    x, n = windows(artifacts.spec, 2)
    torch.testing.assert_close(artifacts.open("torchscript")(x, n), artifacts.open("pytorch")(x, n), atol=1e-4, rtol=0)

    data = bytearray((two_files / COMPANION).read_bytes())
    data[100] ^= 0x01
    (two_files / COMPANION).write_bytes(bytes(data))
    expected = (
        f"{two_files / COMPANION}: sha256 {sha256_file(two_files / COMPANION)[:12]}... does not match the manifest ("
    )
    with pytest.raises(InputError) as caught:
        verify_artifact(two_files, artifact)
    assert str(caught.value).startswith(expected) and "\n" not in str(caught.value)
    assert_input_error(run_cli("predict", two_files, SPEECH_WAV, "--backend", "torchscript"), COMPANION, "sha256")

    (two_files / COMPANION).unlink()
    with pytest.raises(InputError, match=f"{COMPANION}: listed in the manifest but missing"):
        verify_artifact(two_files, artifact)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format_version": 3}, "v3 is not 'ast-deploy-artifacts' v1 or v2"),
        ({"format_version": "2"}, "is not 'ast-deploy-artifacts' v1 or v2"),
        ({"format": "something-else"}, "format 'something-else' v2 is not"),
    ],
)
def test_unknown_format_or_version_is_one_line(two_files, change, message):
    manifest = json.loads((two_files / "manifest.json").read_text())
    (two_files / "manifest.json").write_text(json.dumps({**manifest, **change}))
    with pytest.raises(InputError, match=message) as caught:
        read_manifest(two_files)
    assert "\n" not in str(caught.value)
    assert_input_error(run_cli("predict", two_files, SPEECH_WAV), "manifest.json", message)


@pytest.mark.parametrize(
    ("files", "message"),
    [([], "lists no files"), ([{"file": "model.ts"}], "files[0] lacks file or sha256"), (None, "lists no files")],
)
def test_malformed_files_list_is_one_line(two_files, files, message):
    manifest = json.loads((two_files / "manifest.json").read_text())
    manifest["artifacts"][0]["files"] = files
    (two_files / "manifest.json").write_text(json.dumps(manifest))
    assert_input_error(run_cli("predict", two_files, SPEECH_WAV), "manifest.json", "artifacts[0]", message)


# --- the writer --------------------------------------------------------------------------------


def _with_companion(monkeypatch, offset: float = 0.0) -> None:
    """The TorchScript export module writes a companion beside its file (and, with ``offset``, a
    module whose logits are off by that much, which parity must catch)."""
    from ast_deploy.export import torchscript

    real_build = torchscript.build

    def build(graph, path, deps, options):
        info = real_build(graph, path, deps, options)
        if offset:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # jit.load/jit.script: deprecated upstream
                torch.jit.script(_Shifted(torch.jit.load(str(path)), offset)).save(str(path))
        (path.parent / COMPANION).write_bytes(b"companion")
        return info

    monkeypatch.setattr(torchscript, "build", build)
    monkeypatch.setattr(torchscript, "FILES", (torchscript.FILE, COMPANION), raising=False)


class _Shifted(torch.nn.Module):
    def __init__(self, inner, offset: float):
        super().__init__()
        self.inner, self.offset = inner, offset

    def forward(self, waveform: torch.Tensor, num_samples: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, embedding = self.inner(waveform, num_samples)  # the graph's two outputs
        return logits + self.offset, embedding


def test_export_records_every_file_primary_first(monkeypatch, tmp_path):
    from ast_deploy.export import export

    _with_companion(monkeypatch)
    out = tmp_path / "out"
    manifest = export(V1_DIR / "reference", out, to="torchscript", batch="1:2:4", log=lambda m: None)
    (artifact,) = manifest["artifacts"]
    assert [f["file"] for f in artifact["files"]] == ["model.ts", COMPANION]
    for entry in artifact["files"]:
        assert (
            entry["sha256"] == sha256_file(out / entry["file"])
            and entry["bytes"] == (out / entry["file"]).stat().st_size
        )
    assert artifact["parity"]["passed"]
    written = json.loads((out / "manifest.json").read_text())
    assert written["format_version"] == 2 and written["artifacts"][0]["files"] == artifact["files"]
    assert "file" not in written["artifacts"][0] and "sha256" not in written["artifacts"][0]
    # The window rule's sizes, recorded for every reader (the C++ runtime reads them): 1.015 s, 25 ms.
    assert (written["input"]["window_samples"], written["input"]["frame_samples"]) == (16240, 400)
    validate_manifest(written)


def test_parity_failure_removes_every_file_of_the_artifact(monkeypatch, tmp_path):
    from ast_deploy.export import ParityFailure, export

    _with_companion(monkeypatch, offset=1.0)
    out = tmp_path / "out"
    with pytest.raises(ParityFailure, match="torchscript"):
        export(V1_DIR / "reference", out, to="torchscript", batch="1:2:4", log=lambda m: None)
    written = json.loads((out / "manifest.json").read_text())
    assert written["artifacts"] == [] and [f["name"] for f in written["failed"]] == ["torchscript"]
    assert not (out / "model.ts").exists() and not (out / COMPANION).exists()


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (lambda m: m["input"].update(window_samples=0), "input/window_samples"),
        (lambda m: m["artifacts"][0]["files"][0].update(sha256="not a digest"), "artifacts/0/files/0/sha256"),
        (lambda m: m["artifacts"][0].pop("files"), "artifacts/0"),
        (lambda m: m.update(activation="relu"), "activation"),
    ],
)
def test_a_manifest_breaking_the_schema_is_not_written(two_files, tmp_path, change, where):
    manifest = read_manifest(two_files)
    validate_manifest(manifest)  # what read_manifest hands out is valid, window sizes filled in
    change(manifest)
    with pytest.raises(ValueError, match=f"manifest does not match manifest.schema.json: {where}: "):
        write_manifest(tmp_path, manifest)
    assert not (tmp_path / "manifest.json").exists()


def test_the_v1_fixture_matches_the_schema_as_written_and_as_read():
    validate_manifest(v1_manifest())
    validate_manifest(read_manifest(V1_DIR))
