"""Manifests, labels, bad input, the feature pipeline, augmentation and samplers."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from _training_helpers import SR, tone_clip, write_tone_set

from ast_deploy.errors import InputError
from ast_deploy.frontend import FrontEndConfig, KaldiFbank
from ast_deploy.labels import read_label_csv
from ast_deploy.manifests import read_split
from ast_deploy.windows import cut_windows
from ast_deploy_training.augment import AugmentConfig, balanced_weights, mix_waveforms, spec_augment
from ast_deploy_training.data import AudioDataset, EpochSampler, ShardSampler, check_files, make_loader

FE = FrontEndConfig(target_length=64, mean=-6.0, std=5.0)


@pytest.fixture
def clips(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    for i in range(4):
        sf.write(tmp_path / f"a{i}.wav", tone_clip(i % 2, rng), SR)
    (tmp_path / "labels.csv").write_text('index,mid,display_name\n0,/m/dog,"Dog"\n1,/m/cat,"Cat, domestic"\n')
    return tmp_path


def test_authors_json_manifest_with_mids_and_names(clips: Path) -> None:
    data = {"data": [{"wav": str(clips / "a0.wav"), "labels": "/m/dog"}, {"wav": "a1.wav", "labels": "/m/cat,Dog"}]}
    (clips / "m.json").write_text(json.dumps(data))
    split = read_split(clips / "m.json", read_label_csv(clips / "labels.csv"), multi_label=True)
    assert [e.labels for e in split.examples] == [(0,), (1, 0)]
    assert split.examples[1].path == clips / "a1.wav"  # relative to the manifest


def test_csv_manifest_multi_label_and_label_set_from_data(clips: Path) -> None:
    (clips / "m.csv").write_text("path,labels\na0.wav,bark;howl\na1.wav,meow\n")
    split = read_split(clips / "m.csv", multi_label=True)
    assert split.labels.names == ["bark", "howl", "meow"]
    assert [e.labels for e in split.examples] == [(0, 1), (2,)]


def test_folder_per_class(tmp_path: Path) -> None:
    write_tone_set(tmp_path, 1, num_classes=2)
    root = tmp_path / "folders"
    for i, name in enumerate(["up", "down"]):
        (root / name).mkdir(parents=True)
        sf.write(root / name / f"{i}.wav", np.zeros(1600, np.float32), SR)
    (root / "_background_noise_").mkdir()
    sf.write(root / "_background_noise_" / "n.wav", np.zeros(1600, np.float32), SR)
    split = read_split(root)
    assert split.labels.names == ["down", "up"] and len(split) == 2


@pytest.mark.parametrize(
    ("content", "suffix", "message"),
    [
        (
            '{"data": [{"wav": "a0.wav", "labels": "/m/bird"}]}',
            ".json",
            r"m.json: entry 0: label '/m/bird' is not one of the 2 labels \(Dog, Cat, domestic\)",
        ),
        ('{"data": []}', ".json", "empty split"),
        ("path,label\n", ".csv", "empty split"),
        ("path,label\na0.wav\n", ".csv", r"m.csv:2: expected 'path,label"),
        (
            '{"data": [{"wav": "a0.wav", "labels": "/m/dog,/m/cat"}]}',
            ".json",
            "2 labels on one clip in a single-label task",
        ),
    ],
)
def test_bad_manifests_give_one_line_naming_the_place(clips: Path, content: str, suffix: str, message: str) -> None:
    path = clips / f"m{suffix}"
    path.write_text(content)
    with pytest.raises(InputError, match=message) as e:
        read_split(path, read_label_csv(clips / "labels.csv"))
    assert "\n" not in str(e.value)


def test_valid_labels_must_be_training_labels(clips: Path) -> None:
    (clips / "t.csv").write_text("a0.wav,dog\n")
    (clips / "v.csv").write_text("a1.wav,dog\na2.wav,wolf\n")
    train = read_split(clips / "t.csv")
    with pytest.raises(InputError, match=r"v.csv:2: label 'wolf' is not one of the 1 labels \(dog\)"):
        read_split(clips / "v.csv", train.labels)


def test_json_needs_a_label_csv(clips: Path) -> None:
    (clips / "m.json").write_text('{"data": [{"wav": "a0.wav", "labels": "/m/dog"}]}')
    with pytest.raises(InputError, match="label CSV"):
        read_split(clips / "m.json")


def test_missing_and_unreadable_files_are_all_reported_or_skipped(clips: Path) -> None:
    (clips / "broken.wav").write_bytes(b"RIFF not really")
    (clips / "m.csv").write_text("a0.wav,dog\nnope1.wav,dog\nbroken.wav,cat\nnope2.wav,cat\na1.wav,cat\n")
    split = read_split(clips / "m.csv")
    report = clips / "bad.txt"
    with pytest.raises(InputError) as e:
        check_files(split, skip=False, report=report)
    line = str(e.value)
    assert "3 of 5 audio files are missing or unreadable" in line and "skip_bad_files" in line
    assert all(name in line for name in ("nope1.wav (no such file)", "nope2.wav", "broken.wav (unreadable"))
    assert len(report.read_text().splitlines()) == 3
    kept = check_files(split, skip=True)
    assert [e.path.name for e in kept.examples] == ["a0.wav", "a1.wav"]


def test_training_features_are_the_deployment_features_bit_for_bit(tmp_path: Path) -> None:
    """The dataset calls the front end exactly as ast_deploy.pipeline.Classifier does for the first window."""
    rng = np.random.default_rng(1)
    short, long = tone_clip(0, rng, seconds=0.3), tone_clip(1, rng, seconds=1.5)
    for i, x in enumerate((short, long)):
        sf.write(tmp_path / f"{i}.wav", x, SR, subtype="FLOAT")
    (tmp_path / "m.csv").write_text("0.wav,a\n1.wav,b\n")
    dataset = AudioDataset(read_split(tmp_path / "m.csv").examples, 2, FE)
    frontend = KaldiFbank(FE)
    for i, x in enumerate((short, long)):
        windows, lengths, _ = cut_windows(x, FE.window_samples, FE.window_samples)
        with torch.inference_mode():
            deployed = frontend(torch.from_numpy(windows[:1]), torch.from_numpy(lengths[:1]))[0]
        assert torch.equal(dataset[i][0], deployed)
        assert dataset[i][0].shape == (FE.target_length, FE.num_mel_bins)


def _dataset(tmp_path: Path, augment: AugmentConfig) -> AudioDataset:
    manifest = write_tone_set(tmp_path, 4, num_classes=3)
    return AudioDataset(read_split(manifest).examples, 3, FE, augment, seed=7)


def test_augmentation_depends_only_on_seed_epoch_position(tmp_path: Path) -> None:
    ds = _dataset(tmp_path, AugmentConfig(freqm=24, timem=20, mixup=0.5, noise=True))
    a, b = ds[(3, 2, 5)], ds[(3, 2, 5)]
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], ds[(3, 3, 5)][0])  # another epoch: other draws
    plain = ds[3]  # evaluation: no augmentation
    assert not torch.equal(plain[0], a[0])
    # Batches are the same whatever the number of workers.
    sampler = EpochSampler(len(ds), 4, seed=1)
    batches = []
    for workers in (0, 2):
        loader = make_loader(ds, sampler, 4, workers)
        batches.append([x for x, _ in loader])
    assert all(torch.equal(x, y) for x, y in zip(*batches, strict=True))


def test_mixup_mixes_waveforms_and_labels(tmp_path: Path) -> None:
    ds = _dataset(tmp_path, AugmentConfig(mixup=1.0))
    mixed = [ds[(i, 1, i)][1] for i in range(len(ds))]
    assert all(t.sum().item() == pytest.approx(1.0) for t in mixed)
    two_labels = [t for t in mixed if (t > 0).sum() == 2]
    assert two_labels and all(0.15 < t.max() < 0.85 for t in two_labels)  # lambda ~ Beta(10, 10)
    a, b = np.ones(10, np.float32), np.arange(4, dtype=np.float32)
    m = mix_waveforms(a, b, 0.5)
    assert m.shape == (10,) and abs(m.mean()) < 1e-6


def test_spec_augment_fills_with_a_normalised_zero() -> None:
    rng = np.random.default_rng(0)
    fbank = torch.zeros(100, 128) + 3.0
    fill = 6.0 / 10.0  # -mean / (2 std) for mean -6, std 5
    out = spec_augment(fbank.clone(), 48, 48, rng, fill)
    masked = out == fill
    assert masked.any()
    rows, cols = masked.all(dim=1), masked.all(dim=0)
    assert rows.sum() < 48 and cols.sum() < 48


def test_balanced_weights_are_sum_of_inverse_label_counts() -> None:
    w = balanced_weights([(0,), (0,), (0, 1), (2,)], 3)
    np.testing.assert_allclose(w, [1 / 3, 1 / 3, 1 / 3 + 1, 1])


@pytest.mark.parametrize("weights", [None, np.linspace(1, 5, 37)])
def test_sampler_splits_the_same_global_batches_across_ranks(weights) -> None:
    one = list(EpochSampler(37, 8, seed=3, weights=weights))
    assert len(one) == 32  # whole global batches only
    shards = [list(EpochSampler(37, 8, seed=3, weights=weights, rank=r, world_size=2)) for r in range(2)]
    for step in range(4):
        union = sorted(shards[0][step * 4 : step * 4 + 4] + shards[1][step * 4 : step * 4 + 4], key=lambda k: k[2])
        assert union == one[step * 8 : step * 8 + 8]
    s = EpochSampler(37, 8, seed=3, weights=weights)
    s.set_epoch(2)
    assert [k[0] for k in s] != [k[0] for k in one]


def test_shard_sampler_covers_everything_once_in_order() -> None:
    shards = [list(ShardSampler(10, r, 3)) for r in range(3)]
    assert [len(s) for s in shards] == [4, 4, 4]
    assert [i for shard in shards for i in shard][:10] == list(range(10))


def test_too_few_clips_for_one_batch() -> None:
    with pytest.raises(InputError, match="fewer than one batch"):
        EpochSampler(5, 8)


def test_label_csv_rows_are_written_by_csv_module(tmp_path: Path) -> None:
    path = tmp_path / "l.csv"
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([("index", "mid", "display_name"), (0, "/m/a", "A, with comma")])
    assert read_label_csv(path).names == ["A, with comma"]
