"""Export and parity: every CPU-producible format from the authors' tiny fixtures, both input kinds.

Tolerances are the parity defaults (``ast_deploy.parity.DEFAULT_THRESHOLDS``): float32 max |logit
error| <= 1e-4; FP16 cosine >= 0.999 and top-1 >= 99 %; INT8 cosine >= 0.99 and top-1 on decisive clips.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from conftest import ARTIFACT_BATCH, SPEECH_WAV, TINY_PTH, authors_flags, authors_options, run_cli

from ast_deploy.artifacts import ArtifactDir
from ast_deploy.errors import InputError
from ast_deploy.export import FORMATS, export
from ast_deploy.export.onnx import front_end_nodes
from ast_deploy.export.tensorrt_ops import tensorrt_problems
from ast_deploy.fileio import sha256_file
from ast_deploy.parity import DEFAULT_THRESHOLDS
from ast_deploy.runtime import registry

CPU_FORMATS = [name for name in FORMATS if "cpu" in registry.get(name).devices]  # every format but TensorRT
# What this machine builds: aoti-int8 needs int8 dot products (VNNI/AMX), TensorRT a GPU (export/*.py unavailable()).
BUILT_HERE = [name for name in CPU_FORMATS if FORMATS[name].unavailable() is None]
ONNX_FILES = {"onnx": "model.onnx", "onnx-fp16": "model.fp16.onnx", "onnx-int8": "model.int8.onnx"}


def tensorrt_missing() -> str | None:
    from ast_deploy.export.tensorrt import unavailable

    return unavailable()


@pytest.fixture(scope="session", params=["waveform", "fbank"])
def exported(request, tiny_artifacts) -> Path:
    """The tiny fixture exported once per input kind to every format this machine can produce, batch 1:2:8
    (the session's shared export, conftest.py: test_cpp.py and test_embeddings.py run the same directory)."""
    assert ARTIFACT_BATCH == "1:2:8"
    return tiny_artifacts(request.param)


def test_every_cpu_format_is_published_with_passing_parity(exported):
    manifest = json.loads((exported / "manifest.json").read_text())
    assert manifest["format_version"] == 2
    names = [a["name"] for a in manifest["artifacts"]]
    assert names == BUILT_HERE + (["tensorrt"] if tensorrt_missing() is None else [])
    for artifact in manifest["artifacts"]:
        parity = artifact["parity"]
        assert parity["passed"], (artifact["name"], parity["failures"])
        assert artifact["files"] and artifact["files"][0]["file"] == FORMATS[artifact["name"]].FILE  # primary first
        for entry in artifact["files"]:
            assert sha256_file(exported / entry["file"]) == entry["sha256"]
            assert (exported / entry["file"]).stat().st_size == entry["bytes"]
        if artifact["precision"] == "fp32":
            assert parity["max_abs_logit"] <= DEFAULT_THRESHOLDS["fp32"].max_abs_logit
        elif artifact["precision"] == "fp16":
            assert parity["min_cosine"] >= 0.999 and parity["top1_agreement"] >= 0.99
    # Every format not built is skipped with its reason.
    assert manifest["skipped"] == [
        {"name": n, "reason": m.unavailable()} for n, m in FORMATS.items() if m.unavailable()
    ]
    # Atomic write: no temporary directories beside the published one.
    assert sorted(p.name for p in exported.parent.iterdir() if p.name.endswith(".tmp")) == []


def test_manifest_describes_input_labels_and_tools(exported):
    manifest = ArtifactDir(exported).manifest
    spec = manifest["input"]
    assert manifest["source"]["sha256"] == sha256_file(TINY_PTH)
    assert manifest["model"]["target_length"] == 100 and len(manifest["labels"]) == 10
    assert spec["batch"] == {"min": 1, "opt": 2, "max": 8}
    assert spec["normalization"]["mean"] == pytest.approx(-4.2677393)
    if spec["kind"] == "waveform":
        assert spec["names"] == ["waveform", "num_samples"] and spec["num_samples"] == 99 * 160 + 400
    else:
        assert spec["names"] == ["fbank"] and spec["num_samples"] is None
    onnx_entry = next(a for a in manifest["artifacts"] if a["name"] == "onnx")
    assert onnx_entry["opset"] >= 17 and "onnx" in onnx_entry["tools"] and "torch" in onnx_entry["tools"]


def test_onnx_graphs_check_and_have_a_dynamic_batch(exported):
    for name, file in ONNX_FILES.items():
        model = onnx.load(str(exported / file))
        onnx.checker.check_model(model, full_check=True)
        assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 17
        for value in (*model.graph.input, *model.graph.output):
            dim0 = value.type.tensor_type.shape.dim[0]
            assert dim0.dim_param and not dim0.HasField("dim_value"), (name, value.name)
            assert value.type.tensor_type.elem_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.INT64)
        assert not {n.op_type for n in model.graph.node} & {"DFT", "STFT", "MelWeightMatrix"}


def test_every_tensorrt_bound_graph_parses_statically(exported):
    """fp32 and FP16 ONNX (what TensorRT builds from) use only parser-supported ops and types."""
    for name in ("onnx", "onnx-fp16"):
        problems = tensorrt_problems(onnx.load(str(exported / ONNX_FILES[name])))
        assert problems == [], [str(p) for p in problems]
    # The INT8 graph targets ONNX Runtime on CPU; its dynamic quantisation ops are not TensorRT's.
    int8 = {p.op_type for p in tensorrt_problems(onnx.load(str(exported / ONNX_FILES["onnx-int8"])))}
    assert int8 == {"DynamicQuantizeLinear", "MatMulInteger"}


def test_static_check_rejects_what_tensorrt_cannot_parse():
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])
    n = helper.make_tensor_value_info("n", TensorProto.INT64, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    m = helper.make_tensor_value_info("m", TensorProto.INT64, None)
    graph = helper.make_graph(
        [helper.make_node("DFT", ["x"], ["y"]), helper.make_node("Clip", ["n"], ["m"])], "g", [x, n], [y, m]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    problems = {(p.op_type, "type INT64" in p.reason) for p in tensorrt_problems(model)}
    assert problems == {("DFT", False), ("Clip", True)}


def test_fp16_graph_keeps_the_sensitive_parts_in_float32(exported):
    model = onnx.shape_inference.infer_shapes(onnx.load(str(exported / "model.fp16.onnx")))
    types = {v.name: v.type.tensor_type.elem_type for v in (*model.graph.value_info, *model.graph.input)}
    types.update({i.name: i.data_type for i in model.graph.initializer})
    fp16, fp32 = onnx.TensorProto.FLOAT16, onnx.TensorProto.FLOAT
    for node in model.graph.node:
        if node.op_type in ("LayerNormalization", "Softmax"):
            assert types[node.input[0]] == fp32, node.name
    front = front_end_nodes(model)
    for node in model.graph.node:
        if node.name in front and node.op_type in ("MatMul", "Log"):
            assert all(types.get(i, fp32) == fp32 for i in node.input), node.name
    weights = [
        types[i]
        for node in model.graph.node
        if node.op_type in ("MatMul", "Gemm") and node.name not in front
        for i in node.input[1:2]
        if i in types
    ]
    assert weights and sum(t == fp16 for t in weights) >= len(weights) - 2  # the transformer runs in FP16
    assert all(o.type.tensor_type.elem_type == fp32 for o in model.graph.output)


def test_torchscript_loads_without_this_package(exported):
    spec = ArtifactDir(exported).spec
    inputs = (
        "torch.randn(2, 100, 128)"
        if spec.kind == "fbank"
        else f"torch.randn(3, {spec.num_samples}), torch.tensor([{spec.num_samples}, 9000, 400])"
    )
    code = (
        "import sys, torch\n"
        f"m = torch.jit.load({str(exported / 'model.ts')!r})\n"
        f"logits, embedding = m({inputs})\n"
        "assert logits.shape[-1] == 10 and torch.isfinite(logits).all()\n"
        "assert embedding.shape == (logits.shape[0], 192) and torch.isfinite(embedding).all()\n"
        "assert not any(name.startswith('ast_deploy') for name in sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd="/")


def test_runtimes_reject_wrong_shapes(exported):
    artifacts = ArtifactDir(exported)
    backend = artifacts.open("onnx")
    if artifacts.spec.kind == "waveform":
        wrong_rate = torch.zeros(1, round(artifacts.spec.num_samples * 44100 / 16000))  # a window at 44.1 kHz
        with pytest.raises(InputError, match="takes 16240 samples per row at 16000 Hz"):
            backend(wrong_rate, torch.tensor([100]))
        with pytest.raises(InputError, match="num_samples"):
            backend(torch.zeros(1, artifacts.spec.num_samples), None)
    else:
        with pytest.raises(InputError, match=r"expected fbank of shape \(batch, 100, 128\)"):
            backend(torch.zeros(1, 100, 64))
    with pytest.raises(InputError, match=r"outside the exported range 1\.\.8"):
        backend(*_inputs(artifacts, 9))


def _inputs(artifacts: ArtifactDir, batch: int):
    if artifacts.spec.kind == "fbank":
        return (torch.zeros(batch, 100, 128),)
    return torch.zeros(batch, artifacts.spec.num_samples), torch.full((batch,), artifacts.spec.num_samples)


@pytest.mark.parametrize("backend", ["onnx", "torchscript", "aoti", "onnx-fp16", "aoti-int8"])
def test_predict_on_artifacts_matches_the_checkpoint(exported, backend):
    from ast_deploy import load

    if backend not in BUILT_HERE:
        pytest.skip(f"{backend} is not built here: {FORMATS[backend].unavailable()}")
    reference = load(TINY_PTH, options=authors_options("tiny_t100_f10t10")).predict([SPEECH_WAV], top_k=3)[0]
    result = run_cli("predict", exported, SPEECH_WAV, "--json", "--backend", backend, "-k", "3")
    assert result.code == 0, result.stderr
    got = result.json()["results"][0]
    assert [t["label"] for t in got["top"]] == [t["label"] for t in reference.top(3)]
    tol = {"onnx-fp16": 2e-3, "aoti-int8": 1e-2}.get(backend, 1e-4)  # scores; int8 logits move ~1e-2
    np.testing.assert_allclose([t["score"] for t in got["top"]], [t["score"] for t in reference.top(3)], atol=tol)
    assert len(got["windows"]) == len(reference.starts)


def test_corrupted_artifact_fails_parity(exported, tmp_path):
    """Perturbed weights with a matching hash: parity (not the hash check) must catch it."""
    broken = tmp_path / "broken"
    shutil.copytree(exported, broken)
    model = onnx.load(str(broken / "model.onnx"))
    weight = max(model.graph.initializer, key=lambda t: int(np.prod(t.dims)))  # the largest matrix
    array = onnx.numpy_helper.to_array(weight).copy()
    array.flat[::7] += 0.05
    weight.CopyFrom(onnx.numpy_helper.from_array(array, weight.name))
    onnx.save(model, str(broken / "model.onnx"))
    manifest = json.loads((broken / "manifest.json").read_text())
    (entry,) = next(a for a in manifest["artifacts"] if a["name"] == "onnx")["files"]
    entry["sha256"] = sha256_file(broken / "model.onnx")
    (broken / "manifest.json").write_text(json.dumps(manifest))

    report = tmp_path / "parity.json"
    result = run_cli("parity", broken, "--backends", "onnx,torchscript", "--report", report)
    assert result.code == 1
    results = {r["backend"]: r for r in json.loads(report.read_text())["results"]}
    assert not results["onnx"]["passed"] and results["onnx"]["max_abs_logit"] > 1e-4
    assert results["torchscript"]["passed"]


def test_int8_decision_rule_forgives_near_ties_only():
    """INT8 is judged on clips the reference decides clearly (margin >= 0.05 logits): flipping near-ties
    passes, flipping more than 1 % of the decisive clips fails, and a turned logit vector fails on cosine."""
    from ast_deploy.parity import compare

    gen = torch.Generator().manual_seed(0)
    ref = torch.randn(200, 10, generator=gen)
    top2 = ref.topk(2).indices
    margin = ref.gather(1, top2[:, :1]) - ref.gather(1, top2[:, 1:])
    near, clear = (margin[:, 0] < 0.05).nonzero()[:, 0], (margin[:, 0] >= 0.05).nonzero()[:, 0]
    clear = clear[margin[clear, 0].argsort()]  # the least clear first: flipping them keeps the cosine high
    assert len(near) >= 2 and len(clear) >= 150

    def flipped(rows: torch.Tensor) -> torch.Tensor:
        out = ref.clone()
        out[rows, top2[rows, 1]] += margin[rows, 0] + 0.01  # the runner-up overtakes
        return out

    rule = DEFAULT_THRESHOLDS["int8"]
    ok = compare("int8", "int8", flipped(near[:2]), ref, "softmax", rule, None)
    assert ok.passed and ok.top1_agreement < 1 and ok.top1_decisive == 1.0 and ok.decisive_clips == len(clear)
    one = compare("int8", "int8", flipped(clear[:1]), ref, "softmax", rule, None)
    assert one.passed and one.top1_decisive == 1 - 1 / len(clear)  # 1 of >= 150: within 99 %
    many = compare("int8", "int8", flipped(clear[:4]), ref, "softmax", rule, None)
    assert many.min_cosine >= 0.99 and len(many.failures) == 1
    assert "top-1 agreement on clips decided by >= 0.05 logits 0.97" in many.failures[0]
    turned = compare("int8", "int8", ref + 2.0 * torch.randn(200, 10, generator=gen), ref, "softmax", rule, None)
    assert any(f.startswith("min cosine") for f in turned.failures)


def test_tampered_artifact_is_refused_by_hash(exported, tmp_path):
    tampered = tmp_path / "tampered"
    shutil.copytree(exported, tampered)
    data = bytearray((tampered / "model.ts").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tampered / "model.ts").write_bytes(bytes(data))
    result = run_cli("parity", tampered, "--backends", "torchscript")
    assert result.code == 2
    assert "model.ts: sha256" in result.stderr and "does not match the manifest" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_parity_on_a_labelled_manifest_reports_the_task_metric(exported, tmp_path):
    import soundfile as sf

    speech, rate = sf.read(str(SPEECH_WAV))
    rows = []
    for i, label in enumerate(["class_1", "class_3", "class_1"]):
        path = tmp_path / f"clip{i}.wav"
        sf.write(str(path), speech[i * 8000 : i * 8000 + 20000], rate)
        rows.append(f"{path.name},{label}")
    csv = tmp_path / "labelled.csv"
    csv.write_text("path,labels\n" + "\n".join(rows) + "\n")
    report = tmp_path / "parity.json"
    result = run_cli("parity", exported, "--manifest", csv, "--backends", "onnx", "--report", report)
    assert result.code == 0, result.stderr
    data = json.loads(report.read_text())
    assert data["num_inputs"] == 3 and data["reference_task_metric"]["metric"] == "mAP"  # tiny fixture: sigmoid
    onnx_metric = data["results"][0]["task_metric"]
    assert onnx_metric["metric"] == "mAP" and abs(onnx_metric["difference"]) < 1e-6

    # The same clips as the authors' JSON and as a folder per class (the reader training uses).
    authors = tmp_path / "labelled.json"
    entries = [{"wav": row.split(",")[0], "labels": row.split(",")[1]} for row in rows]
    authors.write_text(json.dumps({"data": entries}))
    for i, row in enumerate(rows):
        (tmp_path / "folders" / row.split(",")[1]).mkdir(parents=True, exist_ok=True)
        shutil.copy(tmp_path / f"clip{i}.wav", tmp_path / "folders" / row.split(",")[1] / f"clip{i}.wav")
    for manifest in (authors, tmp_path / "folders"):
        result = run_cli("parity", exported, "--manifest", manifest, "--backends", "onnx", "--report", report)
        assert result.code == 0, result.stderr
        again = json.loads(report.read_text())
        assert again["num_inputs"] == 3, manifest
        assert again["reference_task_metric"]["value"] == pytest.approx(data["reference_task_metric"]["value"])


def test_parity_labels_carry_the_machine_ids_of_a_shipped_label_set():
    from ast_deploy.labels import builtin_label_set
    from ast_deploy.parity import model_label_set

    audioset = builtin_label_set("audioset")
    assert model_label_set(audioset.names).mids == audioset.mids  # authors' JSON manifests name labels by mid
    assert model_label_set(["yes", "no"]).mids == ["yes", "no"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--to", "onnx,bogus"], "unknown format 'bogus'"),
        (["--batch", "4:2:8"], "1 <= MIN <= OPT <= MAX"),
        (["--input", "spectrogram"], "expected waveform or fbank"),
        (["--clip-seconds", "0.01"], "shorter than one 25 ms frame"),
    ],
)
def test_export_bad_input(tmp_path, args, message):
    out = tmp_path / "out"
    result = run_cli("export", TINY_PTH, *authors_flags("tiny_t100_f10t10"), "--out", out, *args)
    assert result.code == 2, result.stderr
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_export_refuses_an_existing_directory_and_a_broken_checkpoint(tmp_path):
    (tmp_path / "exists").mkdir()
    result = run_cli("export", TINY_PTH, *authors_flags("tiny_t100_f10t10"), "--out", tmp_path / "exists")
    assert result.code == 2 and "already exists (use --force" in result.stderr
    broken = tmp_path / "broken.pth"
    broken.write_bytes(TINY_PTH.read_bytes()[:5000])
    result = run_cli("export", broken, "--out", tmp_path / "out")
    assert result.code == 2 and "corrupt or truncated" in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(tensorrt_missing() is None, reason="TensorRT is installed: --to tensorrt builds here")
def test_tensorrt_request_without_tensorrt_is_one_line(tmp_path):
    result = run_cli(
        "export", TINY_PTH, *authors_flags("tiny_t100_f10t10"), "--out", tmp_path / "o", "--to", "tensorrt"
    )
    assert result.code == 2 and result.stderr.strip() == f"error: --to tensorrt: {tensorrt_missing()}"


# --- TensorRT: runs wherever TensorRT and a GPU exist ------------------------------------------

requires_tensorrt = pytest.mark.skipif(tensorrt_missing() is not None, reason=f"{tensorrt_missing()}")


@pytest.fixture(scope="module")
def tensorrt_exported(tmp_path_factory) -> tuple[Path, dict]:
    """One engine build (profile 1:4:8) shared by the TensorRT tests: building engines is slow."""
    out = tmp_path_factory.mktemp("tensorrt") / "trt"
    manifest = export(
        TINY_PTH,
        out,
        to="onnx-fp16,tensorrt",
        batch="1:4:8",
        load_options=authors_options("tiny_t100_f10t10"),
        log=lambda m: None,
    )
    return out, manifest


@requires_tensorrt
@pytest.mark.tensorrt
def test_tensorrt_engine_builds_and_passes_parity(tensorrt_exported):
    out, manifest = tensorrt_exported
    engine = next(a for a in manifest["artifacts"] if a["name"] == "tensorrt")
    assert engine["parity"]["passed"] and engine["builder"]["strongly_typed"]
    assert (out.parent / ".trt.tensorrt-timing.cache").stat().st_size > 0


@requires_tensorrt
@pytest.mark.tensorrt
def test_tensorrt_runtime_runs_every_batch_of_the_profile(tensorrt_exported):
    artifacts = ArtifactDir(tensorrt_exported[0])
    engine, reference = artifacts.open("tensorrt", "cuda"), artifacts.open("pytorch", "cpu")
    for batch in (1, 3, 8):
        x, n = _inputs(artifacts, batch)
        x = x + torch.randn_like(x) * 0.1
        got = engine(x.cuda(), n.cuda()).cpu()
        cos = torch.nn.functional.cosine_similarity(got, reference(x, n), dim=-1)
        assert got.shape == (batch, 10) and float(cos.min()) >= 0.999
    with pytest.raises(InputError, match="outside the exported range"):
        engine(*_inputs(artifacts, 9))
