"""Data preparation on miniature trees in the official layouts, and the quickstart generator."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ast_deploy.errors import InputError
from ast_deploy.labels import builtin_label_set, read_label_csv
from ast_deploy.manifests import read_split
from ast_deploy_training.prepare import prepare_audioset, prepare_esc50, prepare_speechcommands


def wav(path: Path, rate: int = 16000, seconds: float = 0.2, value: float = 0.1) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(rate * seconds)) / rate
    sf.write(path, (value * np.sin(2 * np.pi * 440 * t)).astype(np.float32), rate, subtype="PCM_16")
    return path


def manifest(path: Path) -> list[dict]:
    return json.loads(path.read_text())["data"]


def test_esc50(tmp_path: Path) -> None:
    root = tmp_path / "ESC-50-master"
    rows = ["filename,fold,target,category,esc10,src_file,take"]
    for fold in range(1, 6):
        for target, category in ((0, "dog"), (1, "rooster")):
            name = f"{fold}-1000{target}-A-{target}.wav"
            wav(root / "audio" / name, rate=44100, seconds=0.5)
            rows.append(f"{name},{fold},{target},{category},True,1000{target},A")
    (root / "meta").mkdir()
    (root / "meta" / "esc50.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "esc50"
    result = prepare_esc50(tmp_path, out, workers=1)  # the folder above ESC-50-master works too
    assert result["folds"] == {str(k): {"train": 8, "eval": 2} for k in range(1, 6)}
    labels = read_label_csv(out / "esc_class_labels_indices.csv")
    assert labels.mids == ["/m/07rwj00", "/m/07rwj01"] and labels.names == ["dog", "rooster"]
    assert labels.mids == builtin_label_set("esc50").mids[:2]  # the authors' mids
    evaluation = manifest(out / "esc_eval_data_3.json")
    assert sorted(Path(e["wav"]).name for e in evaluation) == ["3-10000-A-0.wav", "3-10001-A-1.wav"]
    assert all(not Path(e["wav"]).name.startswith("3-") for e in manifest(out / "esc_train_data_3.json"))
    audio, rate = sf.read(evaluation[0]["wav"])
    assert rate == 16000 and len(audio) == 8000
    split = read_split(out / "esc_train_data_1.json", labels)
    assert len(split) == 8 and {e.labels for e in split.examples} == {(0,), (1,)}


def test_esc50_layout_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"esc50\.csv: not found"):
        prepare_esc50(tmp_path, tmp_path / "out")


def test_speechcommands(tmp_path: Path) -> None:
    root = tmp_path / "speech_commands_v0.02"
    for word in ("yes", "no", "backward"):
        for speaker in ("aa11", "bb22", "cc33"):
            wav(root / word / f"{speaker}_nohash_0.wav")
    wav(root / "_background_noise_" / "white_noise.wav")
    (root / "validation_list.txt").write_text("yes/bb22_nohash_0.wav\nno/bb22_nohash_0.wav\n")
    (root / "testing_list.txt").write_text("yes/cc33_nohash_0.wav\nbackward/cc33_nohash_0.wav\n")
    out = tmp_path / "sc"
    result = prepare_speechcommands(root, out)
    assert result["clips"] == {"train": 5, "valid": 2, "eval": 2}
    labels = read_label_csv(out / "speechcommands_class_labels_indices.csv")
    assert len(labels) == 35
    valid = manifest(out / "speechcommand_valid_data.json")
    yes_mid = labels.mids[labels.names.index("yes")]
    assert {(Path(e["wav"]).parent.name, e["labels"]) for e in valid} >= {("yes", yes_mid)}
    assert all("_background_noise_" not in e["wav"] for e in manifest(out / "speechcommand_train_data.json"))
    assert len(read_split(out / "speechcommand_eval_data.json", labels)) == 2

    (root / "validation_list.txt").write_text("yes/zz99_nohash_0.wav\n")
    with pytest.raises(InputError, match=r"missing, e\.g\. yes/zz99_nohash_0\.wav"):
        prepare_speechcommands(root, out)


def test_audioset(tmp_path: Path) -> None:
    audio = tmp_path / "audio"
    wav(audio / "bal" / "--PJHxphWEs_30.000.wav")  # YTID_start
    wav(audio / "bal" / "Y-0Gj8-vB1q4.flac")  # "Y" prefix, as some downloaders write
    wav(audio / "unbal" / "abcdefghijk_10000_20000.wav")
    wav(audio / "eval" / "zyxwvutsrqp.wav")
    header = "# Segments csv created Sun Mar  5 10:54:31 2017\n# num_ytids=3\n# YTID, start_seconds, end_seconds, positive_labels\n"
    (tmp_path / "balanced_train_segments.csv").write_text(
        header + '--PJHxphWEs, 30.000, 40.000, "/m/09x0r,/t/dd00088"\n'
        '-0Gj8-vB1q4, 30.000, 40.000, "/m/04rlf"\nmissingone1, 0.000, 10.000, "/m/09x0r"\n'
    )
    (tmp_path / "unbalanced_train_segments.csv").write_text(header + 'abcdefghijk, 10.000, 20.000, "/m/0jbk"\n')
    (tmp_path / "eval_segments.csv").write_text(header + 'zyxwvutsrqp, 0.000, 10.000, "/m/09x0r,/m/04rlf"\n')
    out = tmp_path / "as"
    csvs = [tmp_path / f"{n}_segments.csv" for n in ("balanced_train", "unbalanced_train", "eval")]
    result = prepare_audioset(audio, csvs, out)
    assert result["splits"]["balanced_train"] == {"segments": 3, "found": 2, "missing": 1}
    assert result["splits"]["full_train"] == {"found": 3}
    assert (out / "missing_balanced_train.txt").read_text() == "missingone1\n"
    entries = manifest(out / "audioset_balanced_train.json")
    assert entries[0]["labels"] == "/m/09x0r,/t/dd00088" and entries[1]["wav"].endswith("Y-0Gj8-vB1q4.flac")
    labels = read_label_csv(out / "audioset_class_labels_indices.csv")
    split = read_split(out / "audioset_eval.json", labels, multi_label=True)
    assert len(labels) == 527 and split.examples[0].labels == (0, labels.mids.index("/m/04rlf"))

    (tmp_path / "eval_segments.csv").write_text(header + 'zyxwvutsrqp, 0.000, 10.000, "/m/notalabel"\n')
    with pytest.raises(InputError, match=r"eval_segments.csv:4: label '/m/notalabel' is not in the AudioSet label CSV"):
        prepare_audioset(audio, [tmp_path / "eval_segments.csv"], out)


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed (make system-deps)")
def test_quickstart_data_holds_out_voices(tmp_path: Path) -> None:
    from ast_deploy_training.quickstart_data import KEYWORDS, generate, is_generated

    out = tmp_path / "qs"
    result = generate(out, clips_per_word=4, seed=1, workers=2, progress=False)
    assert result["clips"] == {"train": 40, "valid": 20, "test": 20}
    meta = json.loads((out / "meta.json").read_text())
    variants = {
        split: {u["voice"].split("+")[1] for u in meta["utterances"] if u["split"] == split}
        for split in ("train", "valid", "test")
    }
    assert not variants["test"] & variants["train"] and not variants["valid"] & variants["train"]
    assert set(meta["voices"]["test"]) >= variants["test"]
    split = read_split(out / "test.csv", read_label_csv(out / "labels.csv"))
    assert {e.labels[0] for e in split.examples} == set(range(len(KEYWORDS)))
    audio, rate = sf.read(split.examples[0].path)
    assert rate == 16000 and len(audio) == 16000 and 0.01 < np.abs(audio).max() <= 1.0
    assert is_generated(out, 4, 1) and not is_generated(out, 4, 2)
    # Deterministic: the same seed gives the same audio.
    again = generate(tmp_path / "again", clips_per_word=4, seed=1, workers=1, progress=False)
    assert again["clips"] == result["clips"]
    first = sf.read(out / "audio/train/yes/00000.wav")[0]
    np.testing.assert_array_equal(first, sf.read(tmp_path / "again/audio/train/yes/00000.wav")[0])
