"""Per-class thresholds: the selection rules, the CSV and report, artifact directories, and a check
that thresholds chosen on a validation split raise event-based F1 on a test split."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO_ROOT, TINY_CASE, TINY_PTH, assert_input_error, authors_flags, authors_options, run_cli

from ast_deploy import InputError
from ast_deploy import thresholds as th
from ast_deploy.events import EventConfig, read_thresholds
from ast_deploy.pipeline import Prediction
from ast_deploy.sed import EvalParams, read_durations, read_reference, sed_eval_metrics
from ast_deploy.windows import window_starts

RATE = 16000


# --- the rules, against brute force ---------------------------------------------------------------


def brute_force(scores: np.ndarray, targets: np.ndarray, t: float) -> tuple[int, int, int]:
    decided = scores >= t
    return int((decided & targets).sum()), int((decided & ~targets).sum()), int((~decided & targets).sum())


def test_counting_curves_count_each_decision() -> None:
    rng = np.random.default_rng(1)
    scores = rng.random((200, 3))
    targets = rng.random((200, 3)) < np.array([0.1, 0.5, 0.02])
    grid = np.array([0.0, 0.1, 0.33, 0.5, 0.9, 1.0])
    for c, curve in enumerate(th.counting_curves(scores, targets, grid)):
        for k, t in enumerate(grid):
            assert (curve.tp[k], curve.fp[k], curve.fn[k]) == brute_force(scores[:, c], targets[:, c], t)
        assert curve.support == targets[:, c].sum()


def _curve(tp, fp, fn) -> th.Curve:
    n = len(tp)
    return th.Curve(np.linspace(0.1, 0.9, n), np.array(tp, float), np.array(fp, float), np.array(fn, float))


def test_max_f1_takes_the_middle_of_a_plateau() -> None:
    # F1 at each candidate: 0.5, 0.8, 0.8, 0.8, 0.4
    curve = _curve([5, 8, 8, 8, 2], [10, 4, 4, 4, 0], [0, 0, 0, 0, 6])
    assert curve.f1 == pytest.approx([10 / 20, 16 / 20, 16 / 20, 16 / 20, 4 / 10])
    assert th.pick(curve, th.Rule()) == (2, True)


def test_target_precision_and_recall() -> None:
    # precision: 0.5, 0.6, 0.75, 0.8, 1.0 ; recall: 1.0, 0.9, 0.6, 0.4, 0.1
    curve = _curve([10, 9, 6, 4, 1], [10, 6, 2, 1, 0], [0, 1, 4, 6, 9])
    assert th.pick(curve, th.Rule("target-precision", 0.7)) == (2, True)  # most recall with P >= 0.7
    assert th.pick(curve, th.Rule("target-precision", 0.8)) == (3, True)
    assert th.pick(curve, th.Rule("target-recall", 0.9)) == (1, True)  # most precision with R >= 0.9
    assert th.pick(curve, th.Rule("target-recall", 0.95)) == (0, True)
    never = _curve([1, 1, 0], [9, 9, 0], [5, 5, 6])  # precision never reaches 0.9
    assert th.pick(never, th.Rule("target-precision", 0.9)) == (0, False)
    assert th.pick(_curve([1, 0], [0, 0], [9, 10]), th.Rule("target-recall", 0.5)) == (0, False)


def test_rule_options_are_checked() -> None:
    assert th.Rule.from_options() == th.Rule("max-f1")
    assert th.Rule.from_options(target_recall=0.8) == th.Rule("target-recall", 0.8)
    with pytest.raises(InputError, match="not both"):
        th.Rule.from_options(0.5, 0.5)
    with pytest.raises(InputError, match=r"in \(0, 1\]"):
        th.Rule.from_options(target_precision=1.5)
    with pytest.raises(InputError, match="'global' or a threshold"):
        th.parse_fallback("median")


def test_classes_with_few_positives_fall_back_to_the_pooled_best() -> None:
    grid = np.linspace(0.1, 0.9, 5)
    a = th.Curve(grid, np.array([9, 9, 8, 5, 1.0]), np.array([30, 9, 1, 0, 0.0]), np.array([1, 1, 2, 5, 9.0]))
    b = th.Curve(grid, np.array([2, 2, 2, 1, 0.0]), np.array([9, 5, 1, 0, 0.0]), np.array([0, 0, 0, 1, 2.0]))
    sel = th.select([a, b], ["a", "b"], th.Rule(), min_support=5)
    whole = th.pooled([a, b])
    assert sel.global_threshold["threshold"] == grid[np.argmax(whole.f1)]
    assert sel.classes[0]["source"] == "chosen" and sel.classes[0]["threshold"] == grid[int(np.argmax(a.f1))]
    assert sel.classes[1]["source"] == "fallback" and sel.classes[1]["threshold"] == sel.global_threshold["threshold"]
    fixed = th.select([a, b], ["a", "b"], th.Rule(), min_support=5, fallback="0.5")
    assert fixed.thresholds[1] == 0.5 and "fixed value 0.5" in fixed.fallback


# --- the CSV, the report, artifact directories ----------------------------------------------------


def test_csv_reads_back_through_the_events_reader(tmp_path) -> None:
    labels = ["Speech", "Male speech, man speaking", "label", "#hash", "7"]
    grid = np.array([0.2, 0.4])
    curves = [th.Curve(grid, np.array([5.0, 5]), np.array([1.0, 0]), np.array([0.0, 0])) for _ in labels]
    sel = th.select(curves, labels, th.Rule(), min_support=1)
    sel.thresholds[:] = [0.1, 0.25, 0.5, 0.75, 0.9]
    csv_path, report_path = th.write_outputs(tmp_path / "t.csv", sel, model="m", objective="event")
    assert report_path == tmp_path / "t.json"
    assert read_thresholds(csv_path, labels) == {i: (t, t) for i, t in enumerate([0.1, 0.25, 0.5, 0.75, 0.9])}
    doc = json.loads(report_path.read_text())
    assert doc["rule"]["kind"] == "max-f1" and doc["objective"] == "event"
    assert [c["label"] for c in doc["classes"]] == labels
    assert {"support", "precision", "recall", "f1", "threshold", "source"} <= set(doc["classes"][0])
    assert not list(tmp_path.glob(".*tmp"))  # nothing half-written left behind
    sel.labels[4] = "3"  # "#hash" must be written as its index, 3, which now names another label
    with pytest.raises(InputError, match="cannot be written"):
        th.thresholds_csv(sel)


def _artifact_dir(path: Path, labels: list[str]) -> Path:
    """A manifest without artifacts (tests/manifest_v1's, relabelled): enough for the thresholds entry."""
    path.mkdir()
    manifest = json.loads((REPO_ROOT / "tests" / "manifest_v1" / "manifest.json").read_text())
    manifest.update(model={**manifest["model"], "num_labels": len(labels)}, labels=labels, artifacts=[])
    (path / "manifest.json").write_text(json.dumps(manifest))
    return path


def test_thresholds_travel_with_an_artifact_directory(tmp_path) -> None:
    labels = ["a", "b"]
    art = _artifact_dir(tmp_path / "art", labels)
    assert th.artifact_thresholds(art) is None
    assert th.default_event_thresholds(art, None, labels) == {}
    src = tmp_path / "mine.csv"
    src.write_text("label,on,off\na,0.7,0.6\nb,0.2,0.2\n")
    stored = th.store_in_artifact(art, src)
    manifest = json.loads((art / "manifest.json").read_text())
    (entry,) = manifest["thresholds"]["files"]
    assert entry["file"] == "thresholds.csv" and entry["bytes"] == src.stat().st_size
    assert th.artifact_thresholds(art) == stored
    assert th.default_event_thresholds(art, None, labels) == {0: (0.7, 0.6), 1: (0.2, 0.2)}
    other = tmp_path / "other.csv"
    other.write_text("b,0.9\n")
    assert th.default_event_thresholds(art, other, labels) == {1: (0.9, 0.9)}  # --thresholds wins
    stored.write_text("label,on,off\na,0.1,0.1\nb,0.2,0.2\n")
    with pytest.raises(InputError, match="does not match the manifest"):
        th.artifact_thresholds(art)
    bad = tmp_path / "bad.csv"
    bad.write_text("c,0.5\n")
    with pytest.raises(InputError, match="unknown label 'c'"):
        th.store_in_artifact(art, bad)


def test_thresholds_are_not_stored_beside_a_manifest_that_breaks_the_schema(tmp_path) -> None:
    labels = ["a", "b"]
    art = _artifact_dir(tmp_path / "art", labels)
    manifest = json.loads((art / "manifest.json").read_text())
    manifest["input"]["batch"]["max"] = "many"  # readable (read_manifest does not look), not valid
    (art / "manifest.json").write_text(json.dumps(manifest))
    src = tmp_path / "mine.csv"
    src.write_text("a,0.7\n")
    with pytest.raises(
        InputError, match=r"manifest.json: manifest does not match manifest.schema.json: input/batch/max"
    ):
        th.store_in_artifact(art, src)
    assert not (art / th.THRESHOLDS_FILE).exists()


# --- thresholds raise event F1 on generated soundscapes --------------------------------------------


def simulated_predictions(data: Path, split: str, bias: dict[str, float], seed: int) -> tuple[list, dict]:
    """A tagger of known, class-dependent miscalibration over the generated soundscapes: a window's
    score for a class rises with how much of an event of that class it holds, shifted by a per-class
    bias (one class over-confident, one under-confident), plus noise."""
    ref = read_reference(data / f"{split}.tsv")
    durations = read_durations(data / f"{split}_durations.tsv")
    labels = list(bias)
    rng = np.random.default_rng(seed)
    window, hop = RATE, RATE // 10
    predictions, reference = [], {}
    for name, events in ref.items():
        n = round(durations[name] * RATE)
        starts = window_starts(n, window, hop)
        scores = np.zeros((len(starts), len(labels)), np.float32)
        for j, label in enumerate(labels):
            cover = np.zeros(len(starts))
            for onset, offset, ev_label in events:
                if ev_label == label:
                    s = np.asarray(starts) / RATE
                    inside = np.clip(np.minimum(s + 1.0, offset) - np.maximum(s, onset), 0, None)
                    cover = np.maximum(cover, inside / (offset - onset))
            logit = 8.0 * (cover - 0.8) + bias[label] + rng.normal(0, 0.5, len(starts))
            scores[:, j] = 1 / (1 + np.exp(-logit))
        source = str(data / name)
        predictions.append(Prediction(source, RATE, n, starts, window, labels, scores))
        reference[source] = events
    return predictions, reference


def event_f1(predictions, reference, config: EventConfig) -> tuple[float, float]:
    """(micro, macro) event-based F1 by sed_eval of the events detected with ``config``."""
    from ast_deploy.events import prediction_events

    est = {p.source: [(e.onset, e.offset, e.label) for e in prediction_events(p, config, 0.1)] for p in predictions}
    ev, _ = sed_eval_metrics(
        reference, est, {p.source: p.duration for p in predictions}, predictions[0].labels, EvalParams()
    )
    r = ev.results()
    # Macro: a class without detections has F1 0 (sed_eval says NaN and leaves it out of its class-wise
    # average, which would reward a threshold that silences the hard classes).
    macro = np.mean([np.nan_to_num(r["class_wise"][c]["f_measure"]["f_measure"]) for c in predictions[0].labels])
    return r["overall"]["f_measure"]["f_measure"], float(macro)


@pytest.fixture(scope="module")
def sounds(tmp_path_factory) -> Path:
    from ast_deploy_training.soundscapes import generate

    out = tmp_path_factory.mktemp("scapes") / "sounds"
    generate(out, {"valid": 12, "test": 12}, duration=10.0, seed=3, keywords=(), progress=False)
    return out


def test_per_class_thresholds_beat_the_best_global_threshold(sounds) -> None:
    bias = {"beep": 3.0, "chirp": 0.0, "knock": -3.0}
    valid, valid_ref = simulated_predictions(sounds, "valid", bias, seed=10)
    test, test_ref = simulated_predictions(sounds, "test", bias, seed=11)
    grid = th.candidate_thresholds(np.concatenate([p.window_scores for p in valid]), 40)
    curves = th.event_curves(valid, valid_ref, grid, 0.1)
    assert [c.support for c in curves] == [
        sum(e[2] == label for evs in valid_ref.values() for e in evs) for label in bias
    ]
    sel = th.select(curves, list(bias), th.Rule(), min_support=5)
    assert all(c["source"] == "chosen" for c in sel.classes)
    # The over-confident class gets the higher threshold.
    assert sel.thresholds[0] > sel.thresholds[1] > sel.thresholds[2]
    per_class = event_f1(test, test_ref, EventConfig(thresholds=sel.as_config_thresholds()))
    # The best single threshold *on the test split itself* (an oracle), over a fine grid.
    sweep = [event_f1(test, test_ref, EventConfig(threshold=t)) for t in np.linspace(0.02, 0.98, 49)]
    best_micro = max(s[0] for s in sweep)
    best_macro = max(s[1] for s in sweep)
    assert per_class[0] > best_micro + 0.05, (per_class, best_micro)
    assert per_class[1] > best_macro + 0.05, (per_class, best_macro)
    # And the thresholds' own F1 on valid is what sed_eval gives for them.
    on_valid = event_f1(valid, valid_ref, EventConfig(thresholds=sel.as_config_thresholds()))
    assert on_valid[1] == pytest.approx(np.mean([c["f1"] for c in sel.classes]), abs=1e-9)


# --- the CLI ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_reference(sounds, tmp_path_factory) -> Path:
    """The generated sounds relabelled with the tiny model's first three labels (its labels are
    class_0...class_9), with the audio beside the TSV."""
    ref = read_reference(sounds / "valid.tsv")
    names = {"beep": "class_0", "chirp": "class_1", "knock": "class_2"}
    out = tmp_path_factory.mktemp("tiny-ref")
    lines = ["filename\tonset\toffset\tevent_label"]
    for name, events in list(ref.items())[:4]:
        (out / Path(name).name).write_bytes((sounds / name).read_bytes())
        lines += [f"{Path(name).name}\t{on}\t{off}\t{names[label]}" for on, off, label in events]
    (out / "valid.tsv").write_text("\n".join(lines) + "\n")
    return out / "valid.tsv"


def test_cli_writes_thresholds_that_predict_accepts(tiny_reference, tmp_path) -> None:
    out = tmp_path / "t.csv"
    result = run_cli(
        "thresholds", TINY_PTH, *authors_flags(TINY_CASE), tiny_reference, "--out", out, "--hop", "0.25",
        "--candidates", "10", "--min-support", "3", "--no-progress",
    )  # fmt: skip
    assert result.code == 0, result.stderr
    assert "wrote" in result.stdout
    import ast_deploy

    labels = ast_deploy.load(TINY_PTH, options=authors_options(TINY_CASE)).labels
    assert sorted(read_thresholds(out, labels)) == list(range(10))
    report = json.loads(out.with_suffix(".json").read_text())
    ref = read_reference(tiny_reference)
    counts = {c["label"]: c["support"] for c in report["classes"]}
    for label in ("class_0", "class_1", "class_2"):
        assert counts[label] == sum(e[2] == label for evs in ref.values() for e in evs)
    assert counts["class_5"] == 0 and report["classes"][5]["source"] == "fallback"
    predicted = run_cli(
        "predict", TINY_PTH, *authors_flags(TINY_CASE), tiny_reference.parent / Path(next(iter(ref))).name,
        "--hop", "0.25", "--thresholds", out, "--json",
    )  # fmt: skip
    assert predicted.code == 0, predicted.stderr


def test_cli_bad_input_is_one_line(tiny_reference, tmp_path) -> None:
    bad = tmp_path / "bad.tsv"
    bad.write_text("filename\tonset\toffset\tevent_label\na.wav\t1.0\tx\tclass_0\n")
    result = run_cli("thresholds", TINY_PTH, *authors_flags(TINY_CASE), bad, "--out", tmp_path / "t.csv")
    assert_input_error(result, f"{bad}:2", "must be numbers")
    result = run_cli(
        "thresholds", TINY_PTH, tiny_reference, "--out", tmp_path / "t.csv", "--target-precision", "0.9",
        "--target-recall", "0.9",
    )  # fmt: skip
    assert_input_error(result, "not both")
    spaces = tmp_path / "spaces.tsv"
    spaces.write_text("a.wav 1.0 2.0 class_0\n")
    assert_input_error(
        run_cli("thresholds", TINY_PTH, spaces, "--out", tmp_path / "t.csv"), f"{spaces}:1", "separated by tabs"
    )
    result = run_cli("thresholds", TINY_PTH, tiny_reference, "--out", tmp_path / "t.csv", "--store")
    assert_input_error(result, "--store needs an artifact directory")
    assert not (tmp_path / "t.csv").exists()


# --- an artifact directory's thresholds are predict's and stream's default --------------------------


@pytest.fixture(scope="module")
def tone_artifacts(tmp_path_factory) -> tuple[Path, Path, Path]:
    """The streaming tests' micro model (label "tone" fires on a 1 kHz tone) exported to TorchScript,
    a 4-s file with a tone from 1 s to 2 s, and its strong labels."""
    from conftest import write_wav
    from test_streaming import tones, write_micro_model

    root = tmp_path_factory.mktemp("tone")
    model = write_micro_model(root / "model")
    art = root / "art"
    result = run_cli("export", model, "--out", art, "--to", "torchscript", "--input", "waveform", "--no-verify")
    assert result.code == 0, result.stderr
    audio = write_wav(root / "tone.wav", tones([(1.0, 2.0)], 4.0))
    ref = root / "ref.tsv"
    ref.write_text("filename\tonset\toffset\tevent_label\ntone.wav\t1.0\t2.0\ttone\n")
    return art, audio, ref


def _tone_events(result) -> list[dict]:
    assert result.code == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    return [e for e in lines if e.get("label") == "tone" and "onset" in e]


def test_stored_thresholds_are_used_by_predict_and_stream(tone_artifacts, tmp_path) -> None:
    art, audio, ref = tone_artifacts
    predict = ("predict", art, audio, "--hop", "0.25", "--events")
    stream = ("stream", art, audio, "--hop", "0.25", "--events")
    (before,) = _tone_events(run_cli(*predict))
    assert before["onset"] == pytest.approx(1.0, abs=0.25) and before["offset"] == pytest.approx(2.0, abs=0.25)
    assert len(_tone_events(run_cli(*stream))) == 1

    # Chosen on the labelled tone and stored: listed and hashed in the manifest.
    result = run_cli(
        "thresholds", art, ref, "--out", tmp_path / "t.csv", "--hop", "0.25", "--min-support", "1", "--store"
    )
    assert result.code == 0, result.stderr
    manifest = json.loads((art / "manifest.json").read_text())
    assert [f["file"] for f in manifest["thresholds"]["files"]] == ["thresholds.csv", "thresholds.json"]
    assert th.artifact_thresholds(art).read_text() == (tmp_path / "t.csv").read_text()
    (chosen,) = _tone_events(run_cli(*predict))
    assert chosen["onset"] == pytest.approx(1.0, abs=0.25)

    # A stored file that silences "tone": predict and stream follow it without being told.
    silent = tmp_path / "silent.csv"
    silent.write_text("label,on,off\ntone,1.01,1.01\n")
    th.store_in_artifact(art, silent)
    assert _tone_events(run_cli(*predict)) == []
    assert _tone_events(run_cli(*stream)) == []
    loud = tmp_path / "loud.csv"
    loud.write_text("tone,0.5\n")
    assert len(_tone_events(run_cli(*predict, "--thresholds", loud))) == 1  # --thresholds still wins

    # A stored file changed after the fact is refused in one line.
    (art / "thresholds.csv").write_text("tone,0.2,0.2\n")
    assert_input_error(run_cli(*predict), "thresholds.csv", "does not match the manifest")
    th.store_in_artifact(art, loud)


def test_clip_labels_choose_thresholds_on_clip_scores(tone_artifacts, tmp_path) -> None:
    from conftest import write_wav

    art, audio, _ = tone_artifacts
    write_wav(tmp_path / "quiet.wav", np.zeros(2 * RATE, np.float32))
    manifest = tmp_path / "clips.csv"
    manifest.write_text(f"path,label\n{audio},tone\nquiet.wav,b\n")
    out = tmp_path / "clips_thresholds.csv"
    result = run_cli("thresholds", art, manifest, "--out", out, "--min-support", "1", "--json")
    assert result.code == 0, result.stderr
    doc = result.json()
    assert doc["objective"] == "clip" and doc["files"] == 2
    tone = doc["classes"][0]
    assert tone["label"] == "tone" and tone["support"] == 1 and tone["f1"] == 1.0 and tone["source"] == "chosen"
    assert doc["classes"][2]["support"] == 0 and doc["classes"][2]["source"] == "fallback"
    assert read_thresholds(out, ["tone", "b", "c"])[0][0] == tone["threshold"]
    wrong = run_cli("thresholds", art, manifest, "--out", out, "--objective", "event")
    assert_input_error(wrong, "--objective event needs a DCASE TSV")
