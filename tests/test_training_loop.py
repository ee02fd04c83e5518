"""The training loop end to end on tiny configurations: learning, exact resume, checkpoints, CLI errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from _training_helpers import overrides, write_tone_set

from ast_deploy.checkpoints import LoadOptions, load_checkpoint
from ast_deploy.checkpoints.adapt import state_dict_from_deit
from ast_deploy.cli import main as cli
from ast_deploy_training.config import load_config
from ast_deploy_training.init_weights import initial_model
from ast_deploy_training.train import run

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tones(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tones")
    return {
        "train": write_tone_set(root, 40, name="train", seed=0),
        "valid": write_tone_set(root, 10, name="valid", seed=1),
        "test": write_tone_set(root, 10, name="test", seed=2),
    }


@pytest.fixture(scope="module")
def trained(tones, tmp_path_factory) -> tuple[Path, dict]:
    """A tiny AST trained for 5 epochs on 4 tone classes (chance: 25 %)."""
    out = tmp_path_factory.mktemp("run") / "run"
    config = load_config(
        None,
        overrides(
            train_data=tones["train"], valid_data=tones["valid"], test_data=tones["test"], epochs=5, batch_size=16
        ),
    )
    return out, run(config, out)


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path).state_dict


def max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def test_training_learns_the_generated_task(trained) -> None:
    out, summary = trained
    assert summary["test"]["best"]["accuracy"] >= 0.6  # 4 classes: chance is 0.25
    assert summary["best"]["valid"]["accuracy"] >= 0.6
    history = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    losses = [h["train"]["loss"] for h in history if h["event"] == "epoch"]
    assert losses[-1] < losses[0]
    assert {"mAP", "mAUC", "d_prime", "accuracy"} <= set(summary["last"]["ensemble"])
    for name in ("epoch_001", "epoch_005", "best", "last"):
        assert (out / name / "model.safetensors").is_file()
    assert (out / "last" / "train_state.pt").is_file()


def test_checkpoint_loads_in_predict_and_in_transformers(trained, tones, capsys) -> None:
    out, _ = trained
    wav = tones["test"].parent / "test" / "0002.wav"
    assert cli(["predict", str(out / "best"), str(wav), "--json", "-k", "2"]) == 0
    result = json.loads(capsys.readouterr().out)["results"][0]
    assert result["top"][0]["label"] in {"c0", "c1", "c2", "c3"}
    assert sum(t["score"] for t in result["top"]) <= 1.0 + 1e-6  # softmax for a single-label task

    transformers = pytest.importorskip("transformers")
    hf = transformers.ASTForAudioClassification.from_pretrained(str(out / "best")).eval()
    ckpt = load_checkpoint(out / "best")
    ours = ckpt.build_model()
    x = torch.randn(2, ckpt.config.target_length, ckpt.config.num_mel_bins) * 0.5
    with torch.no_grad():
        torch.testing.assert_close(hf(input_values=x).logits, ours(x), atol=1e-4, rtol=1e-4)
    assert hf.config.id2label[3] == "c3"


@pytest.mark.slow
def test_kill_and_resume_reaches_the_same_weights(tones, tmp_path) -> None:
    """SIGKILL a run after its first checkpoint, --resume it, compare with an uninterrupted run."""
    common = dict(
        train_data=tones["train"], valid_data=tones["valid"], epochs=3, batch_size=16,
        freqm=8, timem=8, mixup=0.5, noise="true", keep_epoch_checkpoints="false",
    )  # fmt: skip
    straight = tmp_path / "straight"
    run(load_config(None, overrides(**common, num_workers=2)), straight)

    killed = tmp_path / "killed"
    cmd = [sys.executable, "-m", "ast_deploy_training", "--out", str(killed)]
    sets = [arg for o in overrides(**common) for arg in ("--set", o)]
    proc = subprocess.Popen([*cmd, *sets], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (killed / "last" / "train_state.pt").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (killed / "last" / "train_state.pt").exists()
    epoch = json.loads((killed / "last" / "training.json").read_text())["epoch"]
    assert epoch < 3, "the run finished before it could be killed"
    resumed = subprocess.run([*cmd, "--resume"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming after epoch {epoch}" in resumed.stderr
    assert max_diff(weights(straight / "last"), weights(killed / "last")) <= 1e-6
    a = json.loads((straight / "summary.json").read_text())["last"]["valid"]
    b = json.loads((killed / "summary.json").read_text())["last"]["valid"]
    assert a["accuracy"] == b["accuracy"] and a["mAP"] == pytest.approx(b["mAP"], abs=1e-6)


@pytest.mark.slow
def test_stop_hook_and_resume_with_weight_averaging(tones, tmp_path) -> None:
    config = load_config(
        None, overrides(train_data=tones["train"], epochs=3, batch_size=32, wa_start=2, wa_end=3, stop_after_epoch=2)
    )
    out = tmp_path / "run"
    assert run(config, out)["stopped"]
    assert not (out / "epoch_003").exists()
    summary = run(config, out, resume=True)
    assert summary["epochs"] == 3
    e2, e3, wa = weights(out / "epoch_002"), weights(out / "epoch_003"), weights(out / "wa")
    assert max_diff(wa, {k: (e2[k] + e3[k]) / 2 for k in e2}) <= 1e-6


@pytest.mark.slow
def test_gradient_accumulation_matches_one_big_batch(tones, tmp_path) -> None:
    base = dict(train_data=tones["train"], epochs=1, batch_size=16, max_steps_per_epoch=4)
    run(load_config(None, overrides(**base)), tmp_path / "a")
    run(load_config(None, overrides(**base, grad_accum=4)), tmp_path / "b")
    # Same gradients up to float summation order; Adam's g / sqrt(v) amplifies rounding on near-zero
    # gradients, so the bound is a small fraction of one step (lr 1e-3 x 4 steps), not 1e-7.
    assert max_diff(weights(tmp_path / "a" / "last"), weights(tmp_path / "b" / "last")) <= 1e-4


@pytest.mark.slow
def test_cross_validation_reports_per_fold_and_mean(tones, tmp_path) -> None:
    root = tones["train"].parent
    for fold in (1, 2):
        (root / f"train_{fold}.csv").write_text(tones["train"].read_text())
        (root / f"valid_{fold}.csv").write_text(tones["valid"].read_text())
    config = load_config(
        None,
        overrides(train_data=root / "train_{fold}.csv", valid_data=root / "valid_{fold}.csv", folds=[1, 2],
                  epochs=1, batch_size=32, max_steps_per_epoch=2),
    )  # fmt: skip
    summary = run(config, tmp_path / "cv")
    assert set(summary["folds"]) == {"1", "2"}
    assert summary["mean_last"] == pytest.approx(np.mean([f["last"] for f in summary["folds"].values()]))
    assert (tmp_path / "cv" / "fold_2" / "best" / "config.json").is_file()


def test_bf16_mixed_precision_on_cpu_runs(tones, tmp_path) -> None:
    config = load_config(None, overrides(train_data=tones["train"], epochs=1, batch_size=32, max_steps_per_epoch=2,
                                         precision="bf16"))  # fmt: skip
    summary = run(config, tmp_path / "bf16")
    assert np.isfinite(summary["last"]["train"]["loss"])


def test_imagenet_deit_and_authors_checkpoint_initialisation(tones) -> None:
    deit_path = FIXTURES / "deit_tiny_2blocks_timm.pth"
    base = dict(train_data=tones["train"], target_length=100, fstride=10, tstride=10)
    config = load_config(None, overrides(**base, init="imagenet", init_weights=deit_path))
    model, origin = initial_model(config, 4)
    assert "ImageNet" in origin and model.config.embed_dim == 192 and model.config.depth == 2
    expected = state_dict_from_deit(torch.load(deit_path, weights_only=True), model.config)
    for key in ("pos_embed", "patch_embed.proj.weight", "blocks.1.mlp.fc2.weight"):
        torch.testing.assert_close(model.state_dict()[key], expected[key], rtol=0, atol=0)
    assert model.head.fc.out_features == 4

    authors = FIXTURES / "tiny_t100_f10t10.pth"  # 100 frames, 10 labels -> 64 frames, 4 labels
    config = load_config(None, overrides(**{**base, "target_length": 64}, init="checkpoint", init_weights=authors))
    model, origin = initial_model(config, 4)
    assert model.config.grid == (12, 5) and model.head.fc.out_features == 4
    source = load_checkpoint(authors, LoadOptions(fstride=10, tstride=10)).state_dict
    torch.testing.assert_close(model.state_dict()["blocks.0.attn.qkv.weight"], source["blocks.0.attn.qkv.weight"])


def test_evaluate_and_stats_commands(trained, tones, tmp_path, capsys) -> None:
    out, summary = trained
    report = tmp_path / "eval.json"
    assert cli(["evaluate", str(out / "best"), str(tones["test"]), "--report", str(report), "--workers", "0"]) == 0
    data = json.loads(report.read_text())
    assert data["accuracy"] == pytest.approx(summary["test"]["best"]["accuracy"])
    assert len(data["ap"]) == 4 and "per class" in capsys.readouterr().out
    assert cli(["stats", str(tones["train"]), "--target-length", "64", "--json", "--workers", "0"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["num_clips"] == 160 and -20 < stats["mean"] < 0 and stats["std"] > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--out", "{tmp}/none", "--resume"], "nothing to resume"),
        (["train", "quickstart", "--out", "{tmp}/x", "--resume"], "nothing to resume"),
        (["train", "quickstart", "--set", "learning_rate=1"], "unknown config key 'learning_rate'"),
        (["train", "quickstart", "--set", "train_data={tmp}/missing.csv"], "no such manifest"),
        (
            ["train", "quickstart", "--set", "train_data={bad}", "--out", "{tmp}/bad"],
            "2 of 3 audio files are missing or unreadable",
        ),
        (["train", "quickstart", "--set", "train_data={empty}"], "empty split"),
    ],
)
def test_bad_input_is_one_line_and_exit_status_2(args, message, tmp_path, capsys, tones) -> None:
    (tmp_path / "empty.csv").write_text("path,label\n")
    (tmp_path / "gone.csv").write_text(f"{tones['train'].parent / 'train' / '0000.wav'},a\nnope.wav,b\nnada.wav,a\n")
    fill = {"tmp": tmp_path, "bad": tmp_path / "gone.csv", "empty": tmp_path / "empty.csv"}
    assert cli([a.format(**fill) for a in args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err


def test_imagenet_by_timm_name_without_timm_is_one_clear_line(tones, tmp_path, capsys) -> None:
    try:
        import timm  # noqa: F401

        pytest.skip("timm is installed: fetching by name would need the network")
    except ImportError:
        pass
    args = ["train", "--set", f"train_data={tones['train']}", "--set", "init=imagenet",
            "--set", "init_weights=deit_base_distilled_patch16_384", "--out", str(tmp_path / "t")]  # fmt: skip
    assert cli(args) == 2
    err = capsys.readouterr().err.strip()
    assert "timm is not installed" in err and len(err.splitlines()) == 1
