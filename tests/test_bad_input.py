"""Bad input through the CLI: one ``error: ...`` line naming the problem, exit status 2, no traceback."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import (
    SPEECH_WAV,
    TINY_CASE,
    TINY_PTH,
    assert_input_error,
    authors_flags,
    fixture_path,
    load_fixture,
    run_cli,
    run_cli_subprocess,
    write_wav,
)
from safetensors.torch import load_file, save_file

from ast_deploy import InputError

pytestmark = pytest.mark.usefixtures("one_torch_thread")

HF_LAYER = "audio_spectrogram_transformer.encoder.layer"


def modified_pth(path: Path, change) -> Path:
    state_dict = dict(load_fixture(f"{TINY_CASE}.pth"))
    change(state_dict)
    torch.save(state_dict, path)
    return path


def modified_hf_dir(src: Path, dst: Path, change) -> Path:
    shutil.copytree(src, dst)
    weights = load_file(dst / "model.safetensors")
    change(weights)
    save_file(weights, dst / "model.safetensors")
    return dst


@pytest.fixture(scope="module")
def bad(tmp_path_factory, tiny_model_dir) -> dict[str, Path]:
    """Every kind of bad file, made once."""
    d = tmp_path_factory.mktemp("bad")
    rng = np.random.default_rng(0)
    nan, inf = np.zeros(16000, np.float32), np.zeros(16000, np.float32)
    nan[100], inf[200] = np.nan, np.inf
    pth = TINY_PTH.read_bytes()
    files = {
        "model": tiny_model_dir,
        "model.safetensors": tiny_model_dir / "model.safetensors",
        "missing": d / "missing.wav",
        "text.wav": d / "text.wav",
        "empty.wav": write_wav(d / "empty.wav", np.zeros(0, np.float32)),
        "nan.wav": write_wav(d / "nan.wav", nan, subtype="FLOAT"),
        "inf.wav": write_wav(d / "inf.wav", inf, subtype="FLOAT"),
        "short.wav": write_wav(d / "short.wav", 0.1 * rng.standard_normal(300).astype(np.float32)),
        "dir": d / "a_directory",
        "random.pth": d / "random.pth",
        "truncated.pth": d / "truncated.pth",
        "text.pth": d / "text.pth",
        "empty.pth": d / "empty.pth",
        "labels.csv": d / "labels.csv",
        "bad-config": d / "bad_config",
        "shape.pth": modified_pth(
            d / "shape.pth", lambda sd: sd.update({"module.v.blocks.1.attn.proj.weight": torch.zeros(192, 100)})
        ),
        "unknown.pth": modified_pth(d / "unknown.pth", lambda sd: sd.update({"module.v.extra.weight": torch.zeros(3)})),
        "hf-shape": modified_hf_dir(
            tiny_model_dir,
            d / "hf_shape",
            lambda w: w.update({f"{HF_LAYER}.1.attention.output.dense.weight": torch.zeros(192, 100)}),
        ),
        "hf-qkv": modified_hf_dir(
            tiny_model_dir,
            d / "hf_qkv",
            lambda w: w.update({f"{HF_LAYER}.0.attention.attention.query.weight": torch.zeros(192, 100)}),
        ),
        "hf-unknown": modified_hf_dir(
            tiny_model_dir, d / "hf_unknown", lambda w: w.update({f"{HF_LAYER}.0.extra.weight": torch.zeros(3)})
        ),
        "hf-corrupt": modified_hf_dir(tiny_model_dir, d / "hf_corrupt", lambda w: None),
    }
    files["text.wav"].write_text("this is not audio\n")
    files["dir"].mkdir()
    files["random.pth"].write_bytes(rng.bytes(5000))
    files["truncated.pth"].write_bytes(pth[: len(pth) // 2])
    files["text.pth"].write_text("hello")
    files["empty.pth"].write_bytes(b"")
    files["labels.csv"].write_text("index,mid,display_name\n0,/m/a,A\n1,/m/b,B\n2,/m/c,C\n")
    (files["hf-corrupt"] / "model.safetensors").write_bytes(rng.bytes(3000))
    shutil.copytree(tiny_model_dir, files["bad-config"])
    (files["bad-config"] / "config.json").write_text("{not json")
    return files


def predict(*args):
    """``predict ARGS``, where an argument naming one of the ``bad`` files stands for its path."""
    return lambda files: ["predict", *(files.get(a, a) for a in args)]


FLAGS = authors_flags(TINY_CASE)
DEIT = fixture_path("deit_tiny_2blocks_timm.pth")

CASES = {
    # audio
    "missing-audio": (predict("model", "missing"), ["missing.wav: no such file"]),
    "not-audio": (predict("model", "text.wav"), ["text.wav: not a readable audio file"]),
    "zero-length-audio": (predict("model", "empty.wav"), ["empty.wav: audio has no samples"]),
    "nan-samples": (predict("model", "nan.wav"), ["nan.wav: audio contains NaN or infinite samples (first at sample 100)"]),
    "inf-samples": (predict("model", "inf.wav"), ["inf.wav: audio contains NaN or infinite samples (first at sample 200)"]),
    "folder-without-audio": (predict("model", "dir"), ["a_directory: no audio files found (looked for .wav, .flac"]),
    "pattern-without-match": (predict("model", "nothere*.wav"), ["nothere*.wav: no file or folder matches this pattern"]),
    "uri-as-audio": (predict("model", "s3://bucket/a.wav"), ["s3://bucket/a.wav: URIs are read by 'ast-deploy batch'"]),
    "shorter-than-a-frame": (predict("model", "short.wav"), ["short.wav: audio is 18.8 ms long, shorter than one 25 ms analysis frame"]),
    # checkpoints
    "missing-model": (predict("nothere.pth", SPEECH_WAV), ["nothere.pth: no such file or directory"]),
    "directory-without-config": (predict("dir", SPEECH_WAV), ["a_directory: directory has no config.json"]),
    "corrupt-checkpoint": (predict("random.pth", SPEECH_WAV), ["random.pth: corrupt or truncated checkpoint"]),
    "truncated-checkpoint": (predict("truncated.pth", SPEECH_WAV), ["truncated.pth: corrupt or truncated checkpoint"]),
    "text-as-checkpoint": (predict("text.pth", SPEECH_WAV), ["text.pth: corrupt or truncated checkpoint"]),
    "empty-checkpoint": (predict("empty.pth", SPEECH_WAV), ["empty.pth: corrupt or truncated checkpoint"]),
    "authors-wrong-shape": (predict("shape.pth", SPEECH_WAV, *FLAGS), ["wrong shape: blocks.1.attn.proj.weight (192, 100) vs (192, 192)"]),
    "authors-unknown-key": (predict("unknown.pth", SPEECH_WAV, *FLAGS), ["weights do not fit the model (unexpected: extra.weight)"]),
    "hf-wrong-shape": (predict("hf-shape", SPEECH_WAV), ["hf_shape: weights do not fit", "wrong shape: blocks.1.attn.proj.weight (192, 100) vs (192, 192)"]),
    "hf-qkv-wrong-shape": (predict("hf-qkv", SPEECH_WAV), ["q/k/v of different shapes", "layer.0.attention.attention.query.weight (192, 100)"]),
    "hf-unknown-key": (predict("hf-unknown", SPEECH_WAV), [f"unexpected {HF_LAYER}.0.extra.weight"]),
    "hf-corrupt-weights": (predict("hf-corrupt", SPEECH_WAV), ["model.safetensors: corrupt or truncated safetensors file"]),
    "hf-corrupt-config": (predict("bad-config", SPEECH_WAV), ["config.json: cannot read JSON"]),
    "hf-weights-file-not-dir": (predict("model.safetensors", SPEECH_WAV), ["give the Hugging Face model directory"]),
    "ambiguous-grid": (predict(TINY_PTH, SPEECH_WAV), ["108 patches", "--input-tdim", "--fstride", "--tstride"]),
    "imagenet-deit": (predict(DEIT, SPEECH_WAV), ["ImageNet (DeiT) state dict"]),
    # flags
    "labels-wrong-size": (predict("model", SPEECH_WAV, "--labels", "labels.csv"), ["labels.csv: label CSV has 3 labels but the model outputs 10"]),
    "unknown-norm": (predict("model", SPEECH_WAV, "--norm", "loud"), ["unknown normalisation preset 'loud'; known: audioset"]),
    "unknown-aggregate": (predict("model", SPEECH_WAV, "--aggregate", "median"), ["--aggregate must be mean or max"]),
    "hop-not-positive": (predict("model", SPEECH_WAV, "--hop", "0"), ["hop must be positive"]),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_line_and_exit_status_2(bad, case):
    build, fragments = CASES[case]
    assert_input_error(run_cli(*build(bad)), *fragments)


def test_pickled_code_is_never_run(tmp_path):
    """A checkpoint pickling a callable (here ``os.mkdir``) is refused by the weights-only loader."""
    marker = tmp_path / "payload-ran"

    class Payload:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    path = tmp_path / "payload.pth"
    torch.save({"pos_embed": torch.zeros(1, 4, 8), "payload": Payload()}, path)
    assert_input_error(run_cli("predict", path, SPEECH_WAV), "payload.pth: refusing to unpickle", "mkdir")
    assert not marker.exists()
    torch.load(path, weights_only=False)  # the payload is real: an unrestricted load runs it
    assert marker.is_dir()


def test_non_tensor_values_are_refused(tmp_path):
    path = tmp_path / "mixed.pth"
    torch.save({**load_fixture(f"{TINY_CASE}.pth"), "epoch": 3}, path)
    assert_input_error(run_cli("predict", path, SPEECH_WAV, *FLAGS), "mixed.pth: not a state dict of tensors")


@pytest.mark.parametrize("debug", [False, True])
def test_installed_script_reports_bad_input(tmp_path, debug):
    """End to end: one line and status 2; ``--debug`` shows the traceback instead."""
    args = ["--debug"] * debug + ["predict", TINY_PTH, *FLAGS, tmp_path / "missing.wav"]
    result = run_cli_subprocess(*args)
    if debug:
        assert result.code != 0 and "Traceback" in result.stderr and "InputError" in result.stderr
    else:
        assert_input_error(result, "missing.wav: no such file")


def test_debug_flag_raises_in_process(tmp_path):
    with pytest.raises(InputError, match=r"missing\.wav: no such file"):
        run_cli("--debug", "predict", TINY_PTH, *FLAGS, tmp_path / "missing.wav")


# --- convert: never clobbers, never leaves temporary directories --------------------------------


def listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_convert_refuses_an_existing_destination_without_force(tmp_path):
    dst = tmp_path / "out"
    dst.mkdir()
    (dst / "keep.txt").write_text("precious")
    assert_input_error(run_cli("convert", TINY_PTH, dst, *FLAGS), "out: already exists (use --force to replace it)")
    assert listing(dst) == ["keep.txt"] and listing(tmp_path) == ["out"]

    result = run_cli("convert", TINY_PTH, dst, *FLAGS, "--force")
    assert result.code == 0, result.stderr
    assert listing(dst) == ["config.json", "model.safetensors", "preprocessor_config.json"]
    assert listing(tmp_path) == ["out"]  # no temporary or old directories left beside it


def test_convert_of_a_bad_checkpoint_writes_nothing(tmp_path, bad):
    before = listing(tmp_path)
    assert_input_error(run_cli("convert", bad["shape.pth"], tmp_path / "out", *FLAGS), "wrong shape")
    assert listing(tmp_path) == before


@pytest.mark.parametrize("existing", [False, True])
def test_convert_failing_mid_write_leaves_no_temporary_directory(tmp_path, monkeypatch, existing):
    """A write error (disk full) after some files are written: the destination is as it was."""

    def disk_full(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("ast_deploy.checkpoints.save_file", disk_full)
    dst = tmp_path / "out"
    if existing:
        dst.mkdir()
        (dst / "keep.txt").write_text("precious")
    with pytest.raises(OSError, match="No space left"):
        run_cli("convert", TINY_PTH, dst, *FLAGS, "--force")
    assert listing(tmp_path) == (["out"] if existing else [])
    if existing:
        assert listing(dst) == ["keep.txt"] and (dst / "keep.txt").read_text() == "precious"
