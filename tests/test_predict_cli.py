"""``ast-deploy predict|info|convert`` against the Python API: top labels, windowing, aggregation, --hop;
audio arguments (files, folders, patterns, several values after one flag) as every verb takes them."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import soxr
from conftest import (
    SPEECH_WAV,
    TINY_CASE,
    TINY_PTH,
    assert_input_error,
    authors_flags,
    authors_options,
    run_cli,
    run_cli_subprocess,
    write_wav,
)

import ast_deploy
from ast_deploy import load_audio

pytestmark = pytest.mark.usefixtures("one_torch_thread")

RATE = 16000
WINDOW = 99 * 160 + 400  # the tiny model's 100 frames: 16240 samples (1.015 s)
SPEECH_SAMPLES = 66399  # 4.15 s: several windows


def expected_starts(num_samples: int, hop: int) -> list[int]:
    """Windows every ``hop`` samples while they fit, then one aligned to the end if audio is left over."""
    starts, start = [], 0
    while start + WINDOW <= num_samples:
        starts.append(start)
        start += hop
    if not starts or starts[-1] + WINDOW < num_samples:
        starts.append(max(0, num_samples - WINDOW))
    return starts


def timeline_scores(windows: list[dict], num_labels: int = 10) -> np.ndarray:
    """(windows, labels) scores from the JSON timeline of ``--json -k <all labels>``; each window ranked."""
    scores = np.full((len(windows), num_labels), np.nan)
    for i, window in enumerate(windows):
        ranked = [t["score"] for t in window["top"]]
        assert ranked == sorted(ranked, reverse=True)
        for t in window["top"]:
            scores[i, t["index"]] = t["score"]
    assert not np.isnan(scores).any(), "the timeline does not list every label"
    return scores


@pytest.fixture(scope="module")
def stereo_44k(tmp_path_factory, speech):
    """The sentence at 44.1 kHz in stereo, the right channel slightly quieter plus a little noise."""
    x = soxr.resample(speech, RATE, 44100)
    right = 0.98 * x + 1e-3 * np.random.default_rng(0).standard_normal(x.size)
    return write_wav(tmp_path_factory.mktemp("audio") / "speech_44k_stereo.wav", np.stack([x, right], axis=1), 44100)


@pytest.fixture(scope="module")
def classifier(tiny_model_dir):
    return ast_deploy.load(tiny_model_dir)


@pytest.fixture(scope="module", params=["pth+flags", "ast-deploy-dir"])
def model(request, tiny_model_dir, classifier):
    """(CLI arguments, Python-API classifier) for the same model given as the authors' .pth or our directory."""
    if request.param == "pth+flags":
        return [TINY_PTH, *authors_flags(TINY_CASE)], ast_deploy.load(TINY_PTH, options=authors_options(TINY_CASE))
    return [tiny_model_dir], classifier


@pytest.fixture(scope="module", params=["speech_16k", "speech_44k_stereo"])
def audio(request, stereo_44k):
    return SPEECH_WAV if request.param == "speech_16k" else stereo_44k


def test_json_top_labels_match_python_api(model, audio):
    args, clf = model
    result = run_cli("predict", *args, audio, "--json", "-k", "3")
    assert result.code == 0, result.stderr
    data = result.json()
    assert data["backend"] == "pytorch"
    (got,) = data["results"]
    expected = clf.predict([audio], top_k=3)[0]
    assert got["source"] == str(audio)
    assert got["duration"] == pytest.approx(expected.duration, abs=1e-9)
    assert [t["label"] for t in got["top"]] == [t["label"] for t in expected.top(3)]
    assert [t["score"] for t in got["top"]] == pytest.approx([t["score"] for t in expected.top(3)], abs=1e-6)


def test_table_top_labels_match_python_api(tiny_model_dir, classifier, audio):
    result = run_cli("predict", tiny_model_dir, audio, "-k", "4")
    assert result.code == 0, result.stderr
    rows = re.findall(r"│\s*(\d+)\s*│\s*(\S+)\s*│\s*([\d.]+)\s*│\s*([\d.]+)\s*│", result.stdout)
    expected = classifier.predict(audio)[0].top(4)
    assert rows == [(str(i), t["label"], f"{t['mean']:.4f}", f"{t['max']:.4f}") for i, t in enumerate(expected, 1)]
    assert "5 windows" in result.stdout


def test_a_long_file_path_is_printed_on_one_line(tiny_model_dir, audio, tmp_path):
    """Paths are headings, not table titles: rich wrapped titles to the table's width (CI's checkout
    path was long enough to cut ``5 windows`` in two), and a cut path cannot be copied or grepped."""
    deep = tmp_path.joinpath(*["a_directory_name_long_enough_to_wrap"] * 4)
    deep.mkdir(parents=True)
    copy = deep / audio.name
    copy.write_bytes(audio.read_bytes())
    result = run_cli("predict", tiny_model_dir, copy, "-k", "2")
    assert result.code == 0, result.stderr
    assert f"{copy}  (4.15 s, 5 windows)" in result.stdout.splitlines()
    info = run_cli("info", tiny_model_dir)
    assert str(tiny_model_dir) in info.stdout.splitlines()


def test_stereo_44k_is_mixed_down_and_resampled_to_the_same_timeline(classifier, stereo_44k, speech):
    x = load_audio(stereo_44k)
    assert x.size == speech.size
    assert np.sqrt(np.mean((x - speech) ** 2) / np.mean(speech**2)) < 0.05  # mean of 1.0x and 0.98x, resampled twice
    (mono,) = classifier.predict(SPEECH_WAV)
    (stereo,) = classifier.predict(stereo_44k)
    assert stereo.num_samples == mono.num_samples and stereo.starts == mono.starts


@pytest.mark.parametrize("hop", [None, 0.5, 0.25])
def test_long_audio_timeline_and_aggregation(classifier, tiny_model_dir, hop):
    """Per-window timeline in JSON (all 10 labels), and mean/max aggregation consistent with it."""
    args = ["--hop", hop] if hop else []
    result = run_cli("predict", tiny_model_dir, SPEECH_WAV, "--json", "-k", "10", *args)
    assert result.code == 0, result.stderr
    (got,) = result.json()["results"]

    starts = expected_starts(SPEECH_SAMPLES, round(hop * RATE) if hop else WINDOW)
    assert len(starts) == {None: 5, 0.5: 8, 0.25: 14}[hop]
    windows = got["windows"]
    assert [w["start"] for w in windows] == pytest.approx([s / RATE for s in starts])
    assert [w["end"] for w in windows] == pytest.approx([min(s + WINDOW, SPEECH_SAMPLES) / RATE for s in starts])

    timeline = timeline_scores(windows)
    expected = classifier.predict(SPEECH_WAV, hop_seconds=hop)[0].window_scores
    np.testing.assert_allclose(timeline, expected, rtol=0, atol=1e-6)

    top = got["top"]
    assert [t["mean"] for t in top] == pytest.approx([timeline[:, t["index"]].mean() for t in top], abs=1e-6)
    assert [t["max"] for t in top] == pytest.approx([timeline[:, t["index"]].max() for t in top], abs=1e-6)
    assert [t["score"] for t in top] == [t["mean"] for t in top] == sorted((t["mean"] for t in top), reverse=True)


def test_aggregate_max_ranks_by_the_loudest_window(tiny_model_dir):
    result = run_cli("predict", tiny_model_dir, SPEECH_WAV, "--json", "-k", "10", "--aggregate", "max")
    assert result.code == 0, result.stderr
    (got,) = result.json()["results"]
    assert got["aggregate"] == "max"
    top = got["top"]
    assert [t["score"] for t in top] == [t["max"] for t in top] == sorted((t["max"] for t in top), reverse=True)
    timeline = timeline_scores(got["windows"])
    assert [t["max"] for t in top] == pytest.approx([timeline[:, t["index"]].max() for t in top], abs=1e-7)


def test_each_window_is_scored_like_the_clip_cut_out(classifier, speech):
    """Windowing: a window's scores are those of its samples given alone (the last one ends at the end)."""
    (pred,) = classifier.predict((speech, RATE))
    assert pred.starts == expected_starts(speech.size, WINDOW)
    for start, scores in zip(pred.starts, pred.window_scores, strict=True):
        (alone,) = classifier.predict((speech[start : start + WINDOW], RATE))
        np.testing.assert_allclose(scores, alone.window_scores[0], rtol=0, atol=1e-5)


def test_short_clip_is_one_window_padded_in_the_feature_domain(classifier, speech):
    (pred,) = classifier.predict((speech[:8000], RATE))
    assert pred.starts == [0] and pred.duration == 0.5
    padded = np.zeros(WINDOW, np.float32)
    padded[:8000] = speech[:8000]
    (zeros,) = classifier.predict((padded, RATE))  # zeros counted as signal: different features
    assert not np.allclose(pred.window_scores, zeros.window_scores, atol=1e-4)
    assert pred.to_json()["windows"][0]["end"] == 0.5


def test_batch_size_does_not_change_scores(classifier):
    one = classifier.predict(SPEECH_WAV, batch_size=1)[0].window_scores
    many = classifier.predict(SPEECH_WAV, batch_size=3)[0].window_scores
    np.testing.assert_allclose(one, many, rtol=0, atol=1e-5)


def test_installed_script_matches_in_process(tiny_model_dir):
    """End to end through the installed ``ast-deploy`` console script."""
    args = ["predict", tiny_model_dir, SPEECH_WAV, "--json", "-k", "3", "--hop", "0.5"]
    process = run_cli_subprocess(*args)
    assert process.code == 0, process.stderr
    in_process = run_cli(*args).json()["results"][0]
    (got,) = process.json()["results"]
    assert [t["label"] for t in got["top"]] == [t["label"] for t in in_process["top"]]
    assert [w["start"] for w in got["windows"]] == [w["start"] for w in in_process["windows"]]
    assert [t["score"] for t in got["top"]] == pytest.approx([t["score"] for t in in_process["top"]], abs=1e-6)


def test_info_describes_both_formats(tiny_model_dir):
    ours = run_cli("info", tiny_model_dir, "--json")
    authors = run_cli("info", TINY_PTH, *authors_flags(TINY_CASE), "--json")
    assert ours.code == authors.code == 0
    a, b = ours.json(), authors.json()
    assert (a["format"], b["format"]) == ("ast-deploy", "authors")
    for key in ("grid", "num_patches", "target_length", "fstride", "tstride", "num_labels", "labels", "frontend"):
        assert a[key] == b[key], key
    assert a["grid"] == [12, 9] and a["num_patches"] == 108 and a["labels"][0] == "class_0"


def test_convert_writes_a_directory_that_predicts_the_same(tmp_path, classifier):
    dst = tmp_path / "converted"
    result = run_cli("convert", TINY_PTH, dst, *authors_flags(TINY_CASE))
    assert result.code == 0, result.stderr
    assert "authors -> ast-deploy" in result.stderr
    converted = ast_deploy.load(dst).predict(SPEECH_WAV)[0]
    np.testing.assert_array_equal(converted.window_scores, classifier.predict(SPEECH_WAV)[0].window_scores)


# --- audio arguments: files, folders, patterns; several values after one flag ---------------------


def test_folders_and_patterns_stand_for_their_audio_files(tiny_model_dir, tmp_path, monkeypatch, speech):
    """A folder is its audio files (recursively, in name order, hidden ones skipped), a quoted pattern
    what it matches; a file reached twice is predicted once, in the order first named."""
    clip = speech[: 2 * RATE]
    for name in ("clips/b.wav", "clips/a.wav", "clips/sub/c.flac", "clips/.hidden/h.wav", "one.wav"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        write_wav(tmp_path / name, clip)
    (tmp_path / "clips" / "notes.txt").write_text("not audio")
    monkeypatch.chdir(tmp_path)
    result = run_cli("predict", tiny_model_dir, "one.wav", "clips", "clips/**/*.flac", "clips/a.wav", "--json")
    assert result.code == 0, result.stderr
    sources = [r["source"] for r in result.json()["results"]]
    assert sources == ["one.wav", "clips/a.wav", "clips/b.wav", "clips/sub/c.flac"]
    assert len({str(r["top"]) for r in result.json()["results"]}) == 1  # the same clip everywhere


def command_params(*argv: str) -> dict:
    """The parameters ``ast-deploy ARGV`` would run its verb with (parsed, not run)."""
    import typer

    from ast_deploy.cli import app

    verb = typer.main.get_command(app).get_command(None, argv[0])
    return verb.make_context(argv[0], list(argv[1:])).params


def test_flags_that_take_audio_take_several_values():
    """``--audio a b`` is ``--audio a --audio b`` (the README's parity command), up to the next option."""
    one_flag = command_params("parity", "art", "--audio", "a.wav", "b.wav", "--n", "4")
    repeated = command_params("parity", "art", "--audio", "a.wav", "--audio", "b.wav", "--n", "4")
    assert one_flag["audio"] == repeated["audio"] == ["a.wav", "b.wav"] and one_flag["n"] == 4
    mixed = command_params("parity", "art", "--audio=a.wav", "b.wav", "--json", "--audio", "c.wav")
    assert mixed["audio"] == ["a.wav", "b.wav", "c.wav"] and mixed["as_json"]
    calibration = command_params("export", "model.pth", "--calibration", "clips/", "more.wav", "--out", "art")
    assert [str(p) for p in calibration["calibration"]] == ["clips", "more.wav"]


def test_stream_takes_a_folder_of_one_file_and_refuses_more(tiny_model_dir, tmp_path, speech):
    (tmp_path / "one").mkdir()
    write_wav(tmp_path / "one" / "a.wav", speech[:RATE])
    result = run_cli("stream", tiny_model_dir, tmp_path / "one")
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1])["windows"] == 1
    write_wav(tmp_path / "one" / "b.wav", speech[:RATE])
    assert_input_error(run_cli("stream", tiny_model_dir, tmp_path / "one"), "one: 2 audio files; stream plays one")
