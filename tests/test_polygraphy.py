"""The polygraphy hand-off: the commands written into a hand-off's README run with polygraphy here.

``export --polygraphy`` and ``parity --polygraphy`` write polygraphy input JSON, a ``RunResults``
reference and a README of commands; these tests run those commands (ONNX Runtime runner) as a user
would: they pass on a fresh export and fail on corrupted weights, with the README's tolerances
(float32: max |Δlogit| <= 1e-4; FP16: the cosine-implied elementwise bound and top-1). TensorRT
commands are checked with polygraphy's own argument parser here and run where TensorRT exists.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from conftest import SPEECH_WAV, TINY_PTH, assert_input_error, authors_flags, run_cli
from onnx import numpy_helper

from ast_deploy.artifacts import ArtifactDir
from ast_deploy.export.manifest import file_entries
from ast_deploy.fileio import write_json
from ast_deploy.parity import DEFAULT_THRESHOLDS, HARD_SIGNALS, run_parity, synthetic_inputs
from ast_deploy.parity import handoff as ph
from ast_deploy.parity.crosscheck import crosscheck
from ast_deploy.runtime.tensorrt import tensorrt_missing

polygraphy = pytest.importorskip("polygraphy")
pytestmark = pytest.mark.usefixtures("one_torch_thread")

FLAGS = authors_flags("tiny_t100_f10t10")
N_INPUTS = 16 + len(HARD_SIGNALS)  # parity's default inputs: 16 seeded signals and the hard ones


@pytest.fixture(scope="module")
def handoff(tmp_path_factory) -> tuple[Path, Path]:
    """(artifact directory, hand-off directory) from ``ast-deploy export --to onnx,onnx-fp16 --polygraphy``."""
    root = tmp_path_factory.mktemp("polygraphy")
    art, out = root / "artifacts", root / "handoff"
    result = run_cli("export", TINY_PTH, *FLAGS, "--out", art, "--to", "onnx,onnx-fp16", "--batch", "1:2:8",
                     "--polygraphy", out)  # fmt: skip
    assert result.code == 0, result.stderr
    assert "polygraphy hand-off written to" in result.stderr
    return art, out


def commands(out: Path) -> dict[str, dict]:
    return {c["id"]: c for c in json.loads((out / ph.META_FILE).read_text())["commands"]}


def run_command(command: str, art: Path, out: Path, cwd: Path, **env) -> subprocess.CompletedProcess:
    """A README command in bash, with $ART and $HANDOFF set and this venv's polygraphy on PATH."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {**os.environ, "ART": str(art), "HANDOFF": str(out), "PATH": path, **env}
    proc = subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    proc.log = proc.stdout + proc.stderr  # polygraphy logs to stdout, Python errors go to stderr
    return proc


def corrupt(model_path: Path, dtype: int) -> None:
    """Perturb the largest initializer of ``dtype`` (as test_export does): a hash check cannot see it once the
    manifest is updated, only the numbers can."""
    model = onnx.load(str(model_path))
    weight = max((t for t in model.graph.initializer if t.data_type == dtype), key=lambda t: int(np.prod(t.dims)))
    array = numpy_helper.to_array(weight).copy()
    array.flat[::7] += array.dtype.type(0.05)
    weight.CopyFrom(numpy_helper.from_array(array, weight.name))
    onnx.save(model, str(model_path))


@pytest.fixture(scope="module")
def corrupted(handoff, tmp_path_factory) -> Path:
    """A copy of the artifacts with both ONNX files corrupted and the manifest's hashes updated."""
    art, _ = handoff
    bad = tmp_path_factory.mktemp("corrupted") / "artifacts"
    shutil.copytree(art, bad)
    corrupt(bad / "model.onnx", onnx.TensorProto.FLOAT)
    corrupt(bad / "model.fp16.onnx", onnx.TensorProto.FLOAT16)
    manifest = json.loads((bad / "manifest.json").read_text())
    for artifact in manifest["artifacts"]:
        artifact["files"] = file_entries(bad, [f["file"] for f in artifact["files"]])
    write_json(bad / "manifest.json", manifest)
    return bad


# --- the files ------------------------------------------------------------------------------------


def test_handoff_holds_polygraphy_inputs_and_run_results_of_the_reference(handoff):
    from polygraphy.comparator import RunResults
    from polygraphy.json import load_json

    art, out = handoff
    feeds = load_json(str(out / ph.INPUTS_FILE))
    assert len(feeds) == N_INPUTS and list(feeds[0]) == ["waveform", "num_samples"]
    assert feeds[0]["waveform"].dtype == np.float32 and feeds[0]["num_samples"].dtype == np.int64
    assert feeds[0]["waveform"].shape == (1, 16240) and feeds[0]["num_samples"].shape == (1,)
    assert len(load_json(str(out / ph.ONE_INPUT_FILE))) == 1

    # The feeds are parity's default inputs, and the reference is the PyTorch float32 model on them.
    artifacts = ArtifactDir(art)
    inputs = synthetic_inputs(artifacts)
    np.testing.assert_array_equal(np.concatenate([f["waveform"] for f in feeds]), inputs.windows)
    np.testing.assert_array_equal(np.concatenate([f["num_samples"] for f in feeds]), inputs.lengths)
    results = RunResults.load(str(out / ph.REFERENCE_FILE))
    assert list(results.keys()) == [ph.REFERENCE_RUNNER] and len(results[ph.REFERENCE_RUNNER]) == N_INPUTS
    reference = artifacts.open("pytorch")
    with torch.inference_mode():  # batches of 8, the export's largest
        expected = np.concatenate(
            [reference(torch.from_numpy(w), torch.from_numpy(n)).numpy() for w, n in zip(
                np.split(inputs.windows, N_INPUTS // 8), np.split(inputs.lengths, N_INPUTS // 8))]
        )  # fmt: skip
    got = np.concatenate([np.asarray(it["logits"]) for it in results[ph.REFERENCE_RUNNER]])
    np.testing.assert_allclose(got, expected, atol=1e-6)  # batch 1 vs batch 8: float rounding only

    readme = (out / ph.README_FILE).read_text()
    assert f"ART={art.resolve()}" in readme
    for command in commands(out).values():
        assert command["command"] in readme, command["id"]


@pytest.mark.slow
def test_fbank_handoff_feeds_features_under_the_fbank_input(tmp_path):
    art, out = tmp_path / "artifacts", tmp_path / "handoff"
    result = run_cli("export", TINY_PTH, *FLAGS, "--out", art, "--to", "onnx", "--input", "fbank", "--no-verify",
                     "--polygraphy", out)  # fmt: skip
    assert result.code == 0, result.stderr
    gate = commands(out)["onnx:simple"]
    assert gate["command"].endswith("--atol 0.0001 --rtol 0 --check-error-stat max")
    proc = run_command(gate["command"], art, out, tmp_path)
    assert proc.returncode == 0, proc.log
    assert "fbank [dtype=float32, shape=(1, 100, 128)]" in proc.log


# --- the gate commands, with polygraphy's ONNX Runtime runner -------------------------------------


def gate_commands(out: Path) -> list[dict]:
    return [c for c in commands(out).values() if c["artifact"] in ("onnx", "onnx-fp16") and c["expect"] == "pass"]


@pytest.mark.slow
def test_gate_commands_pass_on_a_fresh_export(handoff, tmp_path):
    art, out = handoff
    gates = gate_commands(out)
    assert {c["id"] for c in gates} == {"onnx:simple", "onnx-fp16:simple", "onnx-fp16:top1"}
    for command in gates:
        proc = run_command(command["command"], art, out, tmp_path)
        assert proc.returncode == 0, proc.log
        assert f"Passed: {N_INPUTS}/{N_INPUTS} iterations" in proc.log, proc.log


@pytest.mark.slow
def test_gate_commands_fail_on_corrupted_weights(handoff, corrupted, tmp_path):
    _, out = handoff
    simple = [c for c in gate_commands(out) if c["id"].endswith(":simple")]
    assert {c["id"] for c in simple} == {"onnx:simple", "onnx-fp16:simple"}
    for command in simple:
        proc = run_command(command["command"], corrupted, out, tmp_path)
        assert proc.returncode != 0, proc.log
        assert "FAILED | Output: 'logits' | Difference exceeds tolerance" in proc.log


def test_fp16_tolerance_in_the_readme_is_the_cosine_bound_with_margin(handoff):
    """The FP16 --atol is sqrt(1 - c^2) * min rms(reference); the healthy FP16 ONNX is well inside it."""
    art, out = handoff
    meta = json.loads((out / ph.META_FILE).read_text())
    (simple,) = [c for c in meta["checks"]["onnx-fp16"] if c["kind"] == "simple"]
    from polygraphy.comparator import RunResults

    reference = [np.asarray(it["logits"]) for it in RunResults.load(str(out / ph.REFERENCE_FILE))[ph.REFERENCE_RUNNER]]
    bound = math.sqrt(1 - DEFAULT_THRESHOLDS["fp16"].min_cosine ** 2) * min(np.sqrt(np.mean(r**2)) for r in reference)
    assert 0.9 * bound <= simple["value"] <= bound
    parity = json.loads((art / "manifest.json").read_text())["artifacts"][1]["parity"]
    assert parity["backend"] == "onnx-fp16" and parity["max_abs_logit"] < simple["value"] / 3


def test_elementwise_bound_implies_the_cosine():
    """The mapping's claim, adversarially: any error within the bound keeps cosine >= c on every clip."""
    rng = np.random.default_rng(0)
    reference = [rng.standard_normal((1, 10)).astype(np.float32) * s for s in (0.2, 1.0, 5.0)]
    for c in (0.999, 0.99):
        atol = ph.cosine_atol(c, reference)
        for r in reference:
            for e in (np.full_like(r, atol), -np.sign(r) * atol, rng.choice([-atol, atol], size=r.shape)):
                x = (r + e).ravel().astype(np.float64)
                cos = x @ r.ravel() / np.linalg.norm(x) / np.linalg.norm(r)
                assert cos >= c
    assert ph._floor2(0.0073999) == pytest.approx(0.0073) and ph._floor2(1.05e-4) == pytest.approx(1.0e-4)


# --- layer-wise and real audio ------------------------------------------------------------------------


@pytest.mark.slow
def test_layerwise_fp16_command_compares_every_shared_tensor(handoff, tmp_path):
    art, out = handoff
    cmds = commands(out)
    for name in ("layerwise:golden", "layerwise:onnx-fp16"):
        proc = run_command(cmds[name]["command"], art, out, tmp_path)
        assert proc.returncode == 0, proc.log
    # The FP16 conversion keeps tensor names, so nearly every float32 tensor has its FP16 counterpart.
    assert proc.log.count("Comparing Output") > 100 and "Mismatched" not in proc.log


def test_data_loader_script_feeds_our_front_end(handoff, tmp_path):
    from polygraphy.comparator import RunResults
    from polygraphy.json import load_json

    from ast_deploy.audio import load_audio
    from ast_deploy.windows import cut_windows

    art, out = handoff
    command = commands(out)["audio:golden"]["command"].split(" ", 1)[1]  # without the example variable
    proc = run_command(command, art, out, tmp_path, **{ph.AUDIO_ENV: str(SPEECH_WAV)})
    assert proc.returncode == 0, proc.log
    feeds = load_json(str(tmp_path / "audio_inputs.json"))
    windows, lengths, _ = cut_windows(load_audio(SPEECH_WAV, 16000), 16240, 16240)
    assert len(feeds) == len(windows) == 5  # 4.15 s in 1.015 s windows, the last one aligned to the end
    np.testing.assert_array_equal(np.concatenate([f["waveform"] for f in feeds]), windows)
    np.testing.assert_array_equal(np.concatenate([f["num_samples"] for f in feeds]), lengths)
    (outputs,) = RunResults.load(str(tmp_path / "audio_fp32.json")).values()
    reference = ArtifactDir(art).open("pytorch")
    with torch.inference_mode():
        expected = reference(torch.from_numpy(windows), torch.from_numpy(lengths)).numpy()
    np.testing.assert_allclose(np.concatenate([np.asarray(o["logits"]) for o in outputs]), expected, atol=1e-4)

    listing = tmp_path / "clips.txt"
    listing.write_text(f"# clips\n{SPEECH_WAV}\n")
    assert ph.audio_paths({ph.AUDIO_LIST_ENV: str(listing)}) == [SPEECH_WAV]
    with pytest.raises(ph.InputError, match=ph.AUDIO_ENV):
        ph.audio_paths({})


def test_hand_off_folders_written_before_the_move_still_load_audio(handoff, tmp_path, monkeypatch):
    """Folders written when the hand-off was ``ast_deploy.polygraphy_handoff`` import ``audio_feeds`` from
    there: that path still gives the same feeds as the loader written now."""
    import runpy

    _, out = handoff
    old = tmp_path / "old-handoff"
    shutil.copytree(out, old)
    loader = old / ph.LOADER_FILE
    assert "from ast_deploy.parity.handoff import audio_feeds" in loader.read_text()
    loader.write_text(loader.read_text().replace("ast_deploy.parity.handoff", "ast_deploy.polygraphy_handoff"))
    monkeypatch.setenv(ph.AUDIO_ENV, str(SPEECH_WAV))
    old_feeds = list(runpy.run_path(str(loader))["load_data"]())
    new_feeds = list(runpy.run_path(str(out / ph.LOADER_FILE))["load_data"]())
    assert len(old_feeds) == len(new_feeds) == 5
    for a, b in zip(old_feeds, new_feeds):
        assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


# --- the cross-check ------------------------------------------------------------------------------------


def test_crosscheck_reports_polygraphy_beside_ours(handoff, tmp_path):
    art, _ = handoff
    report = tmp_path / "parity.json"
    result = run_cli("parity", art, "--crosscheck", "polygraphy", "--report", report, "--markdown", tmp_path / "p.md")
    assert result.code == 0, result.stdout + result.stderr
    for r in json.loads(report.read_text())["results"]:
        cc = r["crosscheck"]
        assert cc["tool"] == "polygraphy" and cc["runner"] == "onnxrt" and cc["passed"] and cc["agrees"]
    assert "polygraphy (onnxrt runner) on onnx-fp16: PASSED" in result.stdout
    assert "ours: passed (agrees)" in (tmp_path / "p.md").read_text()


def test_crosscheck_agrees_with_ours_on_corrupted_weights(corrupted):
    artifacts = ArtifactDir(corrupted)
    inputs = synthetic_inputs(artifacts, n=8)
    report = run_parity(artifacts, ["onnx", "onnx-fp16"], inputs)
    checks = crosscheck(artifacts, ph.handoff_data(artifacts, inputs), report.results)
    assert [r.passed for r in report.results] == [False, False]
    assert [c.passed for c in checks] == [False, False] and all(c.agrees for c in checks)


def test_bad_polygraphy_options_are_one_line(handoff, tmp_path):
    art, _ = handoff
    assert_input_error(run_cli("parity", art, "--crosscheck", "onnxruntime"), "--crosscheck 'onnxruntime'")
    (tmp_path / "notes.txt").write_text("mine")
    assert_input_error(run_cli("parity", art, "--polygraphy", tmp_path), "is not a polygraphy hand-off")
    assert (tmp_path / "notes.txt").read_text() == "mine"


# --- TensorRT: well-formed here, run where TensorRT exists ---------------------------------------------


def parse_polygraphy(command: str):
    """``command`` through polygraphy's own CLI parser (as ``polygraphy`` builds it), without running it."""
    from polygraphy.tools.registry import TOOL_REGISTRY

    parser = argparse.ArgumentParser()
    subparsers = parser.add_subparsers(dest="tools", required=True)
    for tool in TOOL_REGISTRY:
        tool.setup_parser(subparsers)
    argv = shlex.split(command.replace("$ART", "/art").replace("$HANDOFF", "/handoff"))
    if "=" in argv[0]:  # VAR=value polygraphy ...
        argv = argv[1:]
    assert argv[0] == "polygraphy"
    args, unknown = parser.parse_known_args(argv[1:])
    assert not unknown, f"polygraphy does not know {unknown}"
    args.subcommand.parse(args)
    return args.subcommand


def test_every_command_parses_with_polygraphy(handoff):
    from polygraphy.tools.args import ModelArgs, TrtConfigArgs, TrtLoadNetworkArgs

    _, out = handoff
    cmds = commands(out)
    assert any(c["needs_tensorrt"] for c in cmds.values())
    for command in cmds.values():
        for part in command["command"].split(" && "):
            parse_polygraphy(part)
    tool = parse_polygraphy(cmds["trt-from-fp16:simple"]["command"])
    assert tool.arg_groups[TrtConfigArgs].profile_dicts == [
        {"waveform": ([1, 16240], [2, 16240], [8, 16240]), "num_samples": ([1], [2], [8])}
    ]
    assert tool.arg_groups[TrtLoadNetworkArgs].strongly_typed
    assert tool.arg_groups[ModelArgs].model_type == "onnx"
    tool = parse_polygraphy(cmds["trt-from-fp16:top1"]["command"])
    assert tool.arg_groups[ModelArgs].model_type == "engine"
    with pytest.raises(AssertionError, match="does not know"):
        parse_polygraphy("polygraphy run model.onnx --trt --no-such-flag")


@pytest.mark.tensorrt
@pytest.mark.skipif(tensorrt_missing() is not None, reason=f"TensorRT commands not run: {tensorrt_missing()}")
def test_tensorrt_gate_commands_pass(handoff, tmp_path):
    art, out = handoff
    trt = [c for c in commands(out).values() if c["id"].startswith("trt-from-fp16:") and c["expect"] == "pass"]
    assert trt  # the engine build and its comparisons
    for command in trt:
        proc = run_command(command["command"], art, out, tmp_path)
        assert proc.returncode == 0, proc.log
