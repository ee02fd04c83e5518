"""Serving: Triton repositories checked with Triton's schema, and a real tritonserver on loopback.

One tiny export (ONNX + TorchScript) and one server (the python-backend model running ONNX
Runtime) for the module; a second short-lived server through ``ast-deploy serve`` checks the CLI's
signal handling and clean-up. Every request loop is bounded.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SPEECH_WAV, TINY_CASE, TINY_PTH, authors_options, cli_script, run_cli

from ast_deploy.errors import InputError
from ast_deploy.export import FORMATS, export
from ast_deploy.export.manifest import read_manifest
from ast_deploy.runtime import registry
from ast_deploy.serving.repository import (
    NATIVE,
    RepositoryOptions,
    parse_config,
    plan_repository,
    write_repository,
)

pytest.importorskip("tritonclient.grpc", reason="the serve extra (tritonclient) is not installed")

SCORE_ATOL = 1e-5


def server_missing() -> str | None:
    from ast_deploy.serving.server import tritonserver_unavailable

    reason = tritonserver_unavailable()
    if reason and os.environ.get("CI"):  # make setup installs it: in CI a missing server is a failure
        pytest.fail(reason)
    return reason


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("serving") / "artifacts"
    export(
        TINY_PTH,
        out,
        to="torchscript,onnx",
        batch="1:4:8",
        load_options=authors_options(TINY_CASE),
        log=lambda message: None,
    )
    return out


def every_format_manifest(manifest: dict, kind: str = "waveform") -> dict:
    """``manifest`` with an artifact of every export format (the writer reads the manifest only)."""
    m = copy.deepcopy(manifest)
    m["artifacts"] = [
        {
            "name": name,
            "files": [{"file": module.FILE, "sha256": f"{i:064x}", "bytes": 1}],
            "format": module.FORMAT,
            "precision": module.PRECISION,
            "parity": {"passed": True, "inputs": "test"},
        }
        for i, (name, module) in enumerate(FORMATS.items())
    ]
    if kind == "fbank":
        m["input"].update(kind="fbank", names=["fbank"], dtypes={"fbank": "float32"}, num_samples=None)
    return m


# --- repository and schema -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["waveform", "fbank"])
def test_every_format_gets_a_config_that_triton_schema_accepts(exported, kind):
    from tritonclient.grpc import model_config_pb2 as pb

    manifest = every_format_manifest(read_manifest(exported), kind)
    every_backend = tuple(n for n in registry.artifact_backends() if "cpu" in registry.get(n).devices)
    plan = plan_repository(manifest, RepositoryOptions(python=every_backend, instances=2, queue_delay_us=700))
    by_name = {m.name: m for m in plan.models}
    natives = [a["name"] for a in manifest["artifacts"] if a["format"] in NATIVE]
    assert set(natives) <= set(by_name) and {f"{b}-python" for b in every_backend} <= set(by_name)
    spec = manifest["input"]
    for model in plan.models:
        config = parse_config(model.config, model.name)
        assert config.name == model.name and config.max_batch_size == spec["batch"]["max"]
        assert list(config.dynamic_batching.preferred_batch_size) == [spec["batch"]["opt"], spec["batch"]["max"]]
        assert config.dynamic_batching.max_queue_delay_microseconds == 700
        assert config.instance_group[0].count == 2
        inputs = {i.name: i for i in config.input}
        if kind == "waveform":
            assert list(inputs) == ["waveform", "num_samples"]
            wave = inputs["waveform"]
            assert wave.data_type == pb.TYPE_FP32 and list(wave.dims) == [spec["num_samples"]]
            # (B,) in the graph: (B, 1) on the wire, reshaped by Triton
            assert inputs["num_samples"].data_type == pb.TYPE_INT64 and list(inputs["num_samples"].dims) == [1]
            assert inputs["num_samples"].HasField("reshape") and list(inputs["num_samples"].reshape.shape) == []
        else:
            assert list(inputs) == ["fbank"]
            assert list(inputs["fbank"].dims) == [spec["num_frames"], spec["num_mel_bins"]]
        for output in config.output:
            if output.name.startswith("embedding"):  # the clip embedding: embed_dim floats, no labels
                assert output.data_type == pb.TYPE_FP32 and list(output.dims) == [manifest["embedding"]["dim"]]
                continue
            assert output.data_type == pb.TYPE_FP32 and list(output.dims) == [len(manifest["labels"])]
            assert output.label_filename == "labels.txt"
        assert plan.files[f"{model.name}/labels.txt"].splitlines() == manifest["labels"]
        info = json.loads(config.parameters["ast_deploy"].string_value)
        artifact = next(a for a in manifest["artifacts"] if a["name"] == model.artifact)
        assert info["files"] == artifact["files"] and info["parity"]["passed"] is True
        if model.backend == "python":
            assert config.backend == "python"
            assert [o.name for o in config.output] == ["logits", "scores", "embedding"]
            assert config.parameters["backend"].string_value == model.runtime_backend
        else:
            target = NATIVE[artifact["format"]]
            assert config.platform == target.platform and f"{model.name}/1/{target.file}" in plan.files
            if artifact["format"] == "tensorrt":
                assert config.instance_group[0].kind == pb.ModelInstanceGroup.KIND_GPU
    readme = plan.files["README.md"]
    assert "tritonserver --model-repository=/models" in readme and "nvcr.io/nvidia/tritonserver" in readme
    # a python model records what it computes in, which for a variant is not its artifact's precision
    served = {
        m.name: json.loads(parse_config(m.config, m.name).parameters["ast_deploy"].string_value) for m in plan.models
    }
    assert served["openvino-bf16-python"]["precision"] == by_name["openvino-bf16-python"].precision == "bf16"
    assert (
        served["openvino-int8-bf16-python"]["precision"] == "int8" and served["openvino-python"]["precision"] == "fp32"
    )


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda t: t.replace("max_batch_size:", "max_batchsize:"), "max_batchsize"),  # misspelt field
        (lambda t: t.replace("TYPE_FP32", "TYPE_FLOAT32", 1), "TYPE_FLOAT32"),  # unknown data type
        (lambda t: t.replace("KIND_AUTO", "KIND_TPU"), "KIND_TPU"),  # unknown instance kind
        (lambda t: t.replace('"onnxruntime_onnx"', '"onnx_runtime"'), "unknown platform 'onnx_runtime'"),
        (lambda t: t.replace("data_type: TYPE_INT64\n", ""), "num_samples has no data_type"),
    ],
)
def test_schema_check_fails_on_what_triton_would_refuse(exported, edit, message):
    plan = plan_repository(read_manifest(exported), RepositoryOptions(native=("onnx",), python=()))
    text = plan.models[0].config
    parse_config(text)  # the written one passes
    with pytest.raises(InputError, match=message):
        parse_config(edit(text))


def test_artifacts_that_failed_parity_are_not_written(exported):
    manifest = read_manifest(exported)
    manifest["artifacts"][0]["parity"] = {**manifest["artifacts"][0]["parity"], "passed": False}
    failed = manifest["artifacts"][0]["name"]
    plan = plan_repository(manifest)
    assert failed not in [m.name for m in plan.models] and not any(p.startswith(f"{failed}/") for p in plan.files)
    assert plan.skipped == [{"name": failed, "reason": "failed parity"}]
    # removed at export (manifest "failed"): asking for it names the reason
    manifest["failed"] = [{"name": "onnx-int8", "parity": {}}]
    with pytest.raises(InputError, match="'onnx-int8': failed parity at export"):
        plan_repository(manifest, RepositoryOptions(native=("onnx-int8",)))


def test_bad_options_are_one_line_errors(exported):
    manifest = read_manifest(exported)
    with pytest.raises(InputError, match="batches up to 8"):
        plan_repository(manifest, RepositoryOptions(max_batch=64))
    with pytest.raises(InputError, match="no native Triton backend"):
        plan_repository(every_format_manifest(manifest), RepositoryOptions(native=("aoti",)))
    with pytest.raises(InputError, match="--kind 'tpu'"):
        plan_repository(manifest, RepositoryOptions(kind="tpu"))


def test_written_repository_serves_the_manifests_bytes_and_matches_the_graphs(exported, tmp_path):
    import onnx

    result = run_cli("triton", exported, "--out", tmp_path / "repo", "--python", "onnx", "--json")
    assert result.code == 0, result.stderr
    names = [m["model"] for m in result.json()["models"]]
    assert names == ["torchscript", "onnx", "onnx-python"]
    repo = tmp_path / "repo"
    manifest = read_manifest(exported)
    sha = {a["name"]: a["files"][0]["sha256"] for a in manifest["artifacts"]}
    from ast_deploy.fileio import sha256_file

    assert sha256_file(repo / "onnx/1/model.onnx") == sha["onnx"]
    assert sha256_file(repo / "torchscript/1/model.pt") == sha["torchscript"]
    assert read_manifest(repo / "onnx-python/1/artifacts")["artifacts"][0]["files"][0]["sha256"] == sha["onnx"]
    # the native configs name the graphs' own inputs, outputs and element types
    config = parse_config((repo / "onnx/config.pbtxt").read_text())
    graph = onnx.load(str(repo / "onnx/1/model.onnx")).graph
    types = {onnx.TensorProto.FLOAT: "TYPE_FP32", onnx.TensorProto.INT64: "TYPE_INT64"}
    from tritonclient.grpc import model_config_pb2 as pb

    assert [(i.name, pb.DataType.Name(i.data_type)) for i in config.input] == [
        (v.name, types[v.type.tensor_type.elem_type]) for v in graph.input
    ]
    assert [o.name for o in config.output] == [v.name for v in graph.output]
    module = torch.jit.load(str(repo / "torchscript/1/model.pt"))
    ts_config = parse_config((repo / "torchscript/config.pbtxt").read_text())
    assert [a.name for a in module.forward.schema.arguments[1:]] == [i.name for i in ts_config.input]
    # a tampered artifact is refused, and nothing is published
    (tmp_path / "bad").mkdir()
    for f in exported.iterdir():
        if f.is_file():
            (tmp_path / "bad" / f.name).write_bytes(f.read_bytes())
    (tmp_path / "bad" / "model.onnx").write_bytes(b"not the exported graph")
    with pytest.raises(InputError, match="does not match the manifest"):
        write_repository(tmp_path / "bad", tmp_path / "repo2", RepositoryOptions(native=("onnx",), python=()))
    assert not (tmp_path / "repo2").exists()


# --- a real server -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(exported, tmp_path_factory):
    reason = server_missing()
    if reason:
        pytest.skip(reason)
    from ast_deploy.serving.server import TritonServer

    repo = tmp_path_factory.mktemp("triton") / "repo"
    # a generous queue delay so that the concurrency test sees batching on a busy 2-core machine
    write_repository(exported, repo, RepositoryOptions(native=(), python=("onnx",), threads=1, queue_delay_us=20000))
    srv = TritonServer(repo)
    srv.start(timeout=180)
    yield srv
    srv.stop()
    assert srv.leftovers() == []


@pytest.fixture(scope="module")
def local_onnx(exported):
    from ast_deploy.artifacts import ArtifactDir

    backend = ArtifactDir(exported).open("onnx", "cpu", threads=1)
    yield backend
    backend.close()


def waveforms(rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((rows, 16240)) * 0.1).astype(np.float32)
    n = np.full((rows, 1), 16240, dtype=np.int64)
    n[1::2] = 9000
    return x, n


def test_http_and_grpc_answer_with_the_in_process_logits_and_scores(server, local_onnx):
    from ast_deploy.model import apply_activation
    from ast_deploy.runtime.triton import TritonClient

    assert server.live() and server.ready()
    x, n = waveforms(3)
    expected = local_onnx(torch.from_numpy(x), torch.from_numpy(n[:, 0]))
    for url in (server.http_url, server.grpc_url):
        client = TritonClient(url)
        assert client.model.name == "onnx-python"
        out = client.infer({"waveform": x, "num_samples": n})
        np.testing.assert_allclose(out["logits"], expected.numpy(), atol=SCORE_ATOL, rtol=0)
        np.testing.assert_allclose(
            out["scores"], apply_activation(expected, "sigmoid").numpy(), atol=SCORE_ATOL, rtol=0
        )
        client.close()


def test_predict_through_the_server_equals_local_predict(server, exported):
    args = [SPEECH_WAV, "--json", "--hop", "0.4", "-k", "10"]
    remote = run_cli("predict", "--url", server.grpc_url, *args)
    local = run_cli("predict", exported, "--backend", "onnx", *args)
    assert remote.code == 0 and local.code == 0, remote.stderr + local.stderr
    r, loc = remote.json()["results"][0], local.json()["results"][0]
    assert remote.json()["backend"] == "triton" and len(r["windows"]) == len(loc["windows"]) > 3
    for wr, wl in zip(r["windows"], loc["windows"], strict=True):
        assert (wr["start"], wr["end"]) == (wl["start"], wl["end"])
        assert [t["label"] for t in wr["top"]] == [t["label"] for t in wl["top"]]
        np.testing.assert_allclose([t["score"] for t in wr["top"]], [t["score"] for t in wl["top"]], atol=SCORE_ATOL)
    np.testing.assert_allclose([t["score"] for t in r["top"]], [t["score"] for t in loc["top"]], atol=SCORE_ATOL)


def test_parity_runs_the_served_model_through_the_registry(server, exported, monkeypatch):
    from ast_deploy.parity import run_parity
    from ast_deploy.runtime import triton

    monkeypatch.setattr(triton, "_target", {"url": server.http_url, "model": None})
    report = run_parity(exported, backends=["triton"], n=4)
    (result,) = report.results
    assert result.passed and result.precision == "fp32" and result.max_abs_logit < 1e-4


def test_parity_and_bench_cli_take_the_server_url(server, exported, monkeypatch, tmp_path):
    from ast_deploy.runtime.triton import URL_ENV

    monkeypatch.setenv(URL_ENV, "")  # the CLI sets it (for bench's row processes); removed after the test
    parity = run_cli("parity", exported, "--backends", "triton", "--n", "4", "--url", server.http_url)
    assert parity.code == 0 and "triton" in parity.stdout, parity.stdout + parity.stderr
    bench_json = tmp_path / "bench.json"
    bench = run_cli(
        "bench", exported, "--backends", "triton", "--batch-sizes", "1", "--iters", "2", "--warmup", "1",
        "--url", server.grpc_url, "--report", bench_json,
    )  # fmt: skip
    assert bench.code == 0, bench.stdout + bench.stderr
    (row,) = json.loads(bench_json.read_text())["results"]  # measured, not a skipped or unavailable row
    assert row["backend"] == "triton" and row["status"] == "ok" and row["latency_ms"]["p50"] > 0


def test_concurrent_clients_are_batched(server):
    from ast_deploy.runtime.triton import TritonClient

    before = server.metrics()
    x, n = waveforms(1)
    errors: list[str] = []

    def client_loop():
        client = TritonClient(server.grpc_url, "onnx-python")
        try:
            for _ in range(4):  # bounded: 16 clients x 4 requests
                client.infer({"waveform": x, "num_samples": n})
        except Exception as e:  # reported below
            errors.append(repr(e))
        finally:
            client.close()

    threads = [threading.Thread(target=client_loop) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors and not any(t.is_alive() for t in threads)
    after = server.metrics()
    requests, executions = (
        after[k]["onnx-python"] - before[k]["onnx-python"]
        for k in ("nv_inference_request_success", "nv_inference_exec_count")
    )
    assert requests == 64 and executions < requests, (requests, executions)


def raw_infer(url: str, model: str, arrays: dict[str, np.ndarray]):
    import tritonclient.http as http
    from tritonclient.utils import np_to_triton_dtype

    client = http.InferenceServerClient(url.removeprefix("http://"))
    inputs = []
    for name, a in arrays.items():
        item = http.InferInput(name, list(a.shape), np_to_triton_dtype(a.dtype))
        item.set_data_from_numpy(a, binary_data=True)
        inputs.append(item)
    try:
        return client.infer(model, inputs)
    finally:
        client.close()


@pytest.mark.parametrize(
    "case, arrays, message",
    [
        ("wrong shape", {"waveform": np.zeros((1, 100), np.float32), "num_samples": np.full((1, 1), 100)}, "shape"),
        ("wrong dtype", {"waveform": np.zeros((1, 16240), np.float64), "num_samples": np.full((1, 1), 16240)}, "FP64"),
        (
            "too many samples",
            {"waveform": np.zeros((1, 16240), np.float32), "num_samples": np.full((1, 1), 20000)},
            "num_samples must lie in 1..16240",
        ),
        (
            "NaN audio",
            {"waveform": np.full((1, 16240), np.nan, np.float32), "num_samples": np.full((1, 1), 16240)},
            "NaN",
        ),
    ],
)
def test_bad_requests_get_triton_errors_and_the_server_keeps_serving(server, case, arrays, message):
    from tritonclient.utils import InferenceServerException

    with pytest.raises(InferenceServerException, match=message):
        raw_infer(server.http_url, "onnx-python", arrays)
    x, n = waveforms(1)
    good = raw_infer(server.http_url, "onnx-python", {"waveform": x, "num_samples": n})
    assert good.as_numpy("logits").shape == (1, 10)


def test_unknown_model_is_an_error_and_the_client_says_which_exist(server):
    from tritonclient.utils import InferenceServerException

    x, n = waveforms(1)
    with pytest.raises(InferenceServerException, match="nope"):
        raw_infer(server.http_url, "nope", {"waveform": x, "num_samples": n})
    result = run_cli("predict", "--url", server.http_url, "--model", "nope", SPEECH_WAV)
    assert result.code == 2 and "nope" in result.stderr and "Traceback" not in result.stderr
    assert server.ready()


def test_a_refused_client_leaves_no_connection_open(server):
    """A client refused after connecting (unknown model) closes its connection: an HTTP keep-alive one
    left open made the server wait its whole exit timeout (10 s) when stopped."""
    import psutil

    from ast_deploy.runtime.triton import TritonClient

    port = int(server.http_url.rsplit(":", 1)[1])

    def connections() -> list:
        return [c for c in psutil.Process().net_connections("tcp") if c.raddr and c.raddr.port == port]

    assert connections() == []
    with pytest.raises(InputError, match="nope") as refused:
        TritonClient(server.http_url, "nope")
    assert refused.value is not None and connections() == []  # (the traceback keeps the client alive)


@pytest.mark.slow
def test_serve_command_stops_cleanly_on_sigterm(exported):
    reason = server_missing()
    if reason:
        pytest.skip(reason)
    from ast_deploy.runtime.triton import TritonClient

    args = ["serve", exported, "--backend", "torchscript", "--http-port", "0", "--grpc-port", "0"]
    proc = subprocess.Popen(
        [cli_script(), *map(str, args), "--metrics-port", "0", "--threads", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()  # one JSON line once the server is ready (bounded by --start-timeout)
        assert line, proc.stderr.read()
        info = json.loads(line)
        client = TritonClient(info["http"])
        x, n = waveforms(2)
        assert client.infer({"waveform": x, "num_samples": n})["scores"].shape == (2, 10)
        client.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the server's whole process group is gone
        try:
            os.killpg(info["pid"], 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"tritonserver process group {info['pid']} outlived 'ast-deploy serve'")
    assert not list(Path("/dev/shm").glob(f"ast-deploy-{proc.pid}-*"))
