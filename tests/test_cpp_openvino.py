"""The C++ runtime's OpenVINO backend against the Python OpenVINO runtime, on the same IR files.

The library is built into ``build/cpp-openvino`` (ignored by git, reused across runs) without
libtorch (``-DAST_WITH_TORCH=OFF``): OpenVINO alone, from the pip wheel's CMake config, which also
shows that the library builds with no libtorch at all. The tiny model is exported with
``ast-deploy export --to openvino,openvino-int8``; ``ast_classify --json`` must give what
``ast-deploy predict --json`` gives on the same IR (scores within 1e-4, same labels in the same
order), and a damaged IR must be one ``error: ...`` line with exit status 2.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import OPENVINO_FORMATS, SPEECH_WAV, WAV_CASES
from test_cpp import TOP_K, assert_one_error_line, assert_same_result, cpp_predict, python_predict, run_host

from ast_deploy.cpu import cap_environment, cpu_info, reachable_classes

openvino = pytest.importorskip("openvino", reason="OpenVINO not installed (pip install -e '.[openvino]')")

BACKENDS = ("openvino", "openvino-int8")  # one C++ backend (format "openvino") runs both artifacts


@pytest.fixture(scope="session")
def ov_artifact(tiny_artifacts) -> Path:
    """The tiny authors' model (1.015 s windows, 10 labels, sigmoid) as OpenVINO IRs, f32 and int8 (the
    export test_openvino.py checks, shared)."""
    assert ",".join(BACKENDS) == OPENVINO_FORMATS
    return tiny_artifacts("waveform", OPENVINO_FORMATS)


@pytest.fixture(scope="session")
def ov_predictions(ov_host, ov_artifact, wavs) -> dict[str, tuple[dict, dict]]:
    """backend -> (C++ JSON, Python JSON) over all WAVs, each runtime called once per backend."""
    files = list(wavs.values())
    return {
        b: (
            cpp_predict(ov_host, ov_artifact, files, b, "-k", TOP_K),
            python_predict(ov_artifact, files, b, "-k", TOP_K),
        )
        for b in BACKENDS
    }


def test_available_and_listed(ov_artifact):
    manifest = json.loads((ov_artifact / "manifest.json").read_text())
    by_name = {a["name"]: a for a in manifest["artifacts"]}
    for name in BACKENDS:  # format 2: the .xml first (what the backend opens), its .bin, then the two halves
        assert by_name[name]["format"] == "openvino"
        stem = by_name[name]["files"][0]["file"].removesuffix(".xml")
        assert [f["file"] for f in by_name[name]["files"]] == [
            f"{stem}{part}.{ext}" for part in ("", ".front", ".rest") for ext in ("xml", "bin")
        ]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("wav", ["speech_16k", *WAV_CASES])
def test_scores_match_python(ov_predictions, wavs, backend, wav):
    cpp, py = ov_predictions[backend]
    assert cpp["backend"] == py["backend"] == backend
    i = list(wavs).index(wav)
    result = cpp["results"][i]
    assert result["source"] == str(wavs[wav]) and len(result["top"]) == TOP_K
    assert_same_result(result, py["results"][i])


@pytest.mark.parametrize(
    "artifact_name, python_backend", [("openvino", "openvino-bf16"), ("openvino-int8", "openvino-int8-bf16")]
)
def test_bf16_hint_matches_python(ov_host, ov_artifact, wavs, artifact_name, python_backend):
    """``--precision-hint bf16`` is the Python runtime's ``*-bf16`` backend: the same IR with the front
    end compiled apart in f32 and the rest with INFERENCE_PRECISION_HINT=bf16 (where the CPU has bf16)."""
    from ast_deploy.runtime import registry

    if python_backend not in registry.names():
        pytest.skip(f"the Python runtime has no {python_backend} backend")
    reason = registry.unavailable(python_backend, "cpu")
    if reason:
        pytest.skip(f"{python_backend}: {reason}")
    files = list(wavs.values())
    cpp = cpp_predict(ov_host, ov_artifact, files, artifact_name, "-k", TOP_K, "--precision-hint", "bf16")
    py = python_predict(ov_artifact, files, python_backend, "-k", TOP_K)
    for c, p in zip(cpp["results"], py["results"], strict=True):
        assert_same_result(c, p)


def test_bf16_hint_compiles_the_exported_halves_and_cuts_older_irs_itself(ov_host, ov_artifact, tmp_path):
    """Under the bf16 hint the host compiles the front end's and the rest's IRs the manifest lists (a broken
    front end IR is named, unverified); an artifact exported before they were shipped has the whole IR alone,
    which the host cuts the same way at load time: the same scores."""
    if not cpu_info().bf16:
        pytest.skip("this CPU has no bf16: the hint is refused (test_the_bf16_hint_is_refused_...)")
    hint = ("-k", TOP_K, "--precision-hint", "bf16")
    old = tmp_path / "old"
    shutil.copytree(ov_artifact, old)
    manifest = json.loads((old / "manifest.json").read_text())
    for artifact in manifest["artifacts"]:
        artifact["files"] = artifact["files"][:2]  # the halves unlisted: an older export
    (old / "manifest.json").write_text(json.dumps(manifest))
    for backend in BACKENDS:
        new = cpp_predict(ov_host, ov_artifact, [SPEECH_WAV], backend, *hint)
        assert_same_result(cpp_predict(ov_host, old, [SPEECH_WAV], backend, *hint)["results"][0], new["results"][0])
    front = old / "model.front.xml"
    front.write_text("not an IR")  # unlisted in the old copy: never read there
    assert cpp_predict(ov_host, old, [SPEECH_WAV], "openvino", *hint)["results"]
    broken = tmp_path / "broken"
    shutil.copytree(ov_artifact, broken)
    (broken / "model.front.xml").write_bytes((ov_artifact / "model.front.xml").read_bytes()[:1000])  # truncated
    args = (ov_host, broken, SPEECH_WAV, "--backend", "openvino", "--no-verify")
    assert_one_error_line(run_host(*args, *hint), "model.front.xml", "OpenVINO cannot read this IR")
    assert run_host(*args).returncode == 0  # f32 compiles the whole IR


@pytest.mark.parametrize("backend", BACKENDS)
def test_last_partial_batch_matches_python(ov_host, ov_artifact, backend):
    """5 windows at --batch-size 2 (2, 2 and a last one of 1, padded to 2) and at 8 (one batch of 5,
    run as 5): both runtimes batch the same way on OpenVINO; same scores, window for window."""
    for batch in ("2", "8"):
        flags = ("-k", TOP_K, "--batch-size", batch)
        cpp = cpp_predict(ov_host, ov_artifact, [SPEECH_WAV], backend, *flags)
        py = python_predict(ov_artifact, [SPEECH_WAV], backend, *flags)
        assert len(py["results"][0]["windows"]) == 5
        assert_same_result(cpp["results"][0], py["results"][0])


def test_threads_and_bench(ov_host, ov_artifact):
    proc = run_host(ov_host, ov_artifact, SPEECH_WAV, "--backend", "openvino-int8", "--bench", "3", "--warmup", "1",
                    "--threads", "1")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["backend"] == "openvino-int8" and report["threads"] == 1 and report["artifact"].endswith(".xml")
    assert 0 < report["latency_ms"]["min"] <= report["latency_ms"]["p50"] <= report["latency_ms"]["max"]


def test_compiled_model_cache(ov_host, ov_artifact, tmp_path):
    """``--cache-dir``: the first load writes OpenVINO's compiled blob (under DIR/f32: OpenVINO's cache
    key leaves the precision hint out), the second reads it."""
    cache = tmp_path / "ov-cache"
    first = cpp_predict(ov_host, ov_artifact, [SPEECH_WAV], "openvino", "--cache-dir", cache)
    blobs = [p for p in cache.rglob("*") if p.is_file()]
    # one cache per CPU class and precision hint
    assert blobs and all(p.parent == cache / cpu_info().isa_class / "f32" for p in blobs), blobs
    second = cpp_predict(ov_host, ov_artifact, [SPEECH_WAV], "openvino", "--cache-dir", cache)
    assert_same_result(second["results"][0], first["results"][0])


# --- bad input: exit status 2, one line ----------------------------------------------------------


@pytest.fixture
def ov_tampered(ov_artifact, tmp_path) -> Path:
    copy = tmp_path / "tampered"
    shutil.copytree(ov_artifact, copy)
    return copy


def _weights(art: Path, name: str) -> Path:
    manifest = json.loads((art / "manifest.json").read_text())
    (artifact,) = [a for a in manifest["artifacts"] if a["name"] == name]
    return art / artifact["files"][1]["file"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_corrupted_bin_is_a_hash_mismatch(ov_host, ov_tampered, backend):
    weights = _weights(ov_tampered, backend)
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    line = assert_one_error_line(
        run_host(ov_host, ov_tampered, SPEECH_WAV, "--backend", backend), "sha256", "does not match"
    )
    assert str(weights) in line


def test_missing_bin(ov_host, ov_tampered):
    weights = _weights(ov_tampered, "openvino")
    weights.unlink()
    line = assert_one_error_line(run_host(ov_host, ov_tampered, SPEECH_WAV, "--backend", "openvino"), "missing")
    assert str(weights) in line


def test_truncated_bin_unverified_is_an_openvino_error(ov_host, ov_tampered):
    """With --no-verify the hash check is skipped: OpenVINO itself refuses weights that are too short."""
    weights = _weights(ov_tampered, "openvino")
    weights.write_bytes(weights.read_bytes()[:1000])
    assert_one_error_line(
        run_host(ov_host, ov_tampered, SPEECH_WAV, "--backend", "openvino", "--no-verify"), "model.xml", "OpenVINO"
    )


def test_wrong_io_names_are_named(ov_host, ov_tampered):
    manifest = json.loads((ov_tampered / "manifest.json").read_text())
    manifest["input"]["names"] = ["audio", "num_samples"]
    (ov_tampered / "manifest.json").write_text(json.dumps(manifest))
    assert_one_error_line(
        run_host(ov_host, ov_tampered, SPEECH_WAV, "--backend", "openvino"), "no input tensor 'audio'", "waveform"
    )


def test_usage_errors(ov_host, ov_artifact):
    args = (ov_host, ov_artifact, SPEECH_WAV, "--backend", "openvino")
    assert_one_error_line(run_host(*args, "--precision-hint", "f16"), "--precision-hint must be f32 or bf16")
    assert_one_error_line(run_host(*args, "--device", "cuda"), "runs on the CPU only")
    assert_one_error_line(run_host(ov_host, ov_artifact, SPEECH_WAV), "no artifact 'torchscript'")


@pytest.mark.skipif("avx2" not in reachable_classes() or not cpu_info().bf16, reason="needs a bf16 CPU to cap")
def test_the_bf16_hint_is_refused_where_the_cpu_has_no_bf16(ov_host, ov_artifact):
    """Under ``ONEDNN_MAX_CPU_ISA=AVX2`` (an AVX2-only CPU's kernels) the host refuses the bf16 hint with the
    reason, as the Python runtime does; OpenVINO itself would still report BF16 from cpuid and run it."""
    env = {**os.environ, **cap_environment("avx2")}
    args = [ov_host, ov_artifact, SPEECH_WAV, "--backend", "openvino", "--precision-hint", "bf16"]
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=120, env=env, check=False)
    assert_one_error_line(proc, "no bf16 arithmetic", "avx2, capped by ONEDNN_MAX_CPU_ISA=AVX2")
