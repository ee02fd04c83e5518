"""``ast-deploy batch`` on a local Ray: scores equal predict's, bad files become error rows, resume
after SIGKILL gives exactly one row per file, and the output directory's rules (docs/batch.md)."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
from conftest import assert_input_error, cli_script, run_cli, write_wav

pytest.importorskip("ray")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

import ast_deploy  # noqa: E402
from ast_deploy.batch.inputs import list_inputs  # noqa: E402
from ast_deploy.batch.store import META, OutputDir  # noqa: E402
from ast_deploy.events import EventConfig, prediction_events  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

RATE = 16000
WINDOW = 99 * 160 + 400  # the tiny model's 100 frames: 16240 samples (1.015 s)
# Bounded resources for every Ray of these tests: 2 logical CPUs, a small object store.
RAY_FLAGS = ["--cpus", "2", "--object-store-mib", "128", "--threads-per-actor", "1", "--no-progress"]


@pytest.fixture(scope="module")
def ray_local():
    """One local Ray for the in-process tests (the job uses a Ray already initialised and leaves it up),
    shut down at the end; no Ray process of it may outlive the module."""
    import psutil
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(
        address="local",
        num_cpus=2,
        object_store_memory=128 * 2**20,
        include_dashboard=False,
        log_to_driver=False,
        logging_level="ERROR",
        _node_ip_address="127.0.0.1",
    )
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    yield
    ray.shutdown()
    deadline = time.monotonic() + 30
    while (left := [p for p in psutil.Process().children(recursive=True) if p.pid in before and p.is_running()]) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.5)
    left = [p for p in left if p.status() != psutil.STATUS_ZOMBIE]
    assert not left, f"Ray processes left after shutdown: {[p.name() for p in left]}"


def tone(seconds: float, freq: float, rate: int = RATE, seed: int = 0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    noise = 0.02 * np.random.default_rng(seed).standard_normal(t.size)
    return (0.3 * np.sin(2 * np.pi * freq * t) + noise).astype(np.float32)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """Good files of several lengths, rates and channel counts, in nested folders."""
    root = tmp_path_factory.mktemp("corpus")
    (root / "a" / "b").mkdir(parents=True)
    write_wav(root / "short.wav", tone(0.4, 440))  # shorter than one window: one padded window
    write_wav(root / "a" / "one.wav", tone(1.0, 880, seed=1))
    write_wav(root / "a" / "long.wav", tone(3.7, 300, seed=2))  # several windows, the last end-aligned
    x = tone(2.2, 1200, 44100, seed=3)
    write_wav(root / "a" / "b" / "stereo_44k.wav", np.stack([x, 0.5 * x], axis=1), 44100)
    sf.write(str(root / "a" / "b" / "clip.flac"), tone(1.6, 600, seed=4), RATE, subtype="PCM_16")
    (root / "notes.txt").write_text("not audio, and not listed: only audio extensions are walked\n")
    return root


@pytest.fixture(scope="module")
def bad_corpus(tmp_path_factory, corpus) -> tuple[Path, dict[str, str]]:
    """Two good files and one of each bad kind, with a fragment its error must contain."""
    root = tmp_path_factory.mktemp("bad")
    write_wav(root / "good.wav", tone(1.2, 500))
    write_wav(root / "good2.wav", tone(2.5, 700, seed=5))
    whole = (root / "good2.wav").read_bytes()
    (root / "truncated.wav").write_bytes(whole[: len(whole) // 2])
    flac = (corpus / "a" / "b" / "clip.flac").read_bytes()
    (root / "truncated.flac").write_bytes(flac[: len(flac) // 2])
    (root / "empty.wav").write_bytes(b"")
    (root / "not_audio.mp3").write_text("this is text, not audio\n" * 20)
    write_wav(root / "no_samples.wav", np.zeros(0, np.float32))
    write_wav(root / "too_short.wav", tone(0.01, 440))  # 160 samples < one 400-sample frame
    os.symlink(root / "gone.wav", root / "unreadable.wav")  # a dangling link: cannot be opened
    expected = {
        "truncated.wav": "truncated",
        "truncated.flac": "not a readable audio file",
        "empty.wav": "not a readable audio file",
        "not_audio.mp3": "not a readable audio file",
        "no_samples.wav": "no samples",
        "too_short.wav": "shorter than one 25 ms analysis frame",
        "unreadable.wav": "no such file",
    }
    if os.geteuid() != 0:  # root reads any file whatever its mode
        write_wav(root / "no_permission.wav", tone(1.0, 300))
        os.chmod(root / "no_permission.wav", 0)
        expected["no_permission.wav"] = "not a readable audio file"
    return root, expected


def read_files(out: Path) -> dict[str, dict]:
    """The files table as {path: row}; a path twice is an error here."""
    rows = pq.read_table(out / "files").to_pylist()
    by_path = {r["path"]: r for r in rows}
    assert len(by_path) == len(rows), "a path has more than one row"
    return by_path


def read_timeline(out: Path) -> dict[str, list[dict]]:
    """The timeline table as {path: windows in the order of their index}."""
    by_path: dict[str, list[dict]] = {}
    for r in pq.read_table(out / "timeline").to_pylist():
        by_path.setdefault(r["path"], []).append(r)
    return {p: sorted(w, key=lambda r: r["window"]) for p, w in by_path.items()}


def run_batch(*args):
    return run_cli("batch", *args, *RAY_FLAGS)


# --- scores equal predict's --------------------------------------------------------------------


def test_batch_scores_equal_predict(ray_local, tiny_model_dir, corpus, tmp_path):
    out = tmp_path / "out"
    hop = 0.4
    result = run_batch(
        tiny_model_dir, corpus, "--out", out, "--scores", "float32", "--timeline", "--events", "--threshold", "0.3",
        "--hop", hop, "-k", "3", "--batch-size", "4", "--json",
    )  # fmt: skip
    assert result.code == 0, result.stderr
    summary = result.json()
    assert summary["listed"] == summary["processed"] == summary["ok"] == 5 and summary["errors"] == 0

    files = read_files(out)
    timeline = read_timeline(out)
    clf = ast_deploy.load(tiny_model_dir)
    config = EventConfig(threshold=0.3)
    audio = sorted(p for p in corpus.rglob("*") if p.suffix in (".wav", ".flac"))
    assert sorted(files) == [str(p) for p in audio]
    for path in audio:
        expected = clf.predict([path], top_k=3, hop_seconds=hop)[0]
        row = files[str(path)]
        assert row["status"] == "ok" and row["error"] is None
        assert row["windows"] == len(expected.starts)
        assert row["duration"] == pytest.approx(expected.duration, abs=1e-12)
        assert row["sample_rate"] == sf.info(str(path)).samplerate
        np.testing.assert_allclose(np.asarray(row["scores"]), expected.mean_scores, rtol=0, atol=1e-5)
        assert list(row["top_labels"]) == [t["label"] for t in expected.top(3)]
        np.testing.assert_allclose(row["top_scores"], [t["score"] for t in expected.top(3)], rtol=0, atol=1e-5)
        windows = timeline[str(path)]
        assert [w["window"] for w in windows] == list(range(len(expected.starts)))
        np.testing.assert_allclose([w["start"] for w in windows], np.array(expected.starts) / RATE, atol=1e-12)
        np.testing.assert_allclose([w["scores"] for w in windows], expected.window_scores, rtol=0, atol=1e-5)
        events = prediction_events(expected, config, hop)
        assert [(e["label"], e["onset"], e["offset"]) for e in row["events"]] == [
            (e.label, e.onset, e.offset) for e in events
        ]
    assert files[str(corpus / "a" / "long.wav")]["windows"] > 3  # the hop made overlapping windows
    meta = (out / META).read_text()
    assert '"sha256"' in meta and (out / "labels.csv").read_text().startswith("index,mid,display_name\n")


def test_float16_scores_uris_and_readers(ray_local, tiny_model_dir, corpus, tmp_path):
    """Inputs and --out as URIs (the object-store path through pyarrow filesystems, here file://)."""
    out = tmp_path / "out"
    result = run_batch(tiny_model_dir, f"file://{corpus / 'a'}", "--out", f"file://{out}", "--scores", "float16")
    assert result.code == 0, result.stderr
    table = pq.read_table(out / "files")
    assert table.schema.field("scores").type == pa.list_(pa.float16())
    assert table.schema.field("mtime").type == pa.timestamp("us", tz="UTC")
    clf = ast_deploy.load(tiny_model_dir)
    paths = table.column("path").to_pylist()
    assert sorted(paths) == sorted(f"file://{p}" for p in (corpus / "a").rglob("*") if p.suffix in (".wav", ".flac"))
    for path, scores in zip(paths, table.column("scores").to_pylist(), strict=True):
        np.testing.assert_allclose(scores, clf.predict([path[len("file://") :]])[0].mean_scores, atol=1e-3)
    assert not list(out.rglob("*.tmp"))
    # The dataset directory reads as it is in the usual tools.
    import pandas as pd

    assert len(pd.read_parquet(out / "files")) == 4
    if importlib.util.find_spec("polars"):  # not a dependency; read the same way when there
        import polars

        assert polars.read_parquet(str(out / "files" / "*.parquet")).height == 4
    if importlib.util.find_spec("duckdb"):
        import duckdb

        assert duckdb.sql(f"select count(*) from read_parquet('{out}/files/*.parquet')").fetchone()[0] == 4


# --- bad files ---------------------------------------------------------------------------------


# --- events with an artifact's stored thresholds, and AudioSet parents --------------------------------


@pytest.fixture(scope="module")
def audioset_artifact(tmp_path_factory) -> tuple[Path, Path]:
    """The streaming tests' micro model (its first label fires on a 440 Hz tone) with AudioSet labels,
    exported to TorchScript, and a folder of two files with tones."""
    from test_streaming import tones, write_micro_model

    from ast_deploy import load_checkpoint, save_checkpoint

    root = tmp_path_factory.mktemp("audioset")
    ckpt = load_checkpoint(write_micro_model(root / "micro"))
    labels = ["Beep, bleep", "Bark", "Guitar"]
    model = save_checkpoint(root / "model", ckpt.config, ckpt.state_dict, labels, ckpt.frontend)
    art = root / "art"
    result = run_cli("export", model, "--out", art, "--to", "torchscript", "--input", "waveform", "--no-verify")
    assert result.code == 0, result.stderr
    audio = root / "audio"
    audio.mkdir()
    write_wav(audio / "one.wav", tones([(1.0, 2.0)], 4.0))
    write_wav(audio / "two.wav", tones([(0.5, 1.5), (2.5, 3.25)], 3.5))
    return art, audio


def _batch_equals_predict(art: Path, audio: Path, out: Path, *flags) -> dict[str, dict]:
    """``batch`` and ``predict --json`` with the same flags: the same events (and roll-up); the rows."""
    result = run_batch(art, audio, "--out", out, "--hop", "0.25", *flags)
    assert result.code == 0, result.stderr
    rows = read_files(out)
    predicted = run_cli("predict", art, audio, "--hop", "0.25", "--json", *flags)
    assert predicted.code == 0, predicted.stderr
    results = predicted.json()["results"]
    assert sorted(r["source"] for r in results) == sorted(rows)
    for r in results:
        row = rows[r["source"]]
        assert ("events" in row) == ("events" in r)
        for e in row.get("events") or []:
            assert set(e) == set(r["events"][0]), "the same keys as predict's events"
        assert [{k: v for k, v in e.items() if k != "peak"} for e in row.get("events", [])] == [
            {k: v for k, v in e.items() if k != "peak"} for e in r.get("events", [])
        ]
        np.testing.assert_allclose(
            [e["peak"] for e in row.get("events", [])], [e["peak"] for e in r.get("events", [])], atol=1e-5
        )
        if "rollup" in r:
            assert [(p["label"], p["mid"]) for p in row["rollup"]] == [(p["label"], p["mid"]) for p in r["rollup"]]
            np.testing.assert_allclose(
                [p["score"] for p in row["rollup"]], [p["score"] for p in r["rollup"]], atol=1e-5
            )
        else:
            assert "rollup" not in row
    return rows


@pytest.mark.slow
def test_stored_thresholds_and_rollup_equal_predict(ray_local, audioset_artifact, tmp_path):
    """Without --thresholds, batch --events uses the thresholds the artifact directory carries, as
    predict does; --rollup adds each file's parents and, with --events, gives the parents' events."""
    import shutil

    from ast_deploy import thresholds as th

    art = Path(shutil.copytree(audioset_artifact[0], tmp_path / "art"))
    audio = audioset_artifact[1]

    def beeps(rows) -> int:
        return sum(e["label"] == "Beep, bleep" for row in rows.values() for e in row["events"])

    assert beeps(_batch_equals_predict(art, audio, tmp_path / "plain", "--events")) == 3
    silent = tmp_path / "silent.csv"
    silent.write_text('"Beep, bleep",1.01,1.01\n')
    th.store_in_artifact(art, silent)
    assert beeps(_batch_equals_predict(art, audio, tmp_path / "stored", "--events")) == 0

    spec = "Animal;Source-ambiguous sounds"
    out = tmp_path / "rollup"
    rows = _batch_equals_predict(art, audio, out, "--events", "--rollup", spec)
    # The stored file names the model's labels, not parents: the parent of "Beep, bleep" keeps its 3 events.
    parent = [e for row in rows.values() for e in row["events"] if e["label"] == "Source-ambiguous sounds"]
    assert len(parent) == 3 and {e["mid"] for e in parent} == {"/t/dd00098"} and {e["index"] for e in parent} == {1}
    settings = json.loads((out / META).read_text())["settings"]
    assert settings["rollup"] == {
        "spec": spec,
        "parents": [{"label": "Animal", "mid": "/m/0jbk"}, {"label": "Source-ambiguous sounds", "mid": "/t/dd00098"}],
    }
    rows = _batch_equals_predict(art, audio, tmp_path / "rollup_only", "--rollup", "0")
    assert all(
        {p["label"] for p in row["rollup"]} == {"Animal", "Music", "Source-ambiguous sounds"} for row in rows.values()
    )
    assert "events" not in next(iter(rows.values()))


def test_bad_files_become_error_rows_and_the_job_goes_on(ray_local, tiny_model_dir, bad_corpus, tmp_path):
    root, expected = bad_corpus
    out = tmp_path / "out"
    result = run_batch(tiny_model_dir, root, "--out", out, "--json", "--batch-size", "3")
    assert result.code == 0, result.stderr
    summary = result.json()
    assert summary["errors"] == len(expected) and summary["ok"] == 2
    files = read_files(out)
    assert len(files) == len(expected) + 2
    for name, fragment in expected.items():
        row = files[str(root / name)]
        assert row["status"] == "error", name
        assert str(root / name) in row["error"] and fragment in row["error"], row["error"]
        assert "\n" not in row["error"]
        assert row["top_labels"] is None and row["duration"] is None and row["windows"] is None
    clf = ast_deploy.load(tiny_model_dir)
    for name in ("good.wav", "good2.wav"):
        row = files[str(root / name)]
        assert row["status"] == "ok" and row["error"] is None
        assert list(row["top_labels"]) == [t["label"] for t in clf.predict([root / name])[0].top(5)]


def test_truncated_wav_is_found_from_its_header(tmp_path):
    from ast_deploy.batch.decode import wav_truncation

    path = write_wav(tmp_path / "a.wav", tone(1.0, 440))
    assert wav_truncation(str(path)) is None
    data = path.read_bytes()
    (tmp_path / "cut.wav").write_bytes(data[:-100])
    assert "declares 32000 bytes of audio, it holds 31900" in wav_truncation(str(tmp_path / "cut.wav"))
    streamed = bytearray(data)
    streamed[40:44] = (0xFFFFFFFF).to_bytes(4, "little")  # length unknown when written (a pipe)
    (tmp_path / "streamed.wav").write_bytes(bytes(streamed[:-100]))
    assert wav_truncation(str(tmp_path / "streamed.wav")) is None


# --- resume ------------------------------------------------------------------------------------


def test_rerun_processes_only_new_and_changed_files(ray_local, tiny_model_dir, tmp_path):
    root = tmp_path / "audio"
    root.mkdir()
    for i in range(4):
        write_wav(root / f"f{i}.wav", tone(1.0 + 0.3 * i, 300 + 100 * i, seed=i))
    out = tmp_path / "out"
    first = run_batch(tiny_model_dir, root, "--out", out, "--json")
    assert first.code == 0, first.stderr
    assert first.json()["processed"] == 4

    again = run_batch(tiny_model_dir, root, "--out", out, "--json")
    assert again.code == 0 and again.json()["processed"] == 0 and again.json()["already_done"] == 4

    write_wav(root / "new.wav", tone(1.4, 1000, seed=9))
    write_wav(root / "f1.wav", tone(2.9, 2000, seed=10))  # changed: other size and mtime
    third = run_batch(tiny_model_dir, root, "--out", out, "--json")
    assert third.code == 0, third.stderr
    s = third.json()
    assert (s["processed"], s["replaced"], s["already_done"]) == (2, 1, 3)
    files = read_files(out)
    assert sorted(files) == sorted(str(p) for p in root.glob("*.wav"))
    clf = ast_deploy.load(tiny_model_dir)
    row = files[str(root / "f1.wav")]
    assert row["size"] == (root / "f1.wav").stat().st_size
    assert row["windows"] == len(clf.predict([root / "f1.wav"])[0].starts) == 3


def test_retry_errors_replaces_error_rows(ray_local, tiny_model_dir, tmp_path):
    """An error that was not the file's fault (a flaky network mount): same size and mtime, readable now."""
    root = tmp_path / "audio"
    root.mkdir()
    write_wav(root / "ok.wav", tone(1.0, 440))
    flaky = write_wav(root / "flaky.wav", tone(1.0, 660))
    good = flaky.read_bytes()
    flaky.write_bytes(b"XXXX" + good[4:])  # not RIFF: unreadable, same size
    os.utime(flaky, ns=(10**18, 10**18))
    out = tmp_path / "out"
    assert run_batch(tiny_model_dir, root, "--out", out).code == 0
    assert read_files(out)[str(flaky)]["status"] == "error"
    flaky.write_bytes(good)
    os.utime(flaky, ns=(10**18, 10**18))
    same = run_batch(tiny_model_dir, root, "--out", out, "--json")
    assert same.code == 0 and same.json()["processed"] == 0  # same key: done, error or not
    result = run_batch(tiny_model_dir, root, "--out", out, "--json", "--retry-errors")
    assert result.code == 0, result.stderr
    assert (result.json()["replaced"], result.json()["ok"], result.json()["processed"]) == (1, 1, 1)
    files = read_files(out)
    assert len(files) == 2 and {r["status"] for r in files.values()} == {"ok"}


def test_other_settings_or_model_are_refused_on_the_same_out(ray_local, tiny_model_dir, tmp_path):
    root = tmp_path / "audio"
    root.mkdir()
    write_wav(root / "a.wav", tone(1.0, 440))
    out = tmp_path / "out"
    assert run_batch(tiny_model_dir, root, "--out", out, "-k", "3").code == 0
    assert_input_error(run_batch(tiny_model_dir, root, "--out", out, "-k", "4"), "top_k: 3 there, 4 now")
    assert_input_error(run_batch(tiny_model_dir, root, "--out", out, "-k", "3", "--timeline"), "timeline")


def test_a_killed_commit_is_cleaned_at_the_next_start(tmp_path):
    """Whatever point a job was killed at, the next start sees only committed shards: temporaries and a
    timeline shard whose files shard never got renamed (killed between the two renames) are removed."""
    from ast_deploy.batch.schema import Columns

    cols = Columns(timeline=True)
    meta = {"format": "ast-deploy-batch", "format_version": 1, "model": {"sha256": "x"}, "labels": [], "settings": {}}
    store = OutputDir(str(tmp_path / "out"))
    store.open(meta)
    files = cols.files_schema().empty_table()
    store.write(files, cols.timeline_schema().empty_table())
    store.close()
    (tmp_path / "out" / "timeline" / "part-orphan-000000.parquet").write_bytes(b"half")
    (tmp_path / "out" / "files" / ".part-x.parquet.abc.tmp").write_bytes(b"half")
    again = OutputDir(str(tmp_path / "out"))
    again.open(meta)
    assert sorted(p.name for p in (tmp_path / "out" / "timeline").iterdir()) == again.shards
    assert sorted(p.name for p in (tmp_path / "out" / "files").iterdir()) == again.shards
    # One job at a time: a second one on the same directory is refused while the first holds it.
    with pytest.raises(ast_deploy.InputError, match="another ast-deploy batch job"):
        OutputDir(str(tmp_path / "out")).open(meta)
    again.close()


def _descendants(pid: int) -> list:
    import psutil

    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _kill_tree(proc: subprocess.Popen, children: list) -> None:
    """SIGKILL the job (for real: the test's point), then the Ray processes it had started (a local Ray's
    agents outlive a SIGKILLed driver), each by its pid."""
    import psutil

    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    for child in children + _descendants(proc.pid):
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()
    psutil.wait_procs(children, timeout=10)


@pytest.mark.slow
def test_sigkill_at_any_point_then_rerun_gives_one_row_per_file(tiny_model_dir, tmp_path):
    root = tmp_path / "audio"
    (root / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = []
    for i in range(48):
        name = root / ("sub" if i % 2 else "") / f"f{i:02d}.wav"
        write_wav(name, tone(rng.uniform(0.3, 2.5), rng.uniform(200, 3000), seed=i))
        names.append(str(name))
    (root / "broken.wav").write_bytes(b"RIFF")  # an error row must be resumed exactly once too
    names.append(str(root / "broken.wav"))
    out = tmp_path / "out"
    cmd = [cli_script(), "batch", str(tiny_model_dir), str(root), "--out", str(out), "--timeline", "--shard-rows", "4",
           "--batch-size", "2", "--json", *RAY_FLAGS]  # fmt: skip
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "COLUMNS": "200"}

    def shards() -> int:
        return len(list((out / "files").glob("part-*.parquet"))) if (out / "files").is_dir() else 0

    # Killed while Ray starts (nothing committed yet), then killed after a few shards were committed.
    for until in (lambda: time.sleep(3) or True, lambda: shards() >= 3):
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, start_new_session=True)
        deadline = time.monotonic() + 240
        while not until() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, f"the job ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"
        _kill_tree(proc, _descendants(proc.pid))
    killed_with = shards()
    assert 3 <= killed_with < 13, "the kill did not land half-way"

    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    files = read_files(out)  # (asserts one row per path)
    assert sorted(files) == sorted(names)
    assert files[str(root / "broken.wav")]["status"] == "error"
    timeline = read_timeline(out)
    for path, row in files.items():
        if row["status"] == "ok":  # every window of every file once, none from a killed attempt
            assert [w["window"] for w in timeline[path]] == list(range(row["windows"])), path
    assert set(timeline) == {p for p, r in files.items() if r["status"] == "ok"}
    assert not [p for p in out.rglob("*.tmp")]


# --- inputs ------------------------------------------------------------------------------------


def test_inputs_folders_globs_and_lists(tmp_path):
    root = tmp_path / "data"
    (root / "x").mkdir(parents=True)
    (root / ".hidden").mkdir()
    for name in ("x/a.wav", "x/b.FLAC", "c.ogg", ".hidden/h.wav", "x/readme.md"):
        (root / name).write_bytes(b"x" * 10)
    (tmp_path / "list.txt").write_text(
        "# a comment\n\ndata/c.ogg\ndata/missing.wav\n" + str(root / "x" / "a.wav") + "\n"
    )
    (tmp_path / "list.csv").write_text("label,path\ndog,data/x/readme.md\n")
    listing = list_inputs([str(root)])
    assert listing.table.column("path").to_pylist() == [
        str(root / "c.ogg"),
        str(root / "x/a.wav"),
        str(root / "x/b.FLAC"),
    ]
    assert listing.table.column("size").to_pylist() == [10, 10, 10]
    both = list_inputs([str(root / "x"), str(root / "**" / "*.wav"), str(root / "x" / "a.wav")])
    assert both.table.column("path").to_pylist() == [str(root / "x/a.wav"), str(root / "x/b.FLAC")]  # once each
    listed = list_inputs([str(tmp_path / "list.txt"), str(tmp_path / "list.csv")])
    rows = dict(zip(listed.table.column("path").to_pylist(), listed.table.column("size").to_pylist(), strict=True))
    # Relative to the list's folder; a missing entry is kept (it becomes an error row); any extension in a list.
    assert rows == {
        str(root / "c.ogg"): 10,
        str(root / "missing.wav"): -1,
        str(root / "x/a.wav"): 10,
        str(root / "x/readme.md"): 10,
    }
    uri = list_inputs(["file://" + str(root / "x")])
    assert uri.table.column("path").to_pylist() == [
        "file://" + str(root / "x/a.wav"),
        "file://" + str(root / "x/b.FLAC"),
    ]


def test_bad_input_is_one_line(tiny_model_dir, tmp_path):
    audio = write_wav(tmp_path / "a.wav", tone(1.0, 440))
    (tmp_path / "empty").mkdir()
    (tmp_path / "a_file").write_text("x")
    assert_input_error(
        run_cli("batch", tmp_path / "nope", audio, "--out", tmp_path / "o1"), "nope", "no such checkpoint"
    )
    assert_input_error(
        run_cli("batch", tiny_model_dir, tmp_path / "empty", "--out", tmp_path / "o2"), "no audio files found"
    )
    assert_input_error(
        run_cli("batch", tiny_model_dir, tmp_path / "zz*.wav", "--out", tmp_path / "o3"), "no file or folder matches"
    )
    assert_input_error(
        run_cli("batch", tiny_model_dir, tmp_path / "missing.wav", "--out", tmp_path / "o4"), "missing.wav"
    )
    assert_input_error(
        run_cli("batch", tiny_model_dir, audio, "--out", tmp_path / "a_file"), "a_file", "not a directory"
    )
    assert_input_error(run_cli("batch", tiny_model_dir, audio, "--out", tmp_path), "not a batch output")
    assert_input_error(run_cli("batch", tiny_model_dir, audio), "--out")
    assert_input_error(
        run_cli("batch", tiny_model_dir, audio, "--out", tmp_path / "o5", "--scores", "int8"), "--scores"
    )
    assert_input_error(
        # an artifact exported before embeddings (logits only): refused before Ray starts
        run_cli("batch", Path(__file__).parent / "manifest_v1", audio, "--out", tmp_path / "o6", "--embeddings"),
        "--embeddings", "no embedding output",
    )  # fmt: skip
    assert_input_error(run_cli("batch", tiny_model_dir, audio, "--out", tmp_path / "o7", "--backend", "onnx"), "onnx")
    assert_input_error(
        run_cli("batch", tiny_model_dir, audio, "--out", tmp_path / "o8", "--rollup", "0"), "not ontology classes"
    )
    assert not any((tmp_path / f"o{i}").exists() for i in range(1, 9))


def test_resampled_audio_matches_predict_input(speech, tmp_path):
    """The decode task's samples are load_audio's, which equal predict's streamed resampling (docs/streaming.md, 2)."""
    from ast_deploy.batch.decode import decode

    path = tmp_path / "speech_22k.wav"
    sf.write(str(path), soxr.resample(speech, RATE, 22050).astype(np.float32), 22050, subtype="FLOAT")
    row = decode({"path": str(path), "size": 1, "mtime": 1}, RATE, 400, 25.0)
    assert row["status"] == "ok" and row["sample_rate"] == 22050 and row["error"] == ""
    np.testing.assert_array_equal(row["samples"], ast_deploy.load_audio(path))


def test_embedding_columns_are_wired_through_the_actor(tiny_model_dir, speech):
    """The actor and the schema carry embeddings: with an ``outputs`` that returns (here made-up)
    embeddings, the clip embedding is the mean of the windows' and the timeline carries each window's
    (the actor called directly, without Ray; tests/test_embeddings.py checks the model's own)."""
    from ast_deploy.batch.model import ModelSpec, ScoreSettings, scorer_class
    from ast_deploy.batch.schema import Columns, split_timeline

    cols = Columns(scores="float32", embeddings=True, timeline=True)
    cls = scorer_class(ModelSpec(str(tiny_model_dir), None, threads=1), ScoreSettings(columns=cols, batch_size=3))

    class WithEmbeddings(cls):
        def outputs(self, windows, lengths):
            scores, _ = super().outputs(windows, lengths)
            return scores, np.stack([windows.mean(axis=1), windows.std(axis=1), lengths / 1e4], axis=1)

    scorer = WithEmbeddings()
    batch = {
        "path": np.array(["a.wav", "bad.wav", "b.wav"]),
        "size": np.array([1, 2, 3]),
        "mtime": np.array([10, -1, 30]),
        "sample_rate": np.array([16000, 0, 16000]),
        "samples": np.array([speech, np.zeros(0, np.float32), speech[:5000]], dtype=object),
        "status": np.array(["ok", "error", "ok"]),
        "error": np.array(["", "bad.wav: no", ""]),
    }
    files, timeline = split_timeline(scorer(batch), cols)
    assert files.schema == cols.files_schema() and timeline.schema == cols.timeline_schema()
    rows = files.to_pylist()
    assert [r["status"] for r in rows] == ["ok", "error", "ok"] and rows[1]["embedding"] is None
    assert rows[1]["mtime"] is None and rows[0]["size"] == 1
    windows = [w for w in timeline.to_pylist() if w["path"] == "a.wav"]
    assert len(windows) == rows[0]["windows"] == 5
    expected = ast_deploy.load(tiny_model_dir).predict([(speech, RATE)])[0]
    np.testing.assert_allclose(rows[0]["scores"], expected.mean_scores, atol=1e-5)
    np.testing.assert_allclose(rows[0]["embedding"], np.mean([w["embedding"] for w in windows], axis=0), atol=1e-6)
    first = speech[:WINDOW]
    np.testing.assert_allclose(windows[0]["embedding"], [first.mean(), first.std(), WINDOW / 1e4], rtol=1e-5)
