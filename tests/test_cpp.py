"""The C++ runtime (``cpp/``): library + ``ast_classify`` host built against the installed torch.

The build goes to ``build/cpp`` (ignored by git) and is reused across runs: CMake rebuilds only
what changed. The host's ``--json`` output is compared with ``ast-deploy predict --json`` on the
same tiny exported model and the same WAV files (scores within 1e-4, identical label order), and
every kind of bad input must give exit status 2 with one ``error: ...`` line.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import (
    CPP_DIR,
    REPO_ROOT,
    SPEECH_WAV,
    TINY_CASE,
    TINY_PTH,
    WAV_CASES,
    authors_flags,
    run_cli,
    write_wav,
)
from conftest import run_command as _run

from ast_deploy.cpu import cap_environment, cpu_info, reachable_classes
from ast_deploy.export.manifest import validate_manifest

SCORE_ATOL = 1e-4
TOP_K = 5
# aoti-int8: the same C++ loader runs the W8A8 package, where the CPU has int8 dot products (else it is not
# exported: torch._int_mm would be 30x slower than float32; ast_deploy/export/aoti_int8.py).
BACKENDS = ("torchscript", "aoti", *(["aoti-int8"] if cpu_info().int8_dot else []))


# --- build: the session fixtures cpp_build and host (conftest.py) ---------------------------------


def run_host(host: Path, *args, timeout: float = 120) -> subprocess.CompletedProcess:
    return _run([host, *args], timeout=timeout)


def assert_one_error_line(proc: subprocess.CompletedProcess, *fragments: str) -> str:
    """Exit status 2 and exactly one ``error: ...`` line on stderr naming the problem."""
    assert proc.returncode == 2, f"exit status {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), f"not one error line:\n{proc.stderr}"
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    return lines[0]


# --- artifacts and WAV files -------------------------------------------------------------------


def export(out: Path, *args) -> Path:
    result = run_cli("export", TINY_PTH, *authors_flags(TINY_CASE), "--out", out, "--force", *args)
    assert result.code == 0, result.stderr
    return out


@pytest.fixture(scope="session")
def artifact(tiny_artifacts) -> Path:
    """The tiny authors' model (1.015 s windows, 10 labels, sigmoid) with a waveform input in every format
    this machine exports: TorchScript + AOTInductor (fp32, int8) for the host, the others beside them
    (the export test_export.py checks, shared)."""
    return tiny_artifacts("waveform")


@pytest.fixture(scope="session")
def softmax_artifact(tmp_path_factory) -> Path:
    """Other shapes of the same graph: 0.5 s windows, softmax, a batch range of 2..4 (so one-window
    clips are padded to the minimum batch and long ones split into batches of 4)."""
    return export(
        tmp_path_factory.mktemp("cpp") / "softmax",
        *("--to", "torchscript", "--activation", "softmax", "--clip-seconds", "0.5", "--batch", "2:4:4"),
        "--no-verify",
    )


def _speech() -> np.ndarray:
    samples, rate = sf.read(str(SPEECH_WAV), dtype="float32")
    assert rate == 16000
    return samples


# WAV files in every supported sample format: the session fixture wavs (conftest.py).


# --- comparing the two runtimes ------------------------------------------------------------------


def python_predict(art: Path, files: list[Path], backend: str, *flags) -> dict:
    result = run_cli("predict", art, *files, "--json", "--backend", backend, *flags)
    assert result.code == 0, result.stderr
    return result.json()


def cpp_predict(host: Path, art: Path, files: list[Path], backend: str, *flags) -> dict:
    proc = run_host(host, art, *files, "--json", "--backend", backend, *flags)
    assert proc.returncode == 0, f"exit status {proc.returncode}:\n{proc.stderr}"
    return json.loads(proc.stdout)


def assert_same_result(cpp: dict, py: dict) -> float:
    """Same keys in the same order, same labels in the same order, numbers within tolerance.
    Returns the largest score difference."""
    assert list(cpp) == list(py)
    assert cpp["source"] == py["source"] and cpp["aggregate"] == py["aggregate"]
    assert cpp["duration"] == pytest.approx(py["duration"], abs=1e-9)
    worst = 0.0

    def compare_top(c_top: list[dict], p_top: list[dict], where: str) -> None:
        nonlocal worst
        assert [t["label"] for t in c_top] == [t["label"] for t in p_top], where
        assert [t["index"] for t in c_top] == [t["index"] for t in p_top], where
        for c, p in zip(c_top, p_top):
            assert list(c) == list(p), where
            for key in c:
                if key not in ("index", "label"):
                    worst = max(worst, abs(c[key] - p[key]))

    compare_top(cpp["top"], py["top"], "top")
    assert len(cpp["windows"]) == len(py["windows"])
    for i, (c, p) in enumerate(zip(cpp["windows"], py["windows"])):
        assert list(c) == list(p)
        assert c["start"] == pytest.approx(p["start"], abs=1e-9) and c["end"] == pytest.approx(p["end"], abs=1e-9)
        compare_top(c["top"], p["top"], f"window {i}")
    assert worst <= SCORE_ATOL, f"max abs score difference {worst:.2e} > {SCORE_ATOL}"
    return worst


@pytest.fixture(scope="session")
def predictions(host, artifact, wavs) -> dict[str, tuple[dict, dict]]:
    """backend -> (C++ JSON, Python JSON) over all WAVs, each runtime called once per backend."""
    files = list(wavs.values())
    return {
        b: (cpp_predict(host, artifact, files, b, "-k", TOP_K), python_predict(artifact, files, b, "-k", TOP_K))
        for b in BACKENDS
    }


@pytest.mark.parametrize("backend", BACKENDS)
def test_json_envelope_matches_python(predictions, artifact, backend):
    cpp, py = predictions[backend]
    assert list(cpp) == list(py) == ["model", "backend", "results"]
    assert cpp["model"] == py["model"] == str(artifact)
    assert cpp["backend"] == py["backend"] == backend
    assert [r["source"] for r in cpp["results"]] == [r["source"] for r in py["results"]]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("wav", ["speech_16k", *WAV_CASES])
def test_scores_match_python(predictions, wavs, backend, wav):
    cpp, py = predictions[backend]
    i = list(wavs).index(wav)
    result = cpp["results"][i]
    assert result["source"] == str(wavs[wav])
    assert len(result["top"]) == TOP_K
    assert_same_result(result, py["results"][i])


def test_windows_of_long_audio(predictions, wavs):
    """4.15 s of speech in 1.015 s windows: 4 full hops and a last window aligned to the end."""
    cpp, _ = predictions["torchscript"]
    windows = cpp["results"][list(wavs).index("speech_16k")]["windows"]
    assert len(windows) == 5
    assert windows[-1]["end"] == pytest.approx(66399 / 16000)
    assert windows[-1]["start"] == pytest.approx((66399 - 16240) / 16000)


def test_hop_and_max_aggregate_match_python(host, artifact):
    flags = ("-k", "3", "--hop", "0.37", "--aggregate", "max")
    cpp = cpp_predict(host, artifact, [SPEECH_WAV], "torchscript", *flags)
    py = python_predict(artifact, [SPEECH_WAV], "torchscript", *flags)
    assert len(cpp["results"][0]["windows"]) > 5
    assert_same_result(cpp["results"][0], py["results"][0])


def test_softmax_short_windows_and_min_batch_match_python(host, softmax_artifact, wavs):
    files = [wavs["pcm16_short"], wavs["float"], SPEECH_WAV]
    cpp = cpp_predict(host, softmax_artifact, files, "torchscript", "-k", "10")
    py = python_predict(softmax_artifact, files, "torchscript", "-k", "10")
    for c, p in zip(cpp["results"], py["results"]):
        assert_same_result(c, p)
        for window in c["windows"]:  # softmax: the scores of all 10 labels sum to one
            assert sum(t["score"] for t in window["top"]) == pytest.approx(1.0, abs=1e-5)


def test_table_output_and_minimal_example(host, cpp_build, artifact, predictions):
    expected = [t["label"] for t in predictions["torchscript"][1]["results"][0]["top"]]
    table = run_host(host, artifact, SPEECH_WAV)
    assert table.returncode == 0, table.stderr
    assert [line.split()[1] for line in table.stdout.splitlines()[2:]] == expected
    minimal = _run([cpp_build / "ast_minimal", artifact, SPEECH_WAV], timeout=120)
    assert minimal.returncode == 0, minimal.stderr
    assert [line.split()[0] for line in minimal.stdout.splitlines()] == expected


def test_bench_mode(host, artifact):
    proc = run_host(host, artifact, SPEECH_WAV, "--bench", "3", "--warmup", "1", "--threads", "1")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["backend"] == "torchscript" and report["batch"] == 1 and report["iters"] == 3
    assert report["threads"] == 1 and report["window_samples"] == 16240
    latency = report["latency_ms"]
    assert 0 < latency["min"] <= latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["max"]


def test_benchmark_script(host, artifact, tmp_path):
    out = tmp_path / "cpp_latency"
    script = REPO_ROOT / "benchmarks" / "cpp_latency.py"
    flags = ("--host", host, "--iters", "3", "--warmup", "1", "--threads", "1", "--out", out)
    proc = _run([sys.executable, script, artifact, *flags], timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.with_suffix(".json").read_text())
    cpp, python = report["cpp"], report["python"]
    assert cpp["backend"] == python["backend"] == "torchscript" and cpp["threads"] == python["threads"]["torch"] == 1
    assert python["iterations"] == cpp["iters"] == 3 and python["batch"] == 1
    for latency in (cpp["latency_ms"], python["latency_ms"]):
        assert 0 < latency["min"] <= latency["p50"] <= latency["p99"]
    assert report["environment"]["libraries"]["torch"] == torch.__version__
    table = out.with_suffix(".md").read_text()
    assert "| C++ `ast_classify` torchscript | 1 | 1 |" in table and "| Python `ast-deploy` torchscript |" in table


def test_tensorrt_backend_compiles_against_api_stub():
    """TensorRT is not installed here: compile its backend against the documented API (stubs in
    cpp/tests/tensorrt_api_stub) so that the file cannot rot unnoticed. This is not a build against
    NVIDIA's headers, which -DAST_WITH_TENSORRT=ON does where TensorRT is installed."""
    if shutil.which("g++") is None:
        pytest.skip("g++ not installed: run 'make system-deps'")
    includes = [f"-I{CPP_DIR / d}" for d in ("include", "src", "tests/tensorrt_api_stub")]
    proc = _run(
        [
            "g++",
            "-std=c++17",
            "-fsyntax-only",
            "-Wall",
            "-Wextra",
            "-Werror",
            *includes,
            CPP_DIR / "src" / "backend_tensorrt.cpp",
        ],
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr


# --- bad input: exit status 2, one line ----------------------------------------------------------


@pytest.fixture
def tampered(artifact, tmp_path) -> Path:
    copy = tmp_path / "tampered"
    shutil.copytree(artifact, copy)
    return copy


def test_missing_manifest(host, tmp_path):
    (tmp_path / "empty").mkdir()
    assert_one_error_line(run_host(host, tmp_path / "empty", SPEECH_WAV), "no manifest.json")


def test_flipped_byte_in_artifact_is_a_hash_mismatch(host, tampered):
    model = tampered / "model.ts"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    assert_one_error_line(run_host(host, tampered, SPEECH_WAV), "model.ts", "sha256", "does not match")


def test_tampered_manifest_hash(host, tampered):
    manifest = json.loads((tampered / "manifest.json").read_text())
    manifest["artifacts"][0]["files"][0]["sha256"] = "0" * 64
    (tampered / "manifest.json").write_text(json.dumps(manifest))
    assert_one_error_line(run_host(host, tampered, SPEECH_WAV), "sha256", "does not match")


def test_unreadable_manifest(host, tampered):
    (tampered / "manifest.json").write_text('{"format": "ast-deploy-artifacts", ')
    assert_one_error_line(run_host(host, tampered, SPEECH_WAV), "manifest.json", "unreadable manifest")


@pytest.mark.skipif(not cpu_info().avx512 or "avx2" not in reachable_classes(), reason="needs an AVX-512 CPU to cap")
def test_a_package_compiled_for_a_wider_isa_is_refused(host, artifact):
    """An AOTInductor package compiled here (AVX-512 code) would stop with an illegal instruction on an AVX2
    CPU: under ``ONEDNN_MAX_CPU_ISA=AVX2`` the host refuses it with the reason, as the Python runtime does."""
    compiled = next(a for a in json.loads((artifact / "manifest.json").read_text())["artifacts"] if a["name"] == "aoti")
    assert "avx512" in compiled["cpu_isa"]
    env = {**os.environ, **cap_environment("avx2")}
    args = [host, artifact, SPEECH_WAV, "--backend", "aoti"]
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=120, env=env, check=False)
    assert_one_error_line(proc, f"compiled for {compiled['cpu_isa']}", "this CPU lacks", "avx512f", "re-export it")


def test_missing_artifact_file(host, tampered):
    (tampered / "model.pt2").unlink()
    assert_one_error_line(run_host(host, tampered, SPEECH_WAV, "--backend", "aoti"), "model.pt2", "missing")


def test_fbank_artifact_is_refused(host, tiny_artifacts):
    art = tiny_artifacts("fbank")  # every format this machine exports, TorchScript (the host's default) among them
    assert_one_error_line(run_host(host, art, SPEECH_WAV), "input kind 'fbank'", "--input waveform")


def test_backend_not_in_build_or_manifest(host, artifact, softmax_artifact):
    # softmax_artifact holds TorchScript only: the host runs AOTInductor, the manifest has none
    line = assert_one_error_line(run_host(host, softmax_artifact, SPEECH_WAV, "--backend", "tensorrt"))
    assert "not compiled into this build" in line or "no artifact 'tensorrt'" in line
    assert_one_error_line(run_host(host, softmax_artifact, SPEECH_WAV, "--backend", "aoti"), "no artifact 'aoti'")
    assert_one_error_line(  # artifact holds every format this machine exports, ONNX among them
        run_host(host, artifact, SPEECH_WAV, "--backend", "onnx"), "format 'onnx', which the C++ runtime does not run"
    )


@pytest.mark.parametrize("size", [0, 55, 56, 64, 1000, (1 << 20) + 3])
def test_sha256_matches_hashlib(host, artifact, tmp_path, size):
    """The C++ SHA-256 at block-boundary lengths: with the right digest in the manifest the check
    passes and libtorch's loader is what rejects the (random) bytes."""
    art = tmp_path / "art"
    art.mkdir()
    blob = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()
    (art / "blob.bin").write_bytes(blob)
    manifest = json.loads((artifact / "manifest.json").read_text())
    digest = hashlib.sha256(blob).hexdigest()
    blob_entry = {"file": "blob.bin", "sha256": digest, "bytes": size}
    manifest["artifacts"] = [{"name": "torchscript", "format": "torchscript", "files": [blob_entry]}]
    (art / "manifest.json").write_text(json.dumps(manifest))
    assert_one_error_line(run_host(host, art, SPEECH_WAV), "blob.bin", "cannot load this TorchScript file")


# --- manifest formats ----------------------------------------------------------------------------

MANIFEST_V1 = REPO_ROOT / "tests" / "manifest_v1"  # written by the format-1 exporter (see test_manifest.py)


def test_format_1_directory_runs_like_python(host):
    assert json.loads((MANIFEST_V1 / "manifest.json").read_text())["format_version"] == 1
    cpp = cpp_predict(host, MANIFEST_V1, [SPEECH_WAV], "torchscript", "-k", "5")
    py = python_predict(MANIFEST_V1, [SPEECH_WAV], "torchscript", "-k", "5")
    assert_same_result(cpp["results"][0], py["results"][0])
    reference = python_predict(MANIFEST_V1, [SPEECH_WAV], "pytorch", "-k", "5")["results"][0]
    assert [t["label"] for t in cpp["results"][0]["top"]] == [t["label"] for t in reference["top"]]


@pytest.fixture
def two_file_artifact(tmp_path) -> Path:
    """The format-1 directory rewritten as format 2, its TorchScript artifact with a second file."""
    out = tmp_path / "two_files"
    shutil.copytree(MANIFEST_V1, out)
    (out / "model.extra.bin").write_bytes(b"companion bytes\n" * 64)
    manifest = json.loads((out / "manifest.json").read_text())
    (artifact,) = manifest["artifacts"]
    primary = {k: artifact.pop(k) for k in ("file", "sha256", "bytes")}
    companion = {"file": "model.extra.bin", "sha256": _sha256(out / "model.extra.bin"), "bytes": 1024}
    manifest["artifacts"] = [{**artifact, "files": [primary, companion]}]
    manifest["format_version"] = 2
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_manifests_the_host_reads_match_the_schema(artifact, softmax_artifact, two_file_artifact):
    """Every manifest the C++ reader is tested on (exported, committed format 1, rewritten format 2) is valid
    against manifest.schema.json; exported ones record the window sizes the host reads instead of computing."""
    for directory in (artifact, softmax_artifact, MANIFEST_V1, two_file_artifact):
        validate_manifest(json.loads((directory / "manifest.json").read_text()))
    for directory, window in ((artifact, 16240), (softmax_artifact, 8000)):  # 1.015 s; --clip-seconds 0.5
        section = json.loads((directory / "manifest.json").read_text())["input"]
        assert (section["window_samples"], section["frame_samples"]) == (window, 400)


def test_a_recorded_window_that_is_not_the_graphs_input_is_one_line(host, two_file_artifact):
    manifest = json.loads((two_file_artifact / "manifest.json").read_text())
    manifest["input"].update(window_samples=8000, frame_samples=400)
    (two_file_artifact / "manifest.json").write_text(json.dumps(manifest))
    assert_one_error_line(
        run_host(host, two_file_artifact, SPEECH_WAV), "manifest.json", "input.window_samples 8000 differs"
    )


def test_every_file_of_a_format_2_artifact_is_checked(host, two_file_artifact):
    # Intact: the host opens the primary file (model.ts) and gives the format-1 directory's scores.
    ok = cpp_predict(host, two_file_artifact, [SPEECH_WAV], "torchscript", "-k", "5")
    assert_same_result(
        ok["results"][0], cpp_predict(host, MANIFEST_V1, [SPEECH_WAV], "torchscript", "-k", "5")["results"][0]
    )
    second = two_file_artifact / "model.extra.bin"
    data = bytearray(second.read_bytes())
    data[10] ^= 0x01
    second.write_bytes(bytes(data))
    line = assert_one_error_line(
        run_host(host, two_file_artifact, SPEECH_WAV), "model.extra.bin", "sha256", "does not match"
    )
    assert str(second) in line
    second.unlink()
    assert_one_error_line(run_host(host, two_file_artifact, SPEECH_WAV), "model.extra.bin", "missing")


def test_unknown_manifest_version_is_one_line(host, two_file_artifact):
    manifest = json.loads((two_file_artifact / "manifest.json").read_text())
    (two_file_artifact / "manifest.json").write_text(json.dumps({**manifest, "format_version": 3}))
    assert_one_error_line(run_host(host, two_file_artifact, SPEECH_WAV), "manifest.json", "v3", "v1 or v2")
    manifest["artifacts"][0]["files"] = []
    (two_file_artifact / "manifest.json").write_text(json.dumps(manifest))
    assert_one_error_line(
        run_host(host, two_file_artifact, SPEECH_WAV), "manifest.json", "artifacts[0]", "lists no files"
    )


def _bad_wavs(tmp: Path) -> dict[str, tuple[Path, tuple[str, ...]]]:
    speech = _speech()
    good = write_wav(tmp / "good.wav", speech[:16000])
    data = good.read_bytes()
    cases = {
        "rate_44k": (write_wav(tmp / "44k.wav", speech[:44100], 44100), ("44100 Hz", "16000 Hz")),
        "empty": (write_wav(tmp / "empty.wav", np.zeros(0, np.float32)), ("no samples",)),
        "truncated_data": (tmp / "truncated.wav", ("truncated WAV",)),
        "truncated_header": (tmp / "header.wav", ("truncated or corrupt WAV",)),
        "not_wav": (tmp / "notes.wav", ("not a WAV file",)),
        "zero_bytes": (tmp / "zero.wav", ("empty file",)),
        "mu_law": (write_wav(tmp / "ulaw.wav", speech[:16000], subtype="ULAW"), ("unsupported WAV encoding",)),
        "nan": (write_wav(tmp / "nan.wav", np.full(16000, np.nan, np.float32), subtype="FLOAT"), ("NaN",)),
        "too_short": (write_wav(tmp / "short.wav", speech[:100]), ("shorter than one 25 ms analysis frame",)),
        "missing": (tmp / "nowhere.wav", ("no such file",)),
    }
    (tmp / "truncated.wav").write_bytes(data[: len(data) // 2])
    (tmp / "header.wav").write_bytes(data[:30])
    (tmp / "notes.wav").write_text("these are not samples\n")
    (tmp / "zero.wav").write_bytes(b"")
    return cases


BAD_WAVS = (
    *("rate_44k", "empty", "zero_bytes", "not_wav", "truncated_data", "truncated_header"),
    *("mu_law", "nan", "too_short", "missing"),
)


@pytest.mark.parametrize("case", BAD_WAVS)
def test_bad_wav(host, artifact, tmp_path, case):
    path, fragments = _bad_wavs(tmp_path)[case]
    line = assert_one_error_line(run_host(host, artifact, path), *fragments)
    assert str(path) in line


def test_usage_errors(host, artifact):
    assert_one_error_line(run_host(host), "missing ARTIFACT_DIR")
    assert_one_error_line(run_host(host, artifact), "missing FILE.wav")
    assert_one_error_line(run_host(host, artifact, SPEECH_WAV, "--top-k", "0"), "--top-k")
    assert_one_error_line(run_host(host, artifact, SPEECH_WAV, "--frobnicate"), "unknown option")
