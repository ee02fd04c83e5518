"""Streaming (issue 12) and long recordings (issue 13): one windowing rule, bounded memory, events.

The stream fed in chunks of random sizes must give the windows and scores of offline prediction of
the whole file (<= 1e-5, same backend); resampling chunk by chunk must equal one-shot resampling;
events on tones switched on and off must have onsets and offsets within one hop of the truth;
memory must not grow with the stream's length. docs/streaming.md is the specification.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
import torch
from conftest import (
    REPO_ROOT,
    SPEECH_WAV,
    TINY_CASE,
    TINY_PTH,
    assert_input_error,
    authors_options,
    cli_script,
    run_cli,
)

import ast_deploy
from ast_deploy import FrontEndConfig, InputError
from ast_deploy.audio import load_audio
from ast_deploy.bench.memory import Measured, run_measured
from ast_deploy.events import EventConfig, EventTracker, detect_events, read_thresholds
from ast_deploy.pipeline import Classifier
from ast_deploy.runtime.base import Backend, InputSpec
from ast_deploy.windows import window_starts

pytestmark = pytest.mark.usefixtures("one_torch_thread")

RATE = 16000
SCORE_ATOL = 1e-5  # same backend, possibly different batch composition (issue 12)
RESAMPLE_ATOL = 1e-6  # streaming vs one-shot soxr HQ; measured: bit-identical (docs/streaming.md, section 2)


# --- models --------------------------------------------------------------------------------------


def write_micro_model(out: Path) -> Path:
    """A 1-block, 32-wide AST on 16 frames (0.175 s windows, 3 labels), ~0.3 ms per window on one
    core (hours of audio at a 0.25 s hop run in seconds), whose label ``tone`` fires on a 440 Hz tone
    and not on silence: its head row is set along the difference of the two pooled embeddings."""
    from ast_deploy import ASTConfig, ASTModel, KaldiFbank, save_checkpoint

    torch.manual_seed(0)
    config = ASTConfig(embed_dim=32, depth=1, num_heads=1, target_length=16, num_labels=3)
    frontend = FrontEndConfig(target_length=16)
    model = ASTModel(config).eval()
    n = frontend.window_samples
    clips = torch.from_numpy(np.stack([tones([(0.0, 1.0)], n / RATE)[:n], np.zeros(n, np.float32)]))
    pooled = []
    hook = model.head.fc.register_forward_hook(lambda m, args, out: pooled.append(args[0]))
    with torch.no_grad():
        model(KaldiFbank(frontend)(clips, torch.tensor([n, n])))
        hook.remove()
        tone, silence = pooled[0]
        direction = (tone - silence) / (tone - silence).square().sum()
        model.head.fc.weight[0] = 20 * direction  # logit +10 on the tone, -10 on silence
        model.head.fc.bias[0] = -20 * (direction @ (tone + silence) / 2)
    return save_checkpoint(out, config, model.state_dict(), ["tone", "b", "c"], frontend)


@pytest.fixture(scope="module")
def micro(tmp_path_factory) -> Path:
    return write_micro_model(tmp_path_factory.mktemp("micro") / "model")


@pytest.fixture(scope="module")
def micro_artifacts(micro, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("micro_art") / "artifacts"
    result = run_cli("export", micro, "--out", out, "--to", "torchscript,onnx", "--input", "waveform", "--no-verify")
    assert result.code == 0, result.stderr
    return out


@pytest.fixture(scope="module")
def tiny() -> Classifier:
    return ast_deploy.load(TINY_PTH, options=authors_options(TINY_CASE))


@pytest.fixture(scope="module", params=["pytorch", "torchscript", "onnx"])
def backend_clf(request, micro, micro_artifacts) -> Classifier:
    if request.param == "pytorch":
        return ast_deploy.load(micro)
    return ast_deploy.load(micro_artifacts, backend=request.param)


class ToneBackend(Backend):
    """Label ``tone`` fires (sigmoid > 0.5) when more than half of a window's 10 ms frames are loud;
    ``never`` never fires: a model whose output the events tests control exactly."""

    name = "tone"

    def __init__(self) -> None:
        super().__init__(InputSpec("waveform", RATE, 100, 128, num_samples=None))

    def _run(self, x: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        frames = x[:, : (x.shape[1] // 160) * 160].reshape(len(x), -1, 160)
        valid = torch.arange(frames.shape[1])[None] < (n // 160)[:, None]
        loud = ((frames.square().mean(-1) > 0.01) & valid).sum(1) / valid.sum(1).clamp(min=1)
        tone = 40.0 * (loud - 0.5)
        return torch.stack([tone, torch.full_like(tone, -10.0)], 1)


@pytest.fixture(scope="module")
def tone_clf() -> Classifier:
    return Classifier(ToneBackend(), FrontEndConfig(target_length=100), ["tone", "never"], "sigmoid")


def chunked(stream, samples: np.ndarray, rng: np.random.Generator, max_chunk: int) -> list:
    windows, i = [], 0
    while i < len(samples):
        n = int(rng.integers(0, max_chunk + 1))  # empty chunks too
        windows += stream.push(samples[i : i + n])
        i += n
    return windows + stream.flush()


# --- windows: chunked == offline ---------------------------------------------------------------


@pytest.mark.parametrize("hop", [None, 0.05, 0.25, 0.3])
def test_chunked_stream_equals_offline_predict(backend_clf, hop):
    """Random chunk sizes (0 .. 1.5 windows) give exactly offline predict's windows and its scores."""
    speech = load_audio(SPEECH_WAV)
    offline = backend_clf.predict(SPEECH_WAV, hop_seconds=hop)[0]
    rng = np.random.default_rng(7)
    for max_chunk in (37, 4000):
        got = chunked(backend_clf.stream(hop=hop), speech, rng, max_chunk)
        assert [w.start_sample for w in got] == offline.starts
        assert [w.index for w in got] == list(range(len(got)))
        assert [w.end_sample for w in got] == [min(s + backend_clf.window, speech.size) for s in offline.starts]
        np.testing.assert_allclose(np.stack([w.scores for w in got]), offline.window_scores, rtol=0, atol=SCORE_ATOL)


def test_stream_matches_predict_cli_json(tiny):
    """The real tiny model: the stream in 1000-sample chunks vs ``predict --hop 0.25 --json``."""
    result = run_cli(
        "predict", TINY_PTH, "--input-tdim", "100", "--fstride", "10", "--tstride", "10",
        SPEECH_WAV, "--hop", "0.25", "--json", "-k", "10",
    )  # fmt: skip
    assert result.code == 0, result.stderr
    timeline = result.json()["results"][0]["windows"]
    speech = load_audio(SPEECH_WAV)
    stream = tiny.stream(hop=0.25)
    got = [w for i in range(0, speech.size, 1000) for w in stream.push(speech[i : i + 1000])] + stream.flush()
    assert [(w.start, w.end) for w in got] == [(t["start"], t["end"]) for t in timeline]
    for w, t in zip(got, timeline, strict=True):
        expected = np.zeros(10)
        for entry in t["top"]:
            expected[entry["index"]] = entry["score"]
        np.testing.assert_allclose(w.scores, expected, rtol=0, atol=SCORE_ATOL)


def test_short_stream_is_one_zero_padded_window(backend_clf, speech):
    stream = backend_clf.stream(hop=0.01)
    assert stream.push(speech[:1000]) == []
    (w,) = stream.flush()
    assert (w.start_sample, w.end_sample) == (0, 1000)
    (offline,) = backend_clf.predict((speech[:1000], RATE))
    np.testing.assert_allclose(w.scores, offline.window_scores[0], rtol=0, atol=SCORE_ATOL)


def test_memory_holds_one_window_plus_one_chunk(tiny, speech):
    stream = tiny.stream(hop=0.1)
    for i in range(0, speech.size, 500):
        stream.push(speech[i : i + 500])
        assert len(stream._buf) <= tiny.window + 500
    stream.flush()


def test_shorter_window_than_the_model(tiny, speech):
    """A 0.5 s window is scored as a 0.5 s clip (zero padded in the feature domain)."""
    got = chunked(tiny.stream(hop=0.5, window=0.5), speech[:24000], np.random.default_rng(1), 3000)
    assert [w.start_sample for w in got] == window_starts(24000, 8000, 8000)
    (alone,) = tiny.predict((speech[8000:16000], RATE))
    np.testing.assert_allclose(got[1].scores, alone.window_scores[0], rtol=0, atol=SCORE_ATOL)


# --- resampling ----------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_streaming_resampler_equals_one_shot_resampling(rate):
    rng = np.random.default_rng(rate)
    x = (0.3 * rng.standard_normal(rate * 3 + 17)).astype(np.float32)
    whole = soxr.resample(x, rate, RATE, quality="HQ")
    rs = soxr.ResampleStream(rate, RATE, 1, dtype="float32", quality="HQ")
    parts, i = [], 0
    while i < x.size:
        n = int(rng.integers(1, 5000))
        parts.append(rs.resample_chunk(x[i : i + n]))
        i += n
    parts.append(rs.resample_chunk(np.zeros(0, np.float32), last=True))
    streamed = np.concatenate(parts)
    assert streamed.size == whole.size
    assert np.abs(streamed - whole).max() <= RESAMPLE_ATOL


def test_resampled_stereo_int_stream_equals_offline(tiny, tmp_path, speech):
    """44.1 kHz stereo int16 in random chunks == today's whole-file path (load_audio, then scores)."""
    x = soxr.resample(speech, RATE, 44100)
    stereo = (np.stack([x, 0.9 * x], 1) * 32767).astype(np.int16)
    path = tmp_path / "stereo44k.wav"
    sf.write(path, stereo, 44100, subtype="PCM_16")
    whole = load_audio(path)  # one-shot decode and resample
    reference, starts = tiny.scores(whole, hop=4000)
    got = chunked(tiny.stream(hop=0.25, sample_rate=44100), stereo, np.random.default_rng(3), 6000)
    assert [w.start_sample for w in got] == starts
    np.testing.assert_allclose(np.stack([w.scores for w in got]), reference, rtol=0, atol=SCORE_ATOL)
    (offline,) = tiny.predict(path, hop_seconds=0.25)  # block decode + streaming resampler
    assert offline.num_samples == whole.size and offline.starts == starts
    np.testing.assert_allclose(offline.window_scores, reference, rtol=0, atol=SCORE_ATOL)


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("chunks", "message"),
    [
        ([np.array(["a"])], "samples must be numeric"),
        ([np.zeros((2, 2, 2), np.float32)], "shape (N,) or (N, channels)"),
        (
            [np.zeros(500, np.float32), np.array([0.0, np.nan], np.float32)],
            "NaN or infinite samples (first at sample 501)",
        ),
        ([np.zeros((10, 2), np.float32), np.zeros((10, 3), np.float32)], "chunk has 3 channel(s), the stream has 2"),
    ],
)
def test_bad_chunks_are_one_line_input_errors(tiny, chunks, message):
    stream = tiny.stream()
    with pytest.raises(InputError) as err:
        for c in chunks:
            stream.push(c)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_push_after_flush_is_refused(tiny, speech):
    stream = tiny.stream()
    stream.push(speech[:20000])
    stream.flush()
    with pytest.raises(InputError, match="flushed"):
        stream.push(speech[:10])
    with pytest.raises(InputError, match="shorter than one 25 ms analysis frame"):
        s = tiny.stream()
        s.push(speech[:100])
        s.flush()
    with pytest.raises(InputError, match="window must be between"):
        tiny.stream(window=2.0)


# --- events --------------------------------------------------------------------------------------


def tones(segments: list[tuple[float, float]], seconds: float, rate: int = RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    x = np.zeros(t.size, np.float32)
    for on, off in segments:
        inside = (t >= on) & (t < off)
        x[inside] = 0.5 * np.sin(2 * np.pi * 440 * t[inside])
    return x


TRUTH = [(2.0, 5.0), (7.0, 8.0), (9.5, 10.5), (12.5, 13.2)]  # gaps longer than the 1.015 s window


@pytest.mark.parametrize("hop", [0.1, 0.25])
def test_events_of_tones_within_one_hop(tone_clf, hop):
    """Tones switched on and off: each event's onset and offset lies within one hop of the truth;
    the stream's tracker gives the offline function's events."""
    x = tones(TRUTH, 15.0)
    (pred,) = tone_clf.predict((x, RATE), hop_seconds=hop)
    config = EventConfig(threshold=0.5)
    ends = [min(s + pred.window, pred.num_samples) for s in pred.starts]
    hop_n = round(hop * RATE)
    events = detect_events(pred.starts, ends, pred.window_scores, pred.labels, config, hop_n, RATE)
    assert [e.label for e in events] == ["tone"] * 4
    for e, (on, off) in zip(events, TRUTH, strict=True):
        assert abs(e.onset - on) <= hop and abs(e.offset - off) <= hop, (e, on, off)
        assert e.peak > 0.99
    stream = tone_clf.stream(hop=hop)
    tracker = EventTracker(tone_clf.labels, config, stream.hop, RATE)
    streamed = []
    for w in chunked(stream, x, np.random.default_rng(5), 3000):
        streamed += tracker.update(w.start_sample, w.end_sample, w.scores)
    streamed += tracker.flush()
    assert streamed == events


def test_merge_gap_and_min_duration(tone_clf):
    x = tones(TRUTH, 15.0)
    (pred,) = tone_clf.predict((x, RATE), hop_seconds=0.1)
    ends = [min(s + pred.window, pred.num_samples) for s in pred.starts]

    def spans(**kw):
        config = EventConfig(**{"threshold": 0.5, **kw})
        return [
            (round(e.onset, 1), round(e.offset, 1))
            for e in detect_events(pred.starts, ends, pred.window_scores, pred.labels, config, 1600, RATE)
        ]

    assert len(spans()) == 4
    merged = spans(merge_gap=1.75)  # the 1.5 s gap between 8.0 and 9.5 closes, the 2 s gaps do not
    assert len(merged) == 3 and abs(merged[1][0] - 7.0) <= 0.1 and abs(merged[1][1] - 10.5) <= 0.1
    assert len(spans(min_duration=1.0)) == 3  # the 0.7 s tone is dropped
    assert spans(threshold=1.01) == []  # above every score


@pytest.mark.parametrize("seed", range(6))
def test_tracker_equals_offline_function_on_random_scores(seed):
    """Hysteresis, merge gap, min duration, end-aligned last window: the tracker == detect_events."""
    rng = np.random.default_rng(seed)
    n, labels, window, hop = int(rng.integers(1, 120)), ["x", "y", "z"], 1000, int(rng.integers(100, 1500))
    total = int(rng.integers(300, window + hop * n))
    starts = window_starts(total, window, hop)
    ends = [min(s + window, total) for s in starts]
    walk = np.clip(0.5 + np.cumsum(rng.normal(0, 0.15, (len(starts), 3)), 0) * 0.3, 0, 1).astype(np.float32)
    config = EventConfig(
        threshold=0.6, off_threshold=0.4, thresholds={2: (0.5, 0.5)},
        min_duration=float(rng.uniform(0, 0.2)), merge_gap=float(rng.uniform(0, 0.3)),
    )  # fmt: skip
    offline = detect_events(starts, ends, walk, labels, config, hop, RATE)
    tracker = EventTracker(labels, config, hop, RATE)
    streamed = [e for s, e_, row in zip(starts, ends, walk, strict=True) for e in tracker.update(s, e_, row)]
    streamed += tracker.flush()
    assert sorted(streamed, key=lambda e: (e.onset, e.index)) == offline


def test_thresholds_csv(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("label,on,off\n# comment\ndog,0.7,0.3\n\n1,0.6\n")
    assert read_thresholds(path, ["cat", "dog"], off_threshold=0.2) == {1: (0.6, 0.2)}  # later row wins
    path.write_text("# per-label thresholds\n\nlabel,on\ncat,0.4\n")  # the header after a comment (as in C++)
    assert read_thresholds(path, ["cat", "dog"]) == {0: (0.4, 0.4)}
    path.write_text("cat,0.4\nlabel,0.5\n")  # only the first row can be a header
    with pytest.raises(InputError, match=r"t.csv:2: unknown label 'label'"):
        read_thresholds(path, ["cat", "dog"])
    path.write_text("cow,0.5\n")
    with pytest.raises(InputError, match=r"t.csv:1: unknown label 'cow'"):
        read_thresholds(path, ["cat", "dog"])
    path.write_text("cat,0.2,0.5\n")
    with pytest.raises(InputError, match="above the on threshold"):
        read_thresholds(path, ["cat", "dog"])


def test_predict_events_equal_stream_events_end_to_end(micro, tmp_path):
    """One end-to-end run through both CLIs: ``predict --events --json`` and ``stream --events``."""
    path = tmp_path / "tones.wav"
    sf.write(path, tones(TRUTH, 15.0), RATE, subtype="PCM_16")
    flags = ["--hop", "0.1", "--threshold", "0.6", "--off-threshold", "0.4", "--min-duration", "0.3"]
    offline = run_cli("predict", micro, path, "--json", *flags)
    assert offline.code == 0, offline.stderr
    expected = offline.json()["results"][0]["events"]
    assert [e["label"] for e in expected] == ["tone"] * len(TRUTH)
    for e, (on, off) in zip(expected, TRUTH, strict=True):  # a real (tiny) AST: within one hop too
        assert abs(e["onset"] - on) <= 0.1 and abs(e["offset"] - off) <= 0.1, (e, on, off)
    streamed = run_cli("stream", micro, path, "--chunk", "0.37", *flags)
    assert streamed.code == 0, streamed.stderr
    lines = [json.loads(line) for line in streamed.stdout.splitlines()]
    assert lines[0]["type"] == "start" and lines[-1]["type"] == "summary"
    events = [{k: v for k, v in e.items() if k != "type"} for e in lines if e["type"] == "event"]
    assert sorted(events, key=lambda e: (e["onset"], e["index"])) == expected
    windows = [line for line in lines if line["type"] == "window"]
    assert [w["start"] for w in windows] == [w["start"] for w in offline.json()["results"][0]["windows"]]
    assert lines[-1]["windows"] == len(windows) and lines[-1]["events"] == len(events)


# --- the stream CLI ------------------------------------------------------------------------------


def stdin_cli(monkeypatch, data: bytes, *args):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    return run_cli("stream", *args)


def window_lines(stdout: str) -> list[dict]:
    return [d for d in map(json.loads, stdout.splitlines()) if d["type"] == "window"]


def test_stdin_f32le_stereo_44k_equals_offline(micro, tmp_path, speech, monkeypatch):
    x = soxr.resample(speech, RATE, 44100)
    stereo = np.stack([x, 0.5 * x], 1).astype("<f4")
    path = tmp_path / "s.wav"
    sf.write(path, stereo, 44100, subtype="FLOAT")
    args = ["--hop", "0.2", "-k", "3"]
    result = stdin_cli(
        monkeypatch, stereo.tobytes(), micro, "-", "--format", "f32le", "--rate", "44100", "--channels", "2", *args
    )
    assert result.code == 0, result.stderr
    offline = run_cli("predict", micro, path, "--json", *args).json()["results"][0]["windows"]
    got = window_lines(result.stdout)
    assert [(w["start"], w["end"]) for w in got] == [(w["start"], w["end"]) for w in offline]
    for w, o in zip(got, offline, strict=True):
        assert [t["index"] for t in w["top"]] == [t["index"] for t in o["top"]]
        np.testing.assert_allclose([t["score"] for t in w["top"]], [t["score"] for t in o["top"]], atol=SCORE_ATOL)


def test_stdin_s16le_through_the_installed_script(micro):
    """A real pipe (select + os.read) into the console script; int16 PCM == the 16 kHz WAV."""
    pcm, _ = sf.read(str(SPEECH_WAV), dtype="int16")
    proc = subprocess.run(
        [cli_script(), "stream", str(micro), "-", "--hop", "0.5", "--events"],
        input=pcm.tobytes(), capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()
    got = window_lines(proc.stdout.decode())
    offline = run_cli("predict", micro, SPEECH_WAV, "--json", "--hop", "0.5").json()["results"][0]["windows"]
    assert [w["start"] for w in got] == [w["start"] for w in offline]
    np.testing.assert_allclose(
        [w["top"][0]["score"] for w in got], [w["top"][0]["score"] for w in offline], atol=SCORE_ATOL
    )
    summary = json.loads(proc.stdout.decode().splitlines()[-1])
    assert summary["type"] == "summary" and summary["interrupted"] is False
    assert summary["duration"] == pytest.approx(pcm.size / RATE) and summary["rtf"] > 0
    assert summary["latency_ms"]["p50"] <= summary["latency_ms"]["p99"]


@pytest.mark.parametrize(
    ("data", "args", "fragments"),
    [
        (b"", ["--format", "s24le"], ["--format must be one of s16le, f32le"]),
        (b"", ["--rate", "0"], ["--rate and --channels must be positive"]),
        (b"", ["--channels", "0"], ["--rate and --channels must be positive"]),
        (b"", ["--realtime"], ["--realtime paces a file"]),
        (b"\x00" * 3201, [], ["stdin: 1 trailing byte(s) do not make a whole frame"]),
        (
            np.array([0, 0, np.nan], "<f4").tobytes(),
            ["--format", "f32le"],
            ["stdin: audio contains NaN", "first at sample 2"],
        ),
        (b"", [], ["stdin: audio has no samples"]),
        (b"\x00" * 8000, ["--window", "5"], ["window must be between"]),
        (b"\x00" * 8000, ["--threshold", "0.2", "--off-threshold", "0.5"], ["above the on threshold"]),
    ],
)
def test_stream_bad_input_is_one_line(micro, monkeypatch, data, args, fragments):
    assert_input_error(stdin_cli(monkeypatch, data, micro, "-", *args), *fragments)


def test_stream_missing_file_is_one_line(micro, tmp_path):
    assert_input_error(run_cli("stream", micro, tmp_path / "nope.wav"), "nope.wav: no such file")


def test_ctrl_c_ends_cleanly_with_the_summary(micro, tmp_path):
    path = tmp_path / "long.wav"
    sf.write(path, tones([(1.0, 20.0)], 30.0), RATE, subtype="PCM_16")
    proc = subprocess.Popen(
        [cli_script(), "stream", str(micro), str(path), "--realtime", "--hop", "0.1", "--events"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        lines = []
        while not any('"window"' in line for line in lines):
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            lines.append(line)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    summary = json.loads(out.splitlines()[-1])
    assert summary["type"] == "summary" and summary["interrupted"] is True
    assert 0 < summary["duration"] < 20  # stopped long before the end of the 30 s file


# --- memory: flat over hours (subprocesses, peak RSS) ---------------------------------------------

STREAM_RSS = textwrap.dedent(
    """
    import sys, numpy as np, torch
    torch.set_num_threads(1)
    import ast_deploy
    from ast_deploy.bench.memory import peak_rss_mib  # this process's own peak, not its parent's
    from ast_deploy.events import EventConfig, EventTracker
    clf = ast_deploy.load(sys.argv[1])
    stream = clf.stream(hop=0.25, sample_rate=44100)
    tracker = EventTracker(clf.labels, EventConfig(threshold=0.4), stream.hop, clf.sample_rate)
    t = np.arange(44100) / 44100
    on = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    off = np.zeros(44100, np.float32)
    peaks = {}
    for i in range(3600):  # one hour in 1 s chunks at 44.1 kHz (4 windows each: one batch)
        for w in stream.push(on if (i // 7) % 2 else off):
            tracker.update(w.start_sample, w.end_sample, w.scores)
        if i + 1 in (600, 3600):
            peaks[i + 1] = peak_rss_mib()
    stream.flush(); tracker.flush()
    print(peaks[600], peaks[3600], stream.duration)
    """
)


@pytest.mark.slow
def test_stream_memory_is_flat_over_an_hour(micro):
    proc = subprocess.run(
        [sys.executable, "-c", STREAM_RSS, str(micro)], capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stderr
    at_10_min, at_60_min, duration = proc.stdout.split()
    assert float(duration) == pytest.approx(3600, abs=0.01)
    growth_mib = float(at_60_min) - float(at_10_min)
    assert growth_mib < 8, f"peak RSS grew by {growth_mib:.1f} MiB from 10 to 60 min of stream"


def write_long_wav(path: Path, seconds: int, fmt: str = "WAV") -> Path:
    """16 kHz PCM: a 2 s 1 kHz tone and 8 s of silence, repeated; written block by block (never held whole)."""
    t = np.arange(RATE * 10) / RATE
    block = np.where(t < 2.0, 0.3 * np.sin(2 * np.pi * 1000 * t), 0.0).astype(np.float32)
    with sf.SoundFile(path, "w", RATE, 1, subtype="PCM_16", format=fmt) as f:
        for _ in range(seconds // 10):
            f.write(block)
    return path


@pytest.fixture(scope="module")
def long_wavs(tmp_path_factory) -> dict[int, Path]:
    """10 and 60 minutes of ``write_long_wav`` (19 and 115 MB)."""
    folder = tmp_path_factory.mktemp("long")
    return {minutes: write_long_wav(folder / f"{minutes}min.wav", 60 * minutes) for minutes in (10, 60)}


def measure_cli(*args: str) -> Measured:
    """``ast-deploy ARGS`` run in its own process on one thread (its output to /dev/null) with its own peak
    RSS, not floored by this pytest process's (which ``ru_maxrss`` of a plain child would be)."""
    return run_measured([cli_script(), *map(str, args)], env={**os.environ, "OMP_NUM_THREADS": "1"})


def peak_rss_mib(measured: Measured) -> float:
    assert measured.returncode == 0, measured.stderr
    return measured.peak_rss_mib


# Issue 19: the CLI kept 726 MiB for 60 minutes vs 372 MiB for 10 (the API 407 vs 361). Each window's
# scores were kept as a row of its batch's result: small blocks pinned all over glibc's heap among the
# large buffers freed in between, which it then could neither reuse nor return. A model with real
# window sizes (1.015 s, 16,240 samples) makes those buffers; the micro model's (0.175 s) did not.
LONG_AUDIO_ARGS = ["--hop", "0.25", "-k", "1", "--batch-size", "32"]
# verb and flags of each command the tests below measure on 10 and on 60 minutes
LONG_AUDIO_COMMANDS = {
    "predict-table": ("predict", [*LONG_AUDIO_ARGS, "--no-progress"]),
    "predict-json": ("predict", [*LONG_AUDIO_ARGS, "--no-progress", "--json"]),
    "stream": ("stream", [*LONG_AUDIO_ARGS, "--chunk", "2", "--events", "--threshold", "0.4"]),
}


def peak_rss_on_10_and_60_minutes(model: Path, long_wavs: dict[int, Path], command: str) -> dict[int, float]:
    """Peak RSS (MiB) of one command of ``LONG_AUDIO_COMMANDS`` on 10 and on 60 minutes. The processes are
    single-threaded and each reports its own peak RSS, so the two run at once where there are two cores."""
    verb, flags = LONG_AUDIO_COMMANDS[command]

    def measure(minutes: int) -> float:
        return peak_rss_mib(measure_cli(verb, model, long_wavs[minutes], *flags))

    with ThreadPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as pool:
        return dict(zip((60, 10), pool.map(measure, (60, 10))))


@pytest.mark.slow
@pytest.mark.parametrize("output", ["table", "json"])
def test_an_hour_predicts_in_bounded_memory(tiny_model_dir, long_wavs, output):
    """``ast-deploy predict`` on 60 minutes at a 0.25 s hop (14,400 windows): peak RSS within 64 MiB of 10 minutes'."""
    rss = peak_rss_on_10_and_60_minutes(tiny_model_dir, long_wavs, f"predict-{output}")
    assert rss[60] - rss[10] < 64, f"peak RSS {rss[10]:.0f} MiB at 10 min, {rss[60]:.0f} MiB at 60 min"


@pytest.mark.slow
def test_an_hour_streams_in_bounded_memory(tiny_model_dir, long_wavs):
    """``ast-deploy stream`` of a 60-minute file with events: peak RSS within 64 MiB of 10 minutes'."""
    rss = peak_rss_on_10_and_60_minutes(tiny_model_dir, long_wavs, "stream")
    assert rss[60] - rss[10] < 64, f"peak RSS {rss[10]:.0f} MiB at 10 min, {rss[60]:.0f} MiB at 60 min"


@pytest.mark.slow
def test_benchmark_scripts_run_at_tiny_size(micro, tmp_path):
    for script, extra in (
        ("streaming.py", ["--hops", "0.5", "--seconds", "2"]),
        ("long_audio.py", ["--minutes", "0.1"]),
    ):
        out = tmp_path / script
        proc = subprocess.run(
            [sys.executable, str(REPO_ROOT / "benchmarks" / script), str(micro), "--out", str(out), *extra],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        data = json.loads((out / "results.json").read_text())
        assert data["rows"] and (out / "results.md").exists()
