"""The quickstart's steps after data generation (train -> evaluate -> export -> parity -> bench ->
predict) run end to end on a tiny model and generated tones, and ``summary.json`` reports them.

The data step itself (espeak-ng voices) is covered in ``test_training_prepare.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _training_helpers import overrides, write_tone_set

from ast_deploy.bench.schema import validate
from ast_deploy_training.quickstart import STEPS, run_quickstart

pytest.importorskip("onnxruntime")

FP32_ARTIFACTS = {"torchscript", "onnx", "aoti"}


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("quickstart")
    for split, per_class, seed in (("train", 24, 0), ("valid", 6, 1), ("test", 6, 2)):
        write_tone_set(out / "data", per_class, seed=seed, name=split)
    steps = [step for step in STEPS if step[0] != "data"]
    # bench: a short timing per row (the figures are not what these tests check; min_iters still holds)
    summary = run_quickstart(out, epochs=2, overrides=overrides(batch_size=16), steps=steps, bench_seconds=0.2)
    return out, summary


def test_summary_holds_every_step(quickstart) -> None:
    out, summary = quickstart
    assert json.loads((out / "summary.json").read_text()) == summary
    assert list(summary["steps"]) == ["train", "evaluate", "export", "parity", "bench", "predict"]
    assert all(step["seconds"] >= 0 for step in summary["steps"].values())
    evaluate = summary["steps"]["evaluate"]
    assert evaluate["num_clips"] == 24 and evaluate["chance"] == 0.25
    assert summary["accuracy"] == evaluate["accuracy"]
    assert set(evaluate["class_accuracy"]) == {"c0", "c1", "c2", "c3"}


def test_every_exported_artifact_passed_parity(quickstart) -> None:
    out, summary = quickstart
    export = summary["steps"]["export"]
    manifest = json.loads((out / "artifacts" / "manifest.json").read_text())
    assert set(export["artifacts"]) == {a["name"] for a in manifest["artifacts"]}
    assert FP32_ARTIFACTS | {"onnx-fp16", "onnx-int8"} <= set(export["artifacts"])
    assert all(a["parity_passed"] for a in export["artifacts"].values())
    assert "tensorrt" in export["skipped"]  # no TensorRT on CPU machines: skipped with a reason


def test_parity_on_unseen_clips_gives_each_backend_the_reference_accuracy(quickstart) -> None:
    out, summary = quickstart
    parity = summary["steps"]["parity"]
    assert parity["passed"] and parity["clips"] == 24
    assert (out / "parity.json").is_file()
    # The deployed float32 reference (front end in the graph's input spec) and the training-side
    # evaluation score the same clips; a near-tie may flip at most one of 24.
    assert parity["reference_accuracy"] == pytest.approx(summary["accuracy"], abs=1 / 24 + 1e-9)
    for name in FP32_ARTIFACTS:
        backend = parity["backends"][name]
        assert backend["top1_agreement"] == 1.0 and backend["max_abs_logit"] <= 1e-4, name
        assert backend["accuracy"] == parity["reference_accuracy"], name


def test_bench_measured_the_deployable_backends(quickstart) -> None:
    out, summary = quickstart
    doc = json.loads((out / "bench.json").read_text())
    validate(doc)
    measured = {(r["backend"], r["batch"]) for r in doc["results"] if r["status"] == "ok"}
    backends = {"pytorch"} | (set(summary["steps"]["export"]["artifacts"]) - {"onnx-fp16"})
    assert measured == {(b, n) for b in backends for n in (1, 8)}
    assert set(summary["steps"]["bench"]["p50_ms_batch1"]) == backends
    assert (out / "bench.md").read_text().count("|") > 10


def test_predict_runs_the_artifacts(quickstart) -> None:
    _, summary = quickstart
    predict = summary["steps"]["predict"]
    assert predict["model"].endswith("artifacts") and len(predict["predictions"]) == 2
    for p in predict["predictions"]:
        scores = [t["score"] for t in p["top"]]
        assert {t["label"] for t in p["top"]} <= {"c0", "c1", "c2", "c3"} and len(scores) == 3
        assert scores == sorted(scores, reverse=True) and scores[-1] >= 0 and sum(scores) <= 1 + 1e-5
