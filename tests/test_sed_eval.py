"""Event evaluation: what ``evaluate-events`` reports equals sed_eval and sed_scores_eval (PSDS) called
directly on the same files; the readers; the generated soundscapes it is tested on."""

from __future__ import annotations

import itertools
import json
import math
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import TINY_CASE, TINY_PTH, assert_input_error, authors_flags, authors_options, run_cli

from ast_deploy import InputError, sed

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # dcase_util imports pkg_resources
    import dcase_util
    import sed_eval
import sed_scores_eval
from sed_scores_eval.base_modules.scores import create_score_dataframe

pytestmark = pytest.mark.usefixtures("one_torch_thread")

RATE = 16000
TINY_NAMES = {"beep": "class_0", "chirp": "class_1", "knock": "class_2"}


def as_plain(obj):
    """A library result as JSON would carry it: numbers as floats, NaN as None."""
    text = json.dumps(obj, default=float)
    return json.loads(text, parse_constant=lambda c: None)


@pytest.fixture(scope="module")
def scapes(tmp_path_factory) -> Path:
    """Six generated soundscapes of synthetic sounds, relabelled with the tiny model's label names,
    the reference TSV beside the audio."""
    from ast_deploy_training.soundscapes import generate

    root = tmp_path_factory.mktemp("sed")
    generate(root / "gen", {"test": 6}, duration=6.0, seed=7, keywords=(), progress=False)
    ref = sed.read_reference(root / "gen" / "test.tsv")
    out = root / "set"
    out.mkdir()
    lines = ["filename\tonset\toffset\tevent_label"]
    for name, events in ref.items():
        shutil.copy(root / "gen" / name, out / Path(name).name)
        lines += [f"{Path(name).name}\t{on:.3f}\t{off:.3f}\t{TINY_NAMES[label]}" for on, off, label in events]
    (out / "ref.tsv").write_text("\n".join(lines) + "\n")
    return out


def direct_sed_eval(reference: dict, estimated: dict, durations: dict, classes: list[str]) -> dict:
    """sed_eval as its documentation shows it: one evaluate() per file, then results()."""
    seg = sed_eval.sound_event.SegmentBasedMetrics(event_label_list=classes, time_resolution=1.0)
    ev = sed_eval.sound_event.EventBasedMetrics(event_label_list=classes, t_collar=0.2, percentage_of_length=0.2)
    for name, events in reference.items():
        ref = dcase_util.containers.MetaDataContainer(
            [{"filename": name, "event_label": lab, "onset": on, "offset": off} for on, off, lab in events]
        )
        est = dcase_util.containers.MetaDataContainer(
            [{"filename": name, "event_label": lab, "onset": on, "offset": off} for on, off, lab in estimated[name]]
        )
        seg.evaluate(reference_event_list=ref, estimated_event_list=est, evaluated_length_seconds=durations[name])
        ev.evaluate(reference_event_list=ref, estimated_event_list=est)
    return {"event_based": as_plain(ev.results()), "segment_based": as_plain(seg.results())}


def perturbed(reference: dict, seed: int) -> dict:
    """Estimates that are partly right: jittered, dropped, relabelled and inserted events."""
    rng = np.random.default_rng(seed)
    labels = sorted({e[2] for evs in reference.values() for e in evs})
    out = {}
    for name, events in reference.items():
        est = []
        for on, off, label in events:
            r = rng.random()
            if r < 0.15:
                continue  # missed
            if r < 0.25:
                label = labels[(labels.index(label) + 1) % len(labels)]  # confused
            jitter = rng.normal(0, 0.15, 2)
            est.append((max(0.0, on + jitter[0]), max(on + jitter[0] + 0.05, off + jitter[1]), label))
        if rng.random() < 0.5:
            t = rng.uniform(0, 5)
            est.append((t, t + rng.uniform(0.1, 0.6), labels[int(rng.integers(len(labels)))]))  # false alarm
        out[name] = sorted(est)
    return out


def test_metrics_of_predicted_events_equal_sed_eval_and_psds_called_directly(scapes, tmp_path) -> None:
    reference = sed.read_reference(scapes / "ref.tsv")
    estimated = perturbed(reference, seed=1)
    durations = {name: sf.info(str(scapes / name)).duration for name in reference}
    rng = np.random.default_rng(2)
    peaks = {name: list(rng.uniform(0.3, 1.0, len(evs))) for name, evs in estimated.items()}
    doc = {
        "model": "m",
        "backend": "pytorch",
        "results": [
            {
                "source": str(scapes / name),
                "duration": durations[name],
                "events": [
                    {"label": lab, "index": 0, "onset": on, "offset": off, "peak": p}
                    for (on, off, lab), p in zip(evs, peaks[name], strict=True)
                ],
            }
            for name, evs in estimated.items()
        ],
    }
    events_json = tmp_path / "events.json"
    events_json.write_text(json.dumps(doc))
    result = run_cli("evaluate-events", events_json, "--reference", scapes / "ref.tsv", "--json")
    assert result.code == 0, result.stderr
    got = result.json()
    classes = sorted(TINY_NAMES.values())
    assert got["classes"] == classes and got["files"] == len(reference)
    assert got["sed_eval"] == direct_sed_eval(reference, estimated, durations, classes)
    f1 = got["sed_eval"]["event_based"]["overall"]["f_measure"]["f_measure"]
    assert 0.2 < f1 < 0.95  # partly right, as made

    # PSDS: each event scores its peak inside itself, 0 elsewhere (what can be said of events alone).
    frames = {}
    for name, evs in estimated.items():
        ts = np.unique([0.0, durations[name], *(t for on, off, _ in evs for t in (on, off) if t <= durations[name])])
        mid = (ts[:-1] + ts[1:]) / 2
        scores = np.zeros((len(mid), len(classes)))
        for (on, off, lab), p in zip(evs, peaks[name], strict=True):
            col = classes.index(lab)
            inside = (mid > on) & (mid < off)
            scores[inside, col] = np.maximum(scores[inside, col], p)
        frames[name] = create_score_dataframe(scores, ts, classes)
    for key, scenario in {
        "scenario1": {"dtc_threshold": 0.7, "gtc_threshold": 0.7, "cttc_threshold": None, "alpha_ct": 0.0},
        "scenario2": {"dtc_threshold": 0.1, "gtc_threshold": 0.1, "cttc_threshold": 0.3, "alpha_ct": 0.5},
    }.items():
        value, single, _, _ = sed_scores_eval.intersection_based.psds(
            scores=frames, ground_truth=reference, audio_durations=durations, alpha_st=1.0, max_efpr=100.0, **scenario
        )
        assert got["psds"][key]["psds"] == pytest.approx(value, abs=1e-12)
        assert got["psds"][key]["single_class_psds"] == pytest.approx(as_plain(single), abs=1e-12)
    assert 0 < got["psds"]["scenario1"]["psds"] <= 1


def spec_timestamps(p, hop: int) -> np.ndarray:
    """Frame boundaries from docs/streaming.md section 4, written out here: each window stands for
    [centre - hop/2, centre + hop/2] clipped to itself; the first frame starts at 0, the last ends
    at the end of the audio."""
    bounds = [0.0]
    for s in p.starts[1:]:
        e = min(s + p.window, p.num_samples)
        bounds.append(max(2 * s, s + e - hop) / (2 * RATE))
    bounds.append(p.num_samples / RATE)
    return np.asarray(bounds)


def test_metrics_of_a_model_equal_the_libraries_on_its_own_windows(scapes, tmp_path) -> None:
    import ast_deploy
    from ast_deploy.events import EventConfig, prediction_events

    hop_s = 0.25
    args = [TINY_PTH, *authors_flags(TINY_CASE), "--reference", scapes / "ref.tsv", "--hop", hop_s]
    plot = tmp_path / "classes.png"
    result = run_cli("evaluate-events", *args, "--threshold", "0.5", "--json", "--plot", plot, "--no-progress")
    assert result.code == 0, result.stderr
    got = result.json()
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    clf = ast_deploy.load(TINY_PTH, options=authors_options(TINY_CASE))
    reference = sed.read_reference(scapes / "ref.tsv")
    predictions = clf.predict([str(scapes / name) for name in reference], hop_seconds=hop_s)
    config = EventConfig(threshold=0.5)
    estimated = {
        Path(p.source).name: [(e.onset, e.offset, e.label) for e in prediction_events(p, config, hop_s)]
        for p in predictions
    }
    durations = {Path(p.source).name: p.duration for p in predictions}
    assert got["classes"] == clf.labels
    assert got["sed_eval"] == direct_sed_eval(reference, estimated, durations, clf.labels)
    assert got["sed_eval"]["event_based"]["overall"]["error_rate"]["error_rate"] is not None

    present = [c for c in clf.labels if any(e[2] == c for evs in reference.values() for e in evs)]
    hop = round(hop_s * RATE)
    frames = {
        Path(p.source).name: create_score_dataframe(
            p.window_scores[:, [clf.labels.index(c) for c in present]].astype(np.float64),
            spec_timestamps(p, hop),
            present,
        )
        for p in predictions
    }
    value, _, _, _ = sed_scores_eval.intersection_based.psds(
        scores=frames,
        ground_truth=reference,
        audio_durations=durations,
        dtc_threshold=0.7,
        gtc_threshold=0.7,
        alpha_ct=0.0,
        alpha_st=1.0,
        max_efpr=100.0,
    )
    assert got["psds"]["classes"] == present
    assert got["psds"]["scenario1"]["psds"] == pytest.approx(value, abs=1e-12)
    assert got["psds_from"] == "window scores"

    # The same events through predict --events --json, then evaluated as a file: the same figures.
    predicted = run_cli(
        "predict", TINY_PTH, *authors_flags(TINY_CASE), *(scapes / n for n in reference), "--hop", hop_s,
        "--events", "--threshold", "0.5", "--json",
    )  # fmt: skip
    assert predicted.code == 0, predicted.stderr
    (tmp_path / "predicted.json").write_text(predicted.stdout)
    again = run_cli("evaluate-events", tmp_path / "predicted.json", "--reference", scapes / "ref.tsv", "--json")
    assert again.code == 0, again.stderr
    # Equal, except what depends on the classes evaluated: a predict JSON does not say which labels the
    # model has, only those it detected (the segment-based accuracy figures count every class's true
    # negatives, and the class-wise average is over the classes evaluated).
    ev, ev_model = again.json()["sed_eval"]["event_based"], got["sed_eval"]["event_based"]
    assert ev["overall"] == ev_model["overall"]
    assert again.json()["classes"] == [c for c in clf.labels if c in ev["class_wise"]]
    assert all(ev["class_wise"][c] == ev_model["class_wise"][c] for c in again.json()["classes"])
    seg, seg_model = again.json()["sed_eval"]["segment_based"], got["sed_eval"]["segment_based"]
    assert seg["overall"]["f_measure"] == seg_model["overall"]["f_measure"]
    assert seg["overall"]["error_rate"] == seg_model["overall"]["error_rate"]


def test_per_class_thresholds_change_the_events(scapes, tmp_path) -> None:
    """--thresholds (a file from `ast-deploy thresholds`) is applied per class by evaluate-events."""
    args = [TINY_PTH, *authors_flags(TINY_CASE), "--reference", scapes / "ref.tsv", "--hop", "0.5", "--json"]
    low = run_cli("evaluate-events", *args, "--threshold", "0.0")
    assert low.code == 0, low.stderr
    csv = tmp_path / "t.csv"
    csv.write_text("label,on,off\nclass_0,1.01,1.01\n")  # class_0 can never fire
    high = run_cli("evaluate-events", *args, "--threshold", "0.0", "--thresholds", csv)
    assert high.code == 0, high.stderr
    nsys = lambda r, c: r.json()["sed_eval"]["event_based"]["class_wise"][c]["count"]["Nsys"]  # noqa: E731
    assert nsys(low, "class_0") > 0 and nsys(high, "class_0") == 0
    assert nsys(high, "class_1") == nsys(low, "class_1")
    assert high.json()["event_config"]["thresholds"] == {"class_0": [1.01, 1.01]}


# --- readers and bad input ------------------------------------------------------------------------


def test_reference_reader(tmp_path) -> None:
    path = tmp_path / "r.tsv"
    path.write_text("filename\tonset\toffset\tevent_label\n# a comment\na.wav\t0.5\t1.25\tdog\nb.wav\t\t\t\nc.wav\n")
    assert sed.read_reference(path) == {"a.wav": [(0.5, 1.25, "dog")], "b.wav": [], "c.wav": []}


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("a.wav\t1.0\t0.5\tdog\n", "need 0 <= onset < offset"),
        ("a.wav\tx\t2\tdog\n", "must be numbers"),
        ("a.wav\t1\t2\n", "got 3 field(s)"),
        ("a.wav\t1\t2\t\n", "empty filename or event_label"),
        ("a.wav\tnan\t2\tdog\n", "need 0 <= onset < offset"),
    ],
)
def test_bad_reference_rows_name_the_line(tmp_path, text, fragment) -> None:
    path = tmp_path / "r.tsv"
    path.write_text("filename\tonset\toffset\tevent_label\n" + text)
    with pytest.raises(InputError) as e:
        sed.read_reference(path)
    assert str(e.value).startswith(f"{path}:2: ") and fragment in str(e.value)


def test_events_readers(tmp_path) -> None:
    lines = tmp_path / "e.jsonl"
    lines.write_text('{"source": "a.wav", "label": "dog", "index": 0, "onset": 1, "offset": 2, "peak": 0.9}\n')
    est = sed.read_predict_events(lines)
    assert est.events == {"a.wav": [(1.0, 2.0, "dog")]} and est.durations == {"a.wav": None}
    assert est.peaks == {"a.wav": [0.9]}


def test_cli_bad_input_is_one_line(scapes, tmp_path) -> None:
    ref = scapes / "ref.tsv"
    no_events = tmp_path / "p.json"
    no_events.write_text(json.dumps({"results": [{"source": "x.wav", "duration": 1.0, "top": []}]}))
    assert_input_error(run_cli("evaluate-events", no_events, "--reference", ref), "has no events", "--events")
    elsewhere = tmp_path / "q.json"
    elsewhere.write_text(json.dumps({"results": [{"source": "nowhere.wav", "duration": 1.0, "events": []}]}))
    assert_input_error(run_cli("evaluate-events", elsewhere, "--reference", ref), "nowhere.wav: not in the reference")
    assert_input_error(run_cli("evaluate-events", elsewhere), "missing --reference")
    bad_thresholds = tmp_path / "t.csv"
    bad_thresholds.write_text("label,on,off\nclass_0,0.5\ndog,0.2\n")
    result = run_cli(
        "evaluate-events", TINY_PTH, *authors_flags(TINY_CASE), "--reference", ref, "--thresholds", bad_thresholds
    )
    assert_input_error(result, f"{bad_thresholds}:3", "unknown label 'dog'")
    inverted = tmp_path / "inv.csv"
    inverted.write_text("class_0,0.2,0.5\n")
    result = run_cli(
        "evaluate-events", TINY_PTH, *authors_flags(TINY_CASE), "--reference", ref, "--thresholds", inverted
    )
    assert_input_error(result, f"{inverted}:1", "above the on threshold")
    assert_input_error(
        run_cli("evaluate-events", elsewhere, "--reference", ref, "--collar", "-1"), "--collar must be a positive"
    )


# --- the generated soundscapes --------------------------------------------------------------------


def test_generated_soundscapes_hold_their_events(tmp_path) -> None:
    from ast_deploy_training.soundscapes import generate

    out = tmp_path / "s"
    generate(out, {"valid": 3}, duration=5.0, seed=1, keywords=(), progress=False)
    meta = json.loads((out / "meta.json").read_text())
    ref = sed.read_reference(out / "valid.tsv")
    for scape in meta["soundscapes"]:
        events = ref[scape["file"]]
        assert events == [(round(e["onset"], 3), round(e["offset"], 3), e["label"]) for e in scape["events"]]
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(events))  # no overlaps
        x, rate = sf.read(str(out / scape["file"]))
        assert rate == RATE and len(x) == 5 * RATE
        inside = np.zeros(len(x), bool)
        for on, off, _ in events:
            inside[int(on * RATE) : int(off * RATE)] = True
        # Events stand above the background (SNR 0-15 dB against its RMS): more energy inside.
        assert np.mean(x[inside] ** 2) > 1.5 * np.mean(x[~inside] ** 2)
    again = tmp_path / "again"
    generate(again, {"valid": 3}, duration=5.0, seed=1, keywords=(), progress=False)
    assert (again / "valid.tsv").read_bytes() == (out / "valid.tsv").read_bytes()
    assert (again / meta["soundscapes"][0]["file"]).read_bytes() == (out / meta["soundscapes"][0]["file"]).read_bytes()


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed (make system-deps)")
def test_keywords_are_spoken_by_the_splits_own_voices(tmp_path) -> None:
    from ast_deploy_training.quickstart_data import KEYWORDS, VOICES
    from ast_deploy_training.soundscapes import generate

    out = tmp_path / "k"
    summary = generate(out, {"test": 2}, duration=6.0, seed=0, keyword_share=1.0, progress=False)
    meta = json.loads((out / "meta.json").read_text())
    events = [e for s in meta["soundscapes"] for e in s["events"]]
    assert summary["events"]["test"] == len(events) >= 4
    for e in events:
        assert e["kind"] == "keyword" and e["label"] in KEYWORDS
        assert e["source"]["voice"].split("+")[1] in VOICES["test"]  # never a training voice
        assert 0.1 < e["offset"] - e["onset"] < 1.2


def test_window_timestamps_tile_the_file() -> None:
    from ast_deploy.windows import window_starts

    n, window, hop = 50_000, 16_000, 4_000
    starts = window_starts(n, window, hop)
    ts = sed.window_timestamps(starts, window, n, hop, RATE)
    assert ts[0] == 0 and ts[-1] == n / RATE and np.all(np.diff(ts) > 0) and len(ts) == len(starts) + 1
    # Regular windows: boundaries at each window's centre - hop/2.
    assert ts[1:-2] == pytest.approx([(s + window / 2 - hop / 2) / RATE for s in starts[1:-1]])
    assert math.isclose(ts[-2], (starts[-1] + window / 2 - hop / 2) / RATE) or ts[-2] > ts[-3]
