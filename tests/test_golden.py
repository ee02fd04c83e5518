"""The golden cases of ``tests/golden/``: one window rule, one event algorithm, one manifest reading.

The same JSON files are read here against the Python runtime (``ast_deploy.windows``,
``ast_deploy.events``, ``read_manifest``) and by ``ast_golden_check`` (``cpp/tests/golden_check.cpp``)
against the C++ library, so the two cannot drift apart without one of them failing:

- ``windows.json``: window starts and ends (shorter than a window, exactly a window, hops that do
  and do not divide the rest, hops longer than the window), seconds -> samples rounding (half to
  even), and the refusal of audio without an analysis frame;
- ``events.json``: per-window scores -> events (thresholds with hysteresis, per-label thresholds,
  merge gap, minimum duration, the end-aligned window, a single short window);
- ``manifests/``: format 1 and 2, with and without the recorded window sizes, and manifests one
  reader or both must refuse. Every one of them is valid against ``manifest.schema.json``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO_ROOT
from conftest import run_command as _run

from ast_deploy.errors import InputError
from ast_deploy.events import EventConfig, EventTracker, detect_events
from ast_deploy.export.manifest import read_manifest, validate_manifest
from ast_deploy.windows import (
    check_audio_length,
    closing_window,
    hop_samples,
    regular_window_count,
    seconds_to_samples,
    window_count,
    window_ends,
    window_starts,
)

GOLDEN = REPO_ROOT / "tests" / "golden"
MANIFESTS = GOLDEN / "manifests"


def _read(path: Path) -> dict:
    return json.loads(path.read_text())


WINDOWS = _read(GOLDEN / "windows.json")
EVENTS = _read(GOLDEN / "events.json")
MANIFEST_CASES = _read(MANIFESTS / "cases.json")


def _names(cases: list[dict]) -> list[str]:
    return [c.get("name") or f"{c['seconds']}s@{c['sample_rate']}" for c in cases]


# --- windows ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", WINDOWS["windows"], ids=_names(WINDOWS["windows"]))
def test_window_starts(case):
    n, window, hop = case["num_samples"], case["window"], case["hop"]
    starts = window_starts(n, window, hop)
    assert starts == case["starts"]
    assert window_ends(starts, window, n) == case["ends"]
    assert (regular_window_count(n, window, hop), closing_window(n, window, hop)) == (case["regular"], case["closing"])
    assert window_count(n, window, hop) == len(starts)


@pytest.mark.parametrize(
    ("num_samples", "window", "hop"), [(100, 50, 7), (50, 50, 7), (30, 50, 7), (1000, 50, 70), (999, 10, 3)]
)
def test_window_count_counts_window_starts(num_samples, window, hop):
    assert window_count(num_samples, window, hop) == len(window_starts(num_samples, window, hop))


@pytest.mark.parametrize("case", WINDOWS["seconds"], ids=_names(WINDOWS["seconds"]))
def test_seconds_to_samples_rounds_half_to_even(case):
    assert seconds_to_samples(case["seconds"], case["sample_rate"]) == case["samples"]
    assert hop_samples(case["seconds"], case["sample_rate"]) == case["hop"]


@pytest.mark.parametrize("case", WINDOWS["audio_length"], ids=lambda c: f"{c['num_samples']}_samples")
def test_audio_without_an_analysis_frame_is_refused(case):
    args = (case["num_samples"], case["frame_samples"], case["frame_ms"], case["sample_rate"], "golden")
    if case["error"] is None:
        check_audio_length(*args)
    else:
        with pytest.raises(InputError) as caught:
            check_audio_length(*args)
        assert str(caught.value) == f"golden: {case['error']}"


# --- events ----------------------------------------------------------------------------------------


def _event_config(config: dict) -> EventConfig:
    return EventConfig(
        threshold=config["threshold"],
        off_threshold=config["off_threshold"],
        thresholds={int(i): tuple(on_off) for i, on_off in config["thresholds"].items()},
        min_duration=config["min_duration"],
        merge_gap=config["merge_gap"],
    )


@pytest.mark.parametrize("case", EVENTS["cases"], ids=_names(EVENTS["cases"]))
def test_events_offline_and_window_by_window(case):
    config = _event_config(case["config"])
    starts, ends = zip(*case["windows"], strict=True)
    scores = np.asarray(case["scores"], np.float32)
    labels, hop, rate = case["labels"], case["hop"], case["sample_rate"]
    offline = detect_events(starts, ends, scores, labels, config, hop, rate)
    assert [e.to_json() for e in offline] == case["events"]
    tracker = EventTracker(labels, config, hop, rate)
    tracked = [e for (s, e_), row in zip(case["windows"], scores, strict=True) for e in tracker.update(s, e_, row)]
    tracked += tracker.flush()
    assert sorted(tracked, key=lambda e: (e.onset, e.index)) == offline


# --- manifests -------------------------------------------------------------------------------------


def _read_as(case: dict) -> dict:
    """What ``read_manifest`` makes of a case, in the shape of its ``expected``."""
    manifest = read_manifest(MANIFESTS / case["directory"])
    section = manifest["input"]
    return {
        "format_version": manifest["format_version"],
        **{k: section[k] for k in ("kind", "sample_rate", "num_samples", "window_samples", "frame_samples", "batch")},
        "labels": manifest["labels"],
        "artifacts": [
            {"name": a["name"], "format": a["format"], "files": [f["file"] for f in a["files"]]}
            for a in manifest["artifacts"]
        ],
    }


@pytest.mark.parametrize("case", MANIFEST_CASES["cases"], ids=_names(MANIFEST_CASES["cases"]))
def test_manifest_reading(case):
    if "error" in case:
        with pytest.raises(InputError) as caught:
            read_manifest(MANIFESTS / case["directory"])
        assert case["error"] in str(caught.value) and "\n" not in str(caught.value)
    else:
        assert _read_as(case) == case["expected"]


@pytest.mark.parametrize("case", MANIFEST_CASES["cases"], ids=_names(MANIFEST_CASES["cases"]))
def test_golden_manifests_match_the_schema(case):
    validate_manifest(_read(MANIFESTS / case["directory"] / "manifest.json"))


# --- the C++ library on the same files -------------------------------------------------------------


def golden_check(cpp_build: Path, golden: Path) -> dict:
    proc = _run([cpp_build / "ast_golden_check", golden], timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_cpp_gives_the_golden_answers(cpp_build):
    report = golden_check(cpp_build, GOLDEN)
    checked = {
        "windows": report["windows"]["windows"],
        "seconds": report["windows"]["seconds"],
        "audio_length": report["windows"]["audio_length"],
        "events": report["events"],
        "manifests": report["manifests"],
    }
    expected = {
        "windows": len(WINDOWS["windows"]),
        "seconds": len(WINDOWS["seconds"]),
        "audio_length": len(WINDOWS["audio_length"]),
        "events": len(EVENTS["cases"]),
        "manifests": len(MANIFEST_CASES["cases"]),
    }
    assert {k: v["checked"] for k, v in checked.items()} == expected
    assert {k: v["failures"] for k, v in checked.items()} == {k: [] for k in expected}


def test_cpp_check_reports_a_wrong_golden_answer(cpp_build, tmp_path):
    """The C++ check compares, rather than echoing: a golden file altered in each section fails there."""
    golden = tmp_path / "golden"
    shutil.copytree(GOLDEN, golden)
    shutil.copytree(REPO_ROOT / "tests" / "manifest_v1", tmp_path / "manifest_v1")  # the format-1 case's directory
    windows = _read(golden / "windows.json")
    windows["windows"][0]["ends"] = [e + 1 for e in windows["windows"][0]["ends"]]
    windows["seconds"][0]["samples"] += 1
    windows["audio_length"][1]["error"] = None
    (golden / "windows.json").write_text(json.dumps(windows))
    events = _read(golden / "events.json")
    events["cases"][0]["events"][0]["offset"] += 0.5
    (golden / "events.json").write_text(json.dumps(events))
    manifests = _read(golden / "manifests" / "cases.json")
    manifests["cases"][0]["expected"]["frame_samples"] += 1
    (golden / "manifests" / "cases.json").write_text(json.dumps(manifests))
    report = golden_check(cpp_build, golden)
    sections = [report["windows"][k] for k in ("windows", "seconds", "audio_length")]
    sections += [report["events"], report["manifests"]]
    assert [len(s["failures"]) for s in sections] == [1, 1, 1, 1, 1]
