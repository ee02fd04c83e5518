"""OpenVINO: the ``openvino`` (float32 IR) and ``openvino-int8`` (NNCF) exports and their four backends.

Tolerances are the parity defaults (``ast_deploy.parity.DEFAULT_THRESHOLDS``): float32 max |logit
error| <= 1e-4 against PyTorch float32; INT8 logit cosine >= 0.99 and top-1 agreement >= 99 % on
decisive clips. On real speech with real audio in the calibration set the INT8 IR must meet the
issue's quality target, cosine >= 0.995.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import (
    ARTIFACT_BATCH,
    OPENVINO_FORMATS,
    SPEECH_WAV,
    TINY_CASE,
    TINY_PTH,
    assert_input_error,
    authors_flags,
    run_cli,
)

pytest.importorskip("openvino")
pytest.importorskip("nncf")

from ast_deploy.artifacts import ArtifactDir
from ast_deploy.cpu import cpu_info
from ast_deploy.errors import InputError
from ast_deploy.export.calibration import DEFAULT_CLIPS, MAX_CLIPS, default_calibration, load_calibration
from ast_deploy.fileio import sha256_file
from ast_deploy.parity import DEFAULT_THRESHOLDS, audio_inputs, run_parity, synthetic_signals
from ast_deploy.runtime import openvino as ov_runtime
from ast_deploy.runtime import registry

WINDOW = 99 * 160 + 400  # the tiny model's 100 frames
BATCH = "1:2:8"
IR_FILES = {"openvino": ["model.xml", "model.bin"], "openvino-int8": ["model.int8.xml", "model.int8.bin"]}
# A waveform IR also ships its front end and the rest as IRs of their own (compiled apart under bf16).
HALVES = {
    name: [f"{stem}.{half}.{ext}" for half in ("front", "rest") for ext in ("xml", "bin")]
    for name, stem in (("openvino", "model"), ("openvino-int8", "model.int8"))
}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module", autouse=True)
def compiled_model_cache(tmp_path_factory):
    """Compiled models go to a temporary cache, not the user's ~/.cache."""
    cache = tmp_path_factory.mktemp("ov-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(ov_runtime.CACHE_ENV, str(cache))
        yield cache


@pytest.fixture(scope="module")
def calibration_dir(tmp_path_factory) -> Path:
    """A folder of real and synthetic audio (a sub-folder, as in a folder-per-class set)."""
    import soundfile as sf

    root = tmp_path_factory.mktemp("calibration")
    (root / "speech").mkdir()
    shutil.copy(SPEECH_WAV, root / "speech" / "sentence.wav")
    windows, lengths = synthetic_signals(12, WINDOW, 16000, seed=7)
    for i, (w, n) in enumerate(zip(windows, lengths)):
        sf.write(str(root / f"signal{i:02d}.flac"), w[:n], 16000)
    return root


@pytest.fixture(scope="module", params=["waveform", "fbank"])
def exported(request, tiny_artifacts, calibration_dir) -> Path:
    """The tiny fixture as both IRs; the waveform one calibrated on the default signals (the session's
    shared export, conftest.py: test_cpp_openvino.py runs the same directory), the fbank one on
    ``calibration_dir``."""
    assert BATCH == ARTIFACT_BATCH
    calibration = (calibration_dir,) if request.param == "fbank" else ()
    return tiny_artifacts(request.param, OPENVINO_FORMATS, calibration)


def test_export_publishes_both_irs_with_hashes_parity_and_calibration(exported):
    manifest = json.loads((exported / "manifest.json").read_text())
    assert [a["name"] for a in manifest["artifacts"]] == ["openvino", "openvino-int8"]  # onnx: an intermediate
    assert not (exported / "model.onnx").exists()
    waveform = manifest["input"]["kind"] == "waveform"
    for artifact in manifest["artifacts"]:
        halves = HALVES[artifact["name"]] if waveform else []
        assert [f["file"] for f in artifact["files"]] == IR_FILES[artifact["name"]] + halves
        for entry in artifact["files"]:
            assert sha256_file(exported / entry["file"]) == entry["sha256"]
            assert (exported / entry["file"]).stat().st_size == entry["bytes"]
        assert artifact["format"] == "openvino" and "openvino" in artifact["tools"]
        assert artifact["parity"]["passed"], artifact["parity"]["failures"]
    fp32, int8 = manifest["artifacts"]
    assert fp32["precision"] == "fp32" and fp32["parity"]["max_abs_logit"] <= DEFAULT_THRESHOLDS["fp32"].max_abs_logit
    assert int8["precision"] == "int8" and int8["parity"]["min_cosine"] >= DEFAULT_THRESHOLDS["int8"].min_cosine
    assert "nncf" in int8["tools"] and "SmoothQuant" in int8["quantization"]
    calibration = int8["calibration"]
    if manifest["input"]["kind"] == "fbank":  # 13 files: 12 short signals (1 window each) + 4.15 s of speech (5)
        assert "13 audio files, 17 windows" in calibration["source"] and "+ default: 64" in calibration["source"]
        assert calibration["clips"] == 17 + 64  # the default signals are always part of the set
    else:
        assert calibration == {"source": "default: 64 synthetic signals (ast_deploy.parity, seed 1)", "clips": 64}
    # The int8 weights are int8: the .bin is well under the float32 one.
    assert int8["files"][1]["bytes"] < 0.6 * fp32["files"][1]["bytes"]


def test_irs_take_the_export_batch_range(exported):
    import openvino as ov

    for name in ("model.xml", "model.int8.xml"):
        model = ov.Core().read_model(str(exported / name))
        for port in model.inputs:
            batch = port.get_partial_shape()[0]
            assert (batch.get_min_length(), batch.get_max_length()) == (1, 8), (name, port.get_any_name())
    backend = ArtifactDir(exported).open("openvino", threads=1)
    spec = backend.spec
    frontend_needed = spec.kind == "fbank"
    for batch in (1, 3, 8):  # dynamic batch: any size in the range, same logits as one clip at a time
        windows, lengths = synthetic_signals(batch, WINDOW, 16000, seed=batch)
        x, n = torch.from_numpy(windows), torch.from_numpy(lengths)
        if frontend_needed:
            from ast_deploy.frontend import KaldiFbank

            x, n = KaldiFbank(ArtifactDir(exported).frontend_config)(x, n), None
        together = backend(x, n)
        apart = torch.cat([backend(x[i : i + 1], None if n is None else n[i : i + 1]) for i in range(batch)])
        torch.testing.assert_close(together, apart, rtol=0, atol=1e-5)
    with pytest.raises(InputError, match=r"outside the exported range 1\.\.8"):
        backend(torch.zeros(9, *x.shape[1:]), None if n is None else torch.full((9,), WINDOW))


def test_real_speech_meets_the_quality_target(exported):
    """On the fixture sentence: float32 to rounding; INT8 calibrated on real audio at cosine >= 0.995."""
    artifacts = ArtifactDir(exported)
    report = run_parity(artifacts, ["openvino", "openvino-int8"], audio_inputs([SPEECH_WAV], WINDOW, 16000))
    fp32, int8 = report.results
    assert report.passed, [r.failures for r in report.results]
    assert fp32.max_abs_logit <= 1e-4 and fp32.top1_agreement == 1.0
    if artifacts.spec.kind == "fbank":  # calibrated on calibration_dir, which holds speech
        assert int8.min_cosine >= 0.995 and int8.top1_decisive == 1.0, int8


def test_threads_hint_and_compiled_model_cache(exported, tmp_path, monkeypatch):
    cache = tmp_path / "cache"  # this test's own: the module's cache already holds other compilations
    monkeypatch.setenv(ov_runtime.CACHE_ENV, str(cache))

    def blobs() -> dict[Path, int]:
        return {f: f.stat().st_mtime_ns for f in cache.rglob("*") if f.is_file()}

    artifacts = ArtifactDir(exported)
    backend = artifacts.open("openvino-int8", threads=1)
    assert backend.compiled.get_property("INFERENCE_NUM_THREADS") == 1
    assert str(backend.compiled.get_property("PERFORMANCE_HINT")).upper().endswith("LATENCY")
    assert str(backend.compiled.get_property("INFERENCE_PRECISION_HINT")) in ("<Type: 'float32'>", "f32")
    assert backend.precision == "int8"
    written = blobs()
    # the compilation was cached, per CPU class and precision
    assert written and all(f.is_relative_to(cache / "openvino" / cpu_info().isa_class / "f32") for f in written)
    x = torch.from_numpy(synthetic_signals(2, WINDOW, 16000)[0])
    n = torch.full((2,), WINDOW)
    if artifacts.spec.kind == "fbank":
        from ast_deploy.frontend import KaldiFbank

        x, n = KaldiFbank(artifacts.frontend_config)(x, n), None
    again = artifacts.open("openvino-int8", threads=1)  # from the cache: the same function
    assert blobs() == written  # read, not compiled and written again
    torch.testing.assert_close(again(x, n), backend(x, n), rtol=0, atol=0)


def test_bad_performance_hint_is_an_input_error(monkeypatch):
    monkeypatch.setenv(ov_runtime.HINT_ENV, "fastest")
    with pytest.raises(InputError, match="AST_DEPLOY_OPENVINO_HINT='fastest'"):
        ov_runtime.performance_hint()
    monkeypatch.setenv(ov_runtime.HINT_ENV, "Throughput")
    assert ov_runtime.performance_hint() == "THROUGHPUT"


def test_bf16_variants_are_data_with_their_own_precision_and_availability(monkeypatch):
    bf16, int8_bf16 = registry.get("openvino-bf16"), registry.get("openvino-int8-bf16")
    assert (bf16.artifact_name, bf16.precision, bf16.option("inference")) == ("openvino", "bf16", "bf16")
    assert (int8_bf16.artifact_name, int8_bf16.precision) == ("openvino-int8", "int8")
    # Reduced precision is a default only on the CPU classes measured fastest (docs/cpus.md), never in general.
    for name in ("openvino-bf16", "openvino-int8", "openvino-int8-bf16"):
        assert "cpu" not in registry.get(name).rank and all(k.startswith("cpu:") for k in registry.get(name).rank)
    assert registry.get("openvino").rank["cpu"] < registry.get("onnx").rank["cpu"]
    assert registry.get("openvino-int8-bf16").rank_on("cpu", "amx") < registry.get("openvino").rank_on("cpu", "amx")
    assert registry.get("openvino-int8").rank_on("cpu", "avx2") is None
    assert registry.unavailable("openvino", "cuda") == "runs on cpu only"
    has_bf16 = "BF16" in ov_runtime.cpu_capabilities() and cpu_info().bf16
    assert (registry.unavailable("openvino-bf16", "cpu") is None) == has_bf16
    if cpu_info().bf16:  # OpenVINO's own report is the second check
        monkeypatch.setattr(ov_runtime, "cpu_capabilities", lambda: ["FP32", "INT8"])
        reason = registry.unavailable("openvino-bf16", "cpu")
        assert reason == "OpenVINO's CPU plugin offers no bf16 here (its capabilities: FP32, INT8)"
        assert registry.unavailable("openvino-int8-bf16", "cpu") == reason
    assert registry.unavailable("openvino-int8", "cpu") is None


def test_each_batch_size_is_compiled_static_and_gives_the_rows_of_batch_one(exported):
    backend = ArtifactDir(exported).open("openvino-int8", threads=1)
    x = torch.from_numpy(synthetic_signals(3, WINDOW, 16000)[0])
    n = torch.full((3,), WINDOW, dtype=torch.int64)
    if backend.spec.kind == "fbank":
        from ast_deploy.frontend import KaldiFbank

        x, n = KaldiFbank(ArtifactDir(exported).frontend_config)(x, n), None
    rows = torch.cat([backend(x[i : i + 1], None if n is None else n[i : i + 1]) for i in range(3)])
    together = backend(x, n)
    assert sorted(backend.by_batch) == [1, 3]  # one static compilation per batch size
    for shape in (i.get_partial_shape() for i in backend.compiled.inputs):
        assert shape.is_static and shape[0].get_length() == 3
    torch.testing.assert_close(together, rows, atol=1e-4, rtol=0)


def test_bf16_keeps_the_front_end_in_float32_and_is_judged_as_bf16(exported):
    """bf16 would round the samples and count valid frames in 8-bit mantissas: a waveform IR's front end
    runs as its own f32 model, the transformer in bf16, and the result passes the bf16 parity gate."""
    artifacts = ArtifactDir(exported)
    if artifacts.unavailable("openvino-bf16", "cpu"):
        pytest.skip(artifacts.unavailable("openvino-bf16", "cpu"))
    for name in ("openvino-bf16", "openvino-int8-bf16"):
        backend = artifacts.open(name, threads=1)
        assert backend.precision == ("bf16" if name == "openvino-bf16" else "int8")  # the variant's, not fp32
        # the roofline's mix: int8 GEMMs with the rest in bf16 is its own floor
        assert backend.compute_precision == ("bf16" if name == "openvino-bf16" else "int8+bf16")
        assert str(backend.compiled.get_property("INFERENCE_PRECISION_HINT")) == "<Type: 'bfloat16'>"
        precisions = {
            op.get_rt_info()["runtimePrecision"].astype(str)
            for op in backend.compiled.get_runtime_model().get_ordered_ops()
            if op.get_rt_info()["layerType"].astype(str) == "FullyConnected"
        }
        if name == "openvino-bf16":
            assert precisions == {"bf16"}  # the transformer does run in bf16
        else:  # int8 GEMMs, the rest (the unquantised head, say) bf16
            assert precisions & {"u8", "i8"} and precisions <= {"u8", "i8", "bf16"}, precisions
        if artifacts.spec.kind == "waveform":
            assert not backend.legacy_split  # the exported halves, compiled as they are
            front = backend.front_end
            assert str(front.get_property("INFERENCE_PRECISION_HINT")) == "<Type: 'float32'>"
            kinds = {
                op.get_rt_info()["runtimePrecision"].astype(str) for op in front.get_runtime_model().get_ordered_ops()
            }
            assert "bf16" not in kinds
        else:
            assert backend.front_end is None
    report = run_parity(artifacts, ["openvino-bf16", "openvino-int8-bf16"], audio_inputs([SPEECH_WAV], WINDOW, 16000))
    bf16, int8_bf16 = report.results
    assert (bf16.precision, int8_bf16.precision) == ("bf16", "int8")
    assert bf16.thresholds == DEFAULT_THRESHOLDS["bf16"] and int8_bf16.thresholds == DEFAULT_THRESHOLDS["int8"]
    # The random-weight model's top two are often within bf16's reach on these 5 windows (near-ties flip,
    # as they do for pytorch-autocast-bf16); the logit vector must not turn.
    assert bf16.min_cosine >= DEFAULT_THRESHOLDS["bf16"].min_cosine and bf16.top5_agreement >= 0.8, bf16
    assert int8_bf16.passed, int8_bf16.failures


def without_halves(exported: Path, out: Path) -> Path:
    """``exported`` as an export before the halves were shipped wrote it: the whole IRs alone."""
    shutil.copytree(exported, out)
    manifest = json.loads((out / "manifest.json").read_text())
    for artifact in manifest["artifacts"]:
        for entry in artifact["files"][2:]:
            (out / entry["file"]).unlink()
        artifact["files"] = artifact["files"][:2]
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def test_artifacts_without_the_halves_still_run_bf16(exported, tmp_path):
    """An artifact exported before the front end and the rest were shipped as IRs of their own: its bf16
    backends cut the whole IR at load time, as the exporter does, and compute exactly what the halves do."""
    artifacts = ArtifactDir(exported)
    if artifacts.spec.kind != "waveform":
        pytest.skip("only a waveform IR runs its front end apart")
    if reason := artifacts.unavailable("openvino-bf16", "cpu"):
        pytest.skip(reason)
    old = ArtifactDir(without_halves(exported, tmp_path / "old"))
    x = torch.from_numpy(synthetic_signals(3, WINDOW, 16000)[0])
    n = torch.tensor([WINDOW, WINDOW // 2, WINDOW], dtype=torch.int64)
    for name in ("openvino-bf16", "openvino-int8-bf16"):
        new_backend, old_backend = artifacts.open(name, threads=1), old.open(name, threads=1)
        assert old_backend.legacy_split and not new_backend.legacy_split
        assert str(old_backend.front_end.get_property("INFERENCE_PRECISION_HINT")) == "<Type: 'float32'>"
        torch.testing.assert_close(old_backend(x, n), new_backend(x, n), rtol=0, atol=0)


def test_cli_predict_parity_and_bench_run_them(exported, tmp_path):
    ours = run_cli("predict", exported, SPEECH_WAV, "--backend", "openvino", "--json", "-k", "10")
    reference = run_cli("predict", exported, SPEECH_WAV, "--backend", "pytorch", "--json", "-k", "10")
    assert ours.code == 0 and reference.code == 0, ours.stderr + reference.stderr
    got, want = ours.json()["results"][0], reference.json()["results"][0]
    assert [t["label"] for t in got["top"]] == [t["label"] for t in want["top"]]
    np.testing.assert_allclose([t["score"] for t in got["top"]], [t["score"] for t in want["top"]], atol=1e-5)
    assert run_cli("predict", exported, SPEECH_WAV, "--backend", "openvino-int8").code == 0

    parity = run_cli(
        "parity", exported, "--backends", "openvino,openvino-int8", "--n", "8", "--report", tmp_path / "p.json"
    )
    assert parity.code == 0, parity.stdout + parity.stderr
    assert [r["backend"] for r in json.loads((tmp_path / "p.json").read_text())["results"]] == [
        "openvino",
        "openvino-int8",
    ]
    bench = run_cli(
        "bench", exported, "--backends", "openvino,openvino-int8", "--batch-sizes", "1,2", "--iters", "2",
        "--warmup", "1", "--input-sets", "1", "--isolation", "none", "--threads", "1", "--report", tmp_path / "b.json",
    )  # fmt: skip
    assert bench.code == 0, bench.stderr
    rows = json.loads((tmp_path / "b.json").read_text())["results"]
    assert {(r["backend"], r["batch"], r["status"]) for r in rows} == {
        (b, n, "ok") for b in ("openvino", "openvino-int8") for n in (1, 2)
    }
    assert all(r["load_s"] > 0 for r in rows)


def test_a_files_last_partial_batch_runs_padded_at_a_compiled_size(exported):
    """Offline, a file's last partial batch is padded to the batch size already compiled (a new static
    shape costs a compilation, ~300 MB for AST-base); a file shorter than one batch runs its own size.
    The scores are the (unpadded) PyTorch reference's, window for window."""
    import ast_deploy

    clf = ast_deploy.load(exported, backend="openvino")
    reference = ast_deploy.load(exported, backend="pytorch")
    rng = np.random.default_rng(1)
    signal = (0.1 * rng.standard_normal(WINDOW * 11)).astype(np.float32)  # 11 windows: 4 + 4 + 3
    scores, starts = clf.scores(signal, batch_size=4)
    assert len(starts) == 11 and sorted(clf.backend.by_batch) == [1, 4]  # 1: compiled at load
    np.testing.assert_allclose(scores, reference.scores(signal, batch_size=4)[0], atol=1e-5, rtol=0)
    short, _ = clf.scores(signal[: WINDOW * 3], batch_size=4)  # one batch of 3: nothing run to pad to
    assert sorted(clf.backend.by_batch) == [1, 3, 4]
    np.testing.assert_allclose(short, scores[:3], atol=1e-5, rtol=0)
    assert not reference.backend.static_batch_shapes


def test_a_cpu_only_backend_is_refused_on_a_gpu_not_run_on_the_cpu(exported):
    from ast_deploy.errors import UnavailableError

    with pytest.raises(UnavailableError, match="'openvino-int8' runs on cpu only, not on cuda"):
        ArtifactDir(exported).open("openvino-int8", device="cuda")


def test_default_backend_is_the_fastest_that_passed_parity_on_this_cpu_class(exported):
    """Reduced precision is the default only on the CPU classes where it was measured fastest (docs/cpus.md),
    and only for an artifact (or variant) whose parity passed: float32 elsewhere."""
    artifacts = ArtifactDir(exported)
    expected = {
        "amx": "openvino-int8-bf16",
        "avx512-bf16": "openvino-int8-bf16",
        "avx512-vnni": "openvino-int8",
    }.get(cpu_info().isa_class, "openvino")
    assert artifacts.default_backend("cpu") == expected
    # Without a passed parity record (an older manifest, export --no-verify), int8 is never the default.
    unverified = {a["name"]: {**a, "parity": None, "variants": {}} for a in artifacts.manifest["artifacts"]}
    assert registry.preferred("cpu", artifacts.backend_names(), unverified) == "openvino"


def test_corrupted_weights_fail_with_one_sha256_line(exported, tmp_path):
    damaged = tmp_path / "damaged"
    shutil.copytree(exported, damaged)
    with open(damaged / "model.bin", "r+b") as f:
        f.seek(1000)
        byte = f.read(1)
        f.seek(1000)
        f.write(bytes([byte[0] ^ 0xFF]))
    # the variant checks the same files (where the CPU runs it: without bf16 it is refused first)
    for backend in [b for b in ("openvino", "openvino-bf16") if registry.unavailable(b, "cpu") is None]:
        result = run_cli("predict", damaged, SPEECH_WAV, "--backend", backend)
        assert_input_error(result, "model.bin", "sha256", "does not match the manifest")
    assert run_cli("predict", damaged, SPEECH_WAV, "--backend", "openvino-int8").code == 0  # its own files are intact


# --- calibration inputs -------------------------------------------------------------------------


def test_calibration_reads_files_folders_and_manifests(calibration_dir, tmp_path):
    labels = [f"l{i}" for i in range(10)]
    default = default_calibration(WINDOW, 16000)  # always appended after the given audio's windows
    folder = load_calibration([calibration_dir], labels, WINDOW, 16000)
    assert folder.windows.shape == (17 + DEFAULT_CLIPS, WINDOW) and folder.to_dict()["clips"] == 17 + DEFAULT_CLIPS
    np.testing.assert_array_equal(folder.windows[17:], default.windows)
    single = load_calibration([SPEECH_WAV], labels, WINDOW, 16000)
    speech = audio_inputs([SPEECH_WAV], WINDOW, 16000).windows
    np.testing.assert_array_equal(single.windows[: len(speech)], speech)
    manifest = tmp_path / "calibration.csv"
    manifest.write_text(f"path,label\n{SPEECH_WAV},yes\n{calibration_dir / 'signal00.flac'},a label not in the model\n")
    from_manifest = load_calibration([manifest], labels, WINDOW, 16000)
    assert len(from_manifest.windows) == 6 + DEFAULT_CLIPS and "2 audio files, 6 windows" in from_manifest.source
    # A large set is spread evenly down to MAX_CLIPS windows of audio.
    many = load_calibration([calibration_dir] * 20, labels, WINDOW, 16000)
    assert len(many.windows) == MAX_CLIPS + DEFAULT_CLIPS


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("make", "fragments"),
    [
        (lambda d: d / "missing.wav", ["--calibration", "missing.wav", "no such file or folder"]),
        (lambda d: _write(d / "noise.wav", "not audio"), ["--calibration", "noise.wav", "not a readable audio file"]),
        (lambda d: _write(d / "empty" / "notes.txt", "x").parent, ["--calibration", "empty", "no audio files"]),
        (lambda d: _write(d / "list.txt", "a.wav"), ["--calibration", "list.txt", "neither audio"]),
        (lambda d: _write(d / "m.csv", "path,label\ngone.wav,yes\n"), ["--calibration", "gone.wav", "no such file"]),
    ],
    ids=["missing", "not-audio", "empty-folder", "unknown-kind", "manifest-missing-clip"],
)
def test_bad_calibration_is_one_error_line_exit_2(tmp_path, make, fragments):
    bad = make(tmp_path)
    out = tmp_path / "art"
    result = run_cli(
        "export", TINY_PTH, *authors_flags(TINY_CASE), "--out", out, "--to", "openvino-int8", "--calibration", bad
    )
    assert_input_error(result, *fragments)
    assert not out.exists()
