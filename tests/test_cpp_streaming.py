"""The C++ stream (``ast::StreamingClassifier``, ``ast_classify --stream``) against C++ offline
prediction and against the Python stream (docs/streaming.md is the specification of both).

- chunked == offline: ``ast_stream_check`` pushes a file in random chunk sizes (empty chunks,
  single samples, several windows at once, two channels) and compares every window with
  ``Classifier::predict`` at the same hop (same spans, scores <= 1e-5); it also streams an hour of
  noise and reports the samples held and the resident memory.
- ``ast_classify --stream`` on stdin (s16le and f32le, several read sizes) == ``ast_classify --hop``
  on the same audio.
- C++ stream == Python stream (``ast_deploy.streaming``) on the same artifact and PCM: same windows,
  scores <= 1e-4, the same events on tones switched on and off (onsets within one hop of the truth);
  the JSON lines of ``ast_classify --stream`` and ``ast-deploy stream`` agree key for key.
- Bad input: one ``error: ...`` line, exit status 2. Ctrl-C: the summary, exit status 0.

The model is the micro AST of test_streaming.py (0.175 s windows, label ``tone`` fires on a 440 Hz
tone), exported to TorchScript; the C++ build is the session's (conftest.py).
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import SPEECH_WAV, cli_script, run_cli
from conftest import run_command as _run
from test_streaming import TRUTH, tones, write_micro_model

import ast_deploy
from ast_deploy.events import EventConfig, EventTracker, read_thresholds
from ast_deploy.export.manifest import validate_manifest

pytestmark = pytest.mark.usefixtures("one_torch_thread")

RATE = 16000
CHUNKED_ATOL = 1e-5  # the same C++ backend, batches of other sizes (docs/streaming.md, section 3)
CROSS_ATOL = 1e-4  # C++ vs Python runtime on the same artifact (as tests/test_cpp.py)
# Labels with a comma (quoted in a thresholds CSV) and a non-ASCII letter (escaped in JSON lines).
LABELS = ["tone", "Speech, male", "Café"]


# --- artifacts and programs ----------------------------------------------------------------------


def _export(model: Path, out: Path, *flags) -> Path:
    result = run_cli("export", model, "--out", out, "--to", "torchscript", "--input", "waveform", "--no-verify", *flags)
    assert result.code == 0, result.stderr
    return out


@pytest.fixture(scope="module")
def micro_model(tmp_path_factory) -> Path:
    return write_micro_model(tmp_path_factory.mktemp("cpp_stream") / "model")


@pytest.fixture(scope="module")
def art(micro_model, tmp_path_factory) -> Path:
    """The micro model as TorchScript, its labels renamed (both runtimes read them from the manifest)."""
    out = _export(micro_model, tmp_path_factory.mktemp("cpp_stream") / "art")
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["labels"] = LABELS
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


@pytest.fixture(scope="module")
def min_batch_art(micro_model, tmp_path_factory) -> Path:
    """Softmax and a batch range of 2..4: single windows are padded to two, long chunks split into fours."""
    flags = ("--activation", "softmax", "--batch", "2:4:4")
    return _export(micro_model, tmp_path_factory.mktemp("cpp_stream") / "min_batch", *flags)


def test_manifests_the_stream_reads_match_the_schema(art, min_batch_art):
    for directory in (art, min_batch_art):
        validate_manifest(json.loads((directory / "manifest.json").read_text()))


def stream_check(cpp_build: Path, artifact: Path, *args) -> dict:
    proc = _run([cpp_build / "ast_stream_check", artifact, SPEECH_WAV, "--threads", "1", *args], timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def cpp_stream(host: Path, artifact: Path, data: bytes, *args, timeout: float = 120) -> subprocess.CompletedProcess:
    """``ast_classify ARTIFACT --stream ARGS`` with ``data`` on stdin (a pipe)."""
    cmd = [str(host), str(artifact), "--stream", "--threads", "1", *map(str, args)]
    return subprocess.run(cmd, input=data, capture_output=True, timeout=timeout, check=False)


def lines_of(proc: subprocess.CompletedProcess) -> list[dict]:
    assert proc.returncode == 0, proc.stderr.decode()
    return [json.loads(line) for line in proc.stdout.decode().splitlines()]


def of_type(lines: list[dict], kind: str) -> list[dict]:
    return [line for line in lines if line["type"] == kind]


def one_error_line(proc: subprocess.CompletedProcess, *fragments: str) -> str:
    err = proc.stderr.decode()
    assert proc.returncode == 2, f"exit status {proc.returncode}\n{err}"
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    return lines[0]


# --- chunked == offline, bounded memory (ast_stream_check) --------------------------------------


@pytest.mark.parametrize(
    ("which", "flags"),
    [
        ("art", ("--hop", "0.37")),  # windows apart, the last one aligned to the end
        ("art", ()),  # hop = window
        ("art", ("--hop", "0.05", "--batch-size", "3")),  # chunks completing many windows: batches of 3
        ("min_batch_art", ("--hop", "0.1")),  # padded to the minimum batch, softmax
    ],
)
def test_random_chunks_give_the_offline_windows(cpp_build, request, which, flags):
    report = stream_check(cpp_build, request.getfixturevalue(which), "--seeds", "6", *flags)
    assert report["offline_windows"] > 5
    for run in report["runs"]:
        assert run["same_spans"], run  # same starts, ends and order as predict()
        assert run["windows"] == report["offline_windows"], run
        assert run["max_abs_diff"] <= CHUNKED_ATOL, run
        assert run["eager"], run  # each push returned every window it completed
        assert run["max_buffered"] <= run["window"], run  # one window held between pushes
        assert "the stream was flushed; no more audio can be pushed" in run["push_after_flush"]
    assert {run["channels"] for run in report["runs"]} == {1, 2}
    assert max(run["chunks"] for run in report["runs"]) > 20


def test_an_hour_of_stream_holds_one_window(cpp_build, art):
    report = stream_check(cpp_build, art, "--seeds", "0", "--long-seconds", "3600", "--long-hop", "0.25")["long"]
    assert report["seconds"] == 3600 and report["windows"] == report["expected_windows"] == 14401
    assert report["max_buffered"] <= report["window"]
    growth_mib = (report["rss_kib_max"] - report["rss_kib_after_first_minute"]) / 1024
    assert growth_mib < 8, f"resident memory grew by {growth_mib:.1f} MiB from minute 1 to 60"


# --- stdin PCM == offline -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stereo_wav(tmp_path_factory) -> tuple[Path, np.ndarray]:
    """The speech fixture as two different float32 channels, in a WAV and as the array."""
    x, _ = sf.read(str(SPEECH_WAV), dtype="float32")
    stereo = np.stack([x, 0.5 * np.roll(x, 800)], axis=1).astype("<f4")
    path = tmp_path_factory.mktemp("cpp_stream") / "stereo.wav"
    sf.write(str(path), stereo, RATE, subtype="FLOAT")
    return path, stereo


@pytest.mark.parametrize(
    ("pcm_format", "chunk"), [("s16le", "0.013"), ("s16le", "3"), ("f32le", "0.0001"), ("f32le", "0.4")]
)
def test_stdin_stream_equals_offline(host, art, stereo_wav, tmp_path, pcm_format, chunk):
    """Regular-file stdin: every read returns --chunk seconds, so chunk sizes are set by the flag."""
    if pcm_format == "s16le":
        pcm, _ = sf.read(str(SPEECH_WAV), dtype="int16")
        wav, channels = SPEECH_WAV, 1
    else:
        wav, pcm = stereo_wav
        channels = 2
    raw = tmp_path / "pcm.raw"
    raw.write_bytes(pcm.astype("<i2" if pcm_format == "s16le" else "<f4").tobytes())
    args = ("--hop", "0.2", "-k", "3", "--threads", "1")
    with raw.open("rb") as stdin:
        cmd = [host, art, "--stream", "--format", pcm_format, "--channels", str(channels), "--chunk", chunk, *args]
        proc = subprocess.run([str(c) for c in cmd], stdin=stdin, capture_output=True, timeout=120, check=False)
    lines = lines_of(proc)
    offline = _run([host, art, wav, "--json", *args], timeout=120)
    assert offline.returncode == 0, offline.stderr
    expected = json.loads(offline.stdout)["results"][0]["windows"]
    got = of_type(lines, "window")
    assert [(w["start"], w["end"]) for w in got] == [(w["start"], w["end"]) for w in expected]
    for w, e in zip(got, expected, strict=True):
        scores = {t["index"]: t["score"] for t in w["top"]}
        for t in e["top"]:
            assert abs(scores[t["index"]] - t["score"]) <= CHUNKED_ATOL, (w, e)
    start, summary = lines[0], lines[-1]
    assert start["type"] == "start" and start["channels"] == channels and start["hop"] == 0.2
    assert summary["type"] == "summary" and summary["windows"] == len(got) and summary["interrupted"] is False
    assert summary["duration"] == len(pcm) / RATE and summary["rtf"] > 0
    assert 0 < summary["latency_ms"]["p50"] <= summary["latency_ms"]["p99"] <= summary["latency_ms"]["max"]


# --- C++ stream == Python stream -----------------------------------------------------------------


def _gap_threshold(values: np.ndarray, below: float | None = None) -> float | None:
    """A threshold in the middle of the widest gap between consecutive distinct scores (under
    ``below`` if given): far from every score, so that 1e-7 differences cannot flip a decision."""
    v = np.unique(values if below is None else values[values < below])
    if len(v) < 2:
        return None
    i = int(np.argmax(np.diff(v)))
    return float((v[i] + v[i + 1]) / 2)


CASES = {
    # name: (format, channels, hop, window, event flags beyond the thresholds CSV, expected tone events)
    "s16le": ("s16le", 1, 0.1, None, ("--off-threshold", "0.3"), TRUTH),
    "f32le_stereo": (
        *("f32le", 2, 0.05, None),
        *(("--merge-gap", "1.75", "--min-duration", "0.8"), [(2.0, 5.0), (7.0, 10.5)]),
    ),
    # Windows shorter than the model's are zero padded, which the micro model's "tone" direction
    # (tone vs silence in full windows) does not know: its events are compared, not checked on the truth.
    "short_window": ("f32le", 1, 0.1, 0.15, (), None),
}


@pytest.mark.parametrize("case", list(CASES))
def test_cpp_stream_equals_python_stream(host, art, tmp_path, case):
    pcm_format, channels, hop, window, event_flags, truth = CASES[case]
    x = tones(TRUTH, 15.0)
    if pcm_format == "s16le":
        frames = np.round(x * 32767).astype("<i2")[:, None]
    elif channels == 2:
        frames = np.stack([x, x * 0.5], axis=1).astype("<f4")  # channels averaged: 0.75 x
    else:
        frames = x.astype("<f4")[:, None]

    clf = ast_deploy.load(art, backend="torchscript")
    assert clf.labels == LABELS
    stream = clf.stream(hop=hop, window=window)
    rng = np.random.default_rng(7)
    py_windows, i = [], 0
    while i < len(frames):  # Python: random chunks; C++: 0.1 s reads
        n = int(rng.integers(0, 4000))
        py_windows += stream.push(frames[i : i + n])
        i += n
    py_windows += stream.flush()
    scores = np.stack([w.scores for w in py_windows])

    # Per-label thresholds: "tone" by name, the quoted label by name, label 2 by index, each far
    # from every score of its label (a random model's labels 1 and 2 hover anywhere).
    on1 = _gap_threshold(scores[:, 1])
    on2 = _gap_threshold(scores[:, 2])
    off2 = _gap_threshold(scores[:, 2], below=on2) or on2
    csv = tmp_path / "thresholds.csv"
    csv.write_text(
        f'label,on,off\n# by name, quoted name, index\ntone,0.5\n"{LABELS[1]}",{on1!r}\n\n2,{on2!r},{off2!r}\n'
    )
    off_threshold = float(event_flags[1]) if event_flags[:1] == ("--off-threshold",) else None
    flags = dict(zip(event_flags[::2], map(float, event_flags[1::2])))
    config = EventConfig(
        off_threshold=off_threshold,
        thresholds=read_thresholds(csv, LABELS, off_threshold),
        min_duration=flags.get("--min-duration", 0.0),
        merge_gap=flags.get("--merge-gap", 0.0),
    )
    on, off = config.on_off(len(LABELS))
    assert np.abs(scores[:, :, None] - np.stack([on, off], 1)[None]).min() > 1e-5  # no decision near a threshold
    tracker = EventTracker(LABELS, config, stream.hop, RATE)
    py_events = []
    for w in py_windows:
        py_events += tracker.update(w.start_sample, w.end_sample, w.scores)
    py_events += tracker.flush()

    args = ["--format", pcm_format, "--channels", channels, "--hop", hop, "-k", 3, "--thresholds", csv, *event_flags]
    if window is not None:
        args += ["--window", window]
    lines = lines_of(cpp_stream(host, art, frames.tobytes(), *args))

    start = lines[0]
    assert start == {
        "type": "start", "model": str(art), "backend": "torchscript", "sample_rate": RATE, "input_rate": RATE,
        "channels": channels, "window": stream.window / RATE, "hop": stream.hop / RATE, "labels": 3,
    }  # fmt: skip
    windows = of_type(lines, "window")
    assert [(w["index"], w["start"], w["end"]) for w in windows] == [(w.index, w.start, w.end) for w in py_windows]
    worst = 0.0
    for w, p in zip(windows, py_windows, strict=True):
        assert [t["label"] for t in w["top"]] == [LABELS[t["index"]] for t in w["top"]]
        for t in w["top"]:
            worst = max(worst, abs(t["score"] - float(p.scores[t["index"]])))
    assert worst <= CROSS_ATOL, f"max abs score difference {worst:.2e}"

    events = of_type(lines, "event")
    assert [(e["label"], e["index"], e["onset"], e["offset"]) for e in events] == [
        (e.label, e.index, e.onset, e.offset) for e in py_events
    ]
    for e, p in zip(events, py_events, strict=True):
        assert abs(e["peak"] - p.peak) <= CROSS_ATOL
    assert {e["index"] for e in events} == {0, 1, 2}
    if truth is not None:
        tone = [e for e in events if e["index"] == 0]
        assert len(tone) == len(truth)
        for e, (t_on, t_off) in zip(tone, truth, strict=True):  # within one hop of the truth
            assert abs(e["onset"] - t_on) <= hop and abs(e["offset"] - t_off) <= hop, (e, t_on, t_off)
    summary = lines[-1]
    assert summary["windows"] == len(windows) and summary["events"] == len(events)
    assert summary["duration"] == len(frames) / RATE


def test_json_lines_match_the_python_cli(host, art, tmp_path):
    """``ast_classify --stream`` and ``ast-deploy stream`` on the same bytes: the same lines in the same
    order with the same keys in the same order; the start line is the same text (json.dumps spacing,
    escaped non-ASCII label)."""
    pcm = np.round(tones(TRUTH, 15.0) * 32767).astype("<i2").tobytes()
    args = ["--hop", "0.25", "-k", "2", "--events", "--threshold", "0.5"]
    py = subprocess.run(
        [cli_script(), "stream", str(art), "-", "--backend", "torchscript", *args],
        input=pcm, capture_output=True, timeout=180, check=False,
    )  # fmt: skip
    assert py.returncode == 0, py.stderr.decode()
    cpp = cpp_stream(host, art, pcm, *args)
    py_text, cpp_text = py.stdout.decode().splitlines(), cpp.stdout.decode().splitlines()
    assert cpp_text[0] == py_text[0]
    py_lines, cpp_lines = lines_of(py), lines_of(cpp)
    assert [line["type"] for line in cpp_lines] == [line["type"] for line in py_lines]
    assert len(of_type(cpp_lines, "event")) >= 4
    for c, p in zip(cpp_lines, py_lines, strict=True):
        assert list(c) == list(p)
        if c["type"] == "window":
            assert (c["index"], c["start"], c["end"]) == (p["index"], p["start"], p["end"])
            assert [t["index"] for t in c["top"]] == [t["index"] for t in p["top"]]
            assert [list(t) for t in c["top"]] == [list(t) for t in p["top"]]
            assert np.allclose([t["score"] for t in c["top"]], [t["score"] for t in p["top"]], atol=CROSS_ATOL)
        elif c["type"] == "event":
            assert {k: v for k, v in c.items() if k != "peak"} == {k: v for k, v in p.items() if k != "peak"}
            assert abs(c["peak"] - p["peak"]) <= CROSS_ATOL
        elif c["type"] == "summary":
            for key in ("windows", "events", "duration", "interrupted"):
                assert c[key] == p[key]
            assert list(c["latency_ms"]) == list(p["latency_ms"]) == ["p50", "p99", "max"]
    assert all(line.isascii() for line in cpp_text)  # ensure_ascii, as json.dumps


# --- the thresholds an artifact directory carries ------------------------------------------------


def py_stream(art: Path, data: bytes, *args) -> subprocess.CompletedProcess:
    """``ast-deploy stream ARTIFACT - ARGS`` with ``data`` on stdin (a pipe)."""
    cmd = [cli_script(), "stream", str(art), "-", "--backend", "torchscript", *map(str, args)]
    return subprocess.run(cmd, input=data, capture_output=True, timeout=180, check=False)


def _stored_events(host: Path, art: Path, pcm: bytes, *args) -> list[tuple]:
    """The events of ``ast_classify --stream`` and ``ast-deploy stream`` on the same bytes and flags:
    (label, index, onset, offset) each; peaks within CROSS_ATOL of each other."""
    flags = ["--hop", "0.25", "-k", "1", "--events", *map(str, args)]
    py_events = of_type(lines_of(py_stream(art, pcm, *flags)), "event")
    cpp_events = of_type(lines_of(cpp_stream(host, art, pcm, *flags)), "event")
    key = [(e["label"], e["index"], e["onset"], e["offset"]) for e in cpp_events]
    assert key == [(e["label"], e["index"], e["onset"], e["offset"]) for e in py_events]
    for c, p in zip(cpp_events, py_events, strict=True):
        assert abs(c["peak"] - p["peak"]) <= CROSS_ATOL
    return key


def test_stored_thresholds_are_the_cpp_default_as_in_python(host, art, tmp_path):
    """``ast-deploy thresholds --store`` puts a CSV in the artifact directory, listed and hashed in its
    manifest: ``ast_classify --stream --events`` uses it without being told and gives the events that
    ``ast-deploy stream`` gives; ``--thresholds`` still wins; a changed, missing or badly listed file is
    one error line, exit status 2, in both hosts."""
    import shutil

    from ast_deploy import thresholds as th

    copy = Path(shutil.copytree(art, tmp_path / "art"))  # the module's artifact stays as it is
    pcm = np.round(tones(TRUTH, 15.0) * 32767).astype("<i2")
    before = _stored_events(host, copy, pcm.tobytes())
    assert sum(e[0] == "tone" for e in before) == len(TRUTH)

    # Stored: "tone" silenced, "Speech, male" at a threshold far from every one of its window scores.
    stream = ast_deploy.load(copy, backend="torchscript").stream(hop=0.25)
    windows = stream.push(pcm[:, None]) + stream.flush()
    speech = np.array([w.scores[1] for w in windows])
    on1 = _gap_threshold(speech)
    assert on1 is not None and (speech >= on1).any()
    stored = tmp_path / "stored.csv"
    stored.write_text(f'label,on,off\ntone,1.01,1.01\n"{LABELS[1]}",{on1!r},{on1!r}\n')
    th.store_in_artifact(copy, stored)
    manifest = json.loads((copy / "manifest.json").read_text())
    assert [f["file"] for f in manifest["thresholds"]["files"]] == ["thresholds.csv"]
    after = _stored_events(host, copy, pcm.tobytes())
    assert after != before
    assert not [e for e in after if e[0] == "tone"]
    assert [e for e in after if e[1] == 1]  # windows above its threshold: events
    assert [e for e in after if e[1] == 2] == [e for e in before if e[1] == 2]  # not in the file: 0.5

    # --thresholds wins over the stored file.
    loud = tmp_path / "loud.csv"
    loud.write_text("tone,0.5\n")
    assert _stored_events(host, copy, pcm.tobytes(), "--thresholds", loud) == before

    # Without events the stored file is not read (as in Python); with events a changed one is refused.
    one_second = pcm[:RATE].tobytes()
    (copy / "thresholds.csv").write_text("tone,0.2,0.2\n")
    assert cpp_stream(host, copy, one_second).returncode == 0
    assert py_stream(copy, one_second).returncode == 0
    line = one_error_line(
        cpp_stream(host, copy, one_second, "--events"), "thresholds.csv", "does not match the manifest"
    )
    assert str(copy) in line
    one_error_line(py_stream(copy, one_second, "--events"), "thresholds.csv", "does not match the manifest")
    assert cpp_stream(host, copy, one_second, "--events", "--no-verify").returncode == 0  # checks skipped
    (copy / "thresholds.csv").unlink()
    one_error_line(
        cpp_stream(host, copy, one_second, "--events"), "thresholds.csv", "listed in the manifest but missing"
    )
    manifest["thresholds"] = {"files": []}
    (copy / "manifest.json").write_text(json.dumps(manifest))
    one_error_line(cpp_stream(host, copy, one_second, "--events"), "manifest thresholds entry lacks files")
    one_error_line(py_stream(copy, one_second, "--events"), "manifest thresholds entry lacks files")


# --- Ctrl-C and bad input -------------------------------------------------------------------------


def test_ctrl_c_flushes_and_prints_the_summary(host, art):
    proc = subprocess.Popen(
        [str(host), str(art), "--stream", "--threads", "1", "--hop", "0.1", "--events"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        proc.stdin.write(np.round(tones([(0.0, 2.0)], 2.0) * 32767).astype("<i2").tobytes())
        proc.stdin.flush()  # stdin stays open: the stream waits for more
        lines = []
        while not any(b'"window"' in line for line in lines):
            line = proc.stdout.readline()
            assert line, proc.stderr.read().decode()
            lines.append(line)
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err.decode()
    rest = [json.loads(line) for line in out.decode().splitlines()]
    summary = rest[-1]
    assert summary["type"] == "summary" and summary["interrupted"] is True
    assert 0 < summary["duration"] <= 2.0
    tone = [e for e in of_type(rest, "event") if e["label"] == "tone"]
    assert len(tone) == 1 and tone[0]["onset"] <= 0.1  # the open event, closed at the end


NAN_F32 = np.array([0.0, 0.1, np.nan, 0.0], "<f4").tobytes()


@pytest.mark.parametrize(
    ("data", "args", "fragments"),
    [
        (NAN_F32, ["--format", "f32le"], ["stdin: audio contains NaN", "first at sample 2"]),
        (np.array([0, 0, 0, np.inf], "<f4").tobytes() * 2, ["--format", "f32le", "--channels", "2"], ["sample 1"]),
        (b"", ["--rate", "44100"], ["stdin: sample rate 44100 Hz", "16000 Hz", "does not resample"]),
        (b"\x00" * 3201, [], ["stdin: 1 trailing byte(s) do not make a whole frame (1 channel(s) x 2 bytes)"]),
        (b"\x00" * 3206, ["--format", "f32le", "--channels", "2"], ["6 trailing byte(s)", "2 channel(s) x 4 bytes"]),
        (b"", [], ["stdin: audio has no samples"]),
        (b"\x00" * 200, [], ["stdin: audio is 6.2 ms long, shorter than one 25 ms analysis frame"]),
        (b"", ["--format", "s24le"], ["--format must be one of s16le, f32le"]),
        (b"", ["--channels", "0"], ["--rate and --channels must be positive"]),
        (b"", ["--chunk", "0"], ["--chunk must be positive"]),
        (b"", ["--window", "5"], ["window must be between one 25 ms frame and the model's window (0.175 s)"]),
        (b"", ["--threshold", "0.2", "--off-threshold", "0.5"], ["off threshold 0.5 is above the on threshold 0.2"]),
        (b"", ["--min-duration", "-1"], ["must not be negative"]),
        (b"", ["--threshold", "nan"], ["threshold must be a finite number"]),
    ],
)
def test_bad_input_is_one_error_line(host, art, data, args, fragments):
    one_error_line(cpp_stream(host, art, data, *args), *fragments)


@pytest.mark.parametrize(
    ("csv", "fragments"),
    [
        ("tone,0.5\nnot a label,0.5\n", [":2: unknown label 'not a label'"]),
        ("tone,0.5,0.7\n", [":1: off threshold 0.7 is above the on threshold 0.5"]),
        ("tone,high\n", [":1: thresholds must be numbers, got 'high'"]),
        ("tone\n", [":1: expected label,on[,off], got 1 fields"]),
        ("7,0.5\n", [":1: unknown label '7'"]),  # an index past the labels
    ],
)
def test_bad_thresholds_csv(host, art, tmp_path, csv, fragments):
    path = tmp_path / "t.csv"
    path.write_text(csv)
    line = one_error_line(cpp_stream(host, art, b"\x00" * 8000, "--thresholds", path), *fragments)
    assert str(path) in line


def test_stream_takes_stdin_only(host, art):
    proc = _run([host, art, SPEECH_WAV, "--stream"], timeout=60)
    assert proc.returncode == 2 and "--stream reads raw PCM from stdin" in proc.stderr
    proc = _run([host, art, SPEECH_WAV, "--threshold", "0.3"], timeout=60)
    assert proc.returncode == 2 and "--threshold is an option of --stream" in proc.stderr
