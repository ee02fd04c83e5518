"""Embeddings, first class: the clip embedding (the classifier head's input: the final-norm [cls] and
distillation tokens averaged) from every export format, the Python API, ``predict --embeddings``,
parity, ``batch --embeddings``, Triton and the C++ host, each compared numerically with PyTorch
``ASTModel.forward_features`` on the same windows. Artifacts exported before embeddings (the committed
``tests/manifest_v1``) keep working with logits, and asking them for embeddings is one clear line.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import (
    LOGITS_ATOL,
    SPEECH_WAV,
    TINY_CASE,
    TINY_PTH,
    assert_input_error,
    authors_options,
    load_fixture,
    run_cli,
    write_wav,
)

# The C++ host: the session fixture host (conftest.py; CMake into build/cpp, skipped without a toolchain).
from test_cpp import assert_one_error_line, run_host

import ast_deploy
from ast_deploy.artifacts import ArtifactDir, open_classifier
from ast_deploy.errors import InputError
from ast_deploy.export import FORMATS, export
from ast_deploy.export.manifest import read_manifest, validate_manifest
from ast_deploy.fileio import sha256_file
from ast_deploy.frontend import KaldiFbank
from ast_deploy.model import EMBEDDING_DEFINITION
from ast_deploy.parity import EMBEDDING_MIN_COSINE, run_parity
from ast_deploy.runtime import registry
from ast_deploy.windows import cut_windows

pytestmark = pytest.mark.usefixtures("one_torch_thread")

MANIFEST_V1 = Path(__file__).parent / "manifest_v1"  # committed, exported before embeddings: logits only
RATE = 16000
WINDOW = 99 * 160 + 400  # the tiny model's 100 frames (1.015 s)
EMBED_DIM = 192  # DeiT-tiny width
FP32_ATOL = 1e-4  # float32 artifacts: the same function up to rounding (measured <= 2e-5 on the fixture)
SAME_ATOL = 1e-5  # the same backend through two paths (predict vs batch, C++ vs Python)


# --- the reference ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reference():
    """The tiny authors' checkpoint in PyTorch float32 and its front end: what every embedding is judged by."""
    ckpt = ast_deploy.load_checkpoint(TINY_PTH, authors_options(TINY_CASE))
    return ckpt.build_model(), KaldiFbank(ckpt.frontend)


def reference_embeddings(reference, rows: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``forward_features`` of waveform rows (B, WINDOW) with valid lengths: the PyTorch definition."""
    model, frontend = reference
    with torch.no_grad():
        return model.forward_features(frontend(torch.from_numpy(rows), torch.from_numpy(lengths))).numpy()


def speech_windows(speech: np.ndarray, hop: int = WINDOW) -> tuple[np.ndarray, np.ndarray, list[int]]:
    return cut_windows(speech, WINDOW, hop)  # predict's windows (ast_deploy.windows)


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)


def assert_close_embeddings(got, expected, precision: str, where: str) -> None:
    """fp32: elementwise within FP32_ATOL; reduced precision: every row's cosine within its parity bound."""
    got, expected = np.asarray(got), np.asarray(expected)
    assert got.shape == expected.shape, where
    if precision == "fp32":
        np.testing.assert_allclose(got, expected, rtol=0, atol=FP32_ATOL, err_msg=where)
    worst = float(cosines(got, expected).min())
    assert worst >= EMBEDDING_MIN_COSINE[precision], (where, worst)


def test_the_embedding_is_what_the_authors_head_reads(reference):
    """The definition: the [cls] and distillation tokens after the final LayerNorm, averaged; the authors'
    ``mlp_head`` (LayerNorm + Linear, their weights applied by hand here) on it gives their logits."""
    model, _ = reference
    io = load_fixture(f"{TINY_CASE}.io.pt")
    normed = {}
    hook = model.norm.register_forward_hook(lambda module, args, out: normed.setdefault("x", out))
    try:
        with torch.no_grad():
            logits, embedding = model.forward_outputs(io["input"])
    finally:
        hook.remove()
    x = normed["x"]
    assert embedding.shape == (3, EMBED_DIM)
    torch.testing.assert_close(embedding, (x[:, 0] + x[:, 1]) / 2, rtol=0, atol=0)
    torch.testing.assert_close(model.forward_features(io["input"]).detach(), embedding, rtol=0, atol=0)
    sd = torch.load(TINY_PTH, map_location="cpu", weights_only=True)
    w = {k.removeprefix("module.mlp_head."): v for k, v in sd.items() if k.startswith("module.mlp_head.")}
    head = torch.nn.functional.layer_norm(embedding, (EMBED_DIM,), w["0.weight"], w["0.bias"], eps=1e-5)
    torch.testing.assert_close(head @ w["1.weight"].T + w["1.bias"], io["logits"], rtol=0, atol=LOGITS_ATOL)
    torch.testing.assert_close(logits, io["logits"], rtol=0, atol=LOGITS_ATOL)
    assert "[cls]" in EMBEDDING_DEFINITION and "LayerNorm" in EMBEDDING_DEFINITION


# --- every export format ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def exported(tiny_artifacts) -> Path:
    """The tiny checkpoint as waveform artifacts of every format this machine builds, parity checked
    (the session's shared export, conftest.py)."""
    return tiny_artifacts("waveform")


@pytest.fixture(scope="module")
def exported_fbank(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("embeddings") / "fbank"
    to = ",".join(n for n in ("torchscript", "onnx", "openvino") if FORMATS[n].unavailable() is None)
    export(TINY_PTH, out, to=to, input_kind="fbank", batch="1:2:8", load_options=authors_options(TINY_CASE),
           log=lambda m: None)  # fmt: skip
    return out


def runnable(artifacts: ArtifactDir) -> list[str]:
    """Every backend of the directory that runs an artifact (variants included) and can run here."""
    names = [n for n in artifacts.backend_names() if registry.get(n).runs_artifact]
    return [n for n in names if artifacts.unavailable(n, "cpu") is None]


def test_manifest_lists_the_outputs_and_defines_the_embedding(exported):
    manifest = read_manifest(exported)
    validate_manifest(manifest)
    assert [o["name"] for o in manifest["outputs"]] == ["logits", "embedding"]
    assert manifest["outputs"][0]["shape"] == ["batch", 10] and manifest["outputs"][1]["shape"] == ["batch", EMBED_DIM]
    assert manifest["embedding"] == {
        "output": "embedding",
        "dim": EMBED_DIM,
        "definition": EMBEDDING_DEFINITION,
        "per_file": "mean over the file's windows",
    }
    assert manifest["input"]["dynamic_axes"]["embedding"] == {"0": "batch"}
    assert ArtifactDir(exported).outputs == ("logits", "embedding")
    built = [n for n, m in FORMATS.items() if m.unavailable() is None]
    assert [a["name"] for a in manifest["artifacts"]] == built and manifest["failed"] == []


def test_every_format_passes_embedding_parity(exported):
    """Each artifact and variant had its embedding judged at export (cosine per clip with forward_features)."""
    for artifact in read_manifest(exported)["artifacts"]:
        for name, result in [(artifact["name"], artifact["parity"]), *artifact.get("variants", {}).items()]:
            precision = registry.get(name).precision_of(artifact)
            embedding = result["embedding"]
            assert result["passed"] and embedding is not None, (name, result["failures"])
            assert embedding["bound"] == EMBEDDING_MIN_COSINE[precision]
            assert embedding["min_cosine"] >= embedding["bound"], name
            if precision == "fp32":
                assert embedding["max_abs"] <= FP32_ATOL, name


@pytest.mark.parametrize("kind", ["waveform", "fbank"])
def test_every_backend_returns_the_pytorch_embedding(exported, exported_fbank, reference, speech, kind):
    """``Backend.run(embedding=True)`` of every runnable backend equals ``forward_features`` on the same
    windows; its logits equal the plain logits path's, which fetches no embedding."""
    artifacts = ArtifactDir(exported if kind == "waveform" else exported_fbank)
    rows, lengths, _ = speech_windows(speech)
    rows, lengths = np.concatenate([rows, rows[:1]]), np.concatenate([lengths, [9000]])  # and a short clip
    expected = reference_embeddings(reference, rows, lengths)
    x, n = torch.from_numpy(rows), torch.from_numpy(lengths)
    if kind == "fbank":
        x, n = KaldiFbank(artifacts.frontend_config)(x, n), None
    names = runnable(artifacts)
    assert {"torchscript", "onnx", "pytorch"} <= set(names) | {"pytorch"}
    for name in [*names, "pytorch"]:
        backend = artifacts.open(name)
        try:
            out = backend.run(x, n, embedding=True)
            plain = backend.run(x, n)
            logits = backend(x, n)
        finally:
            backend.close()
        assert backend.has_embedding and plain.embedding is None, name
        assert out.embedding.dtype == torch.float32 and out.embedding.shape == (len(rows), EMBED_DIM), name
        torch.testing.assert_close(out.logits, logits, rtol=0, atol=1e-6, msg=name)
        torch.testing.assert_close(plain.logits, logits, rtol=0, atol=1e-6, msg=name)
        assert_close_embeddings(out.embedding.numpy(), expected, backend.precision, f"{kind} {name}")


def test_parity_fails_on_the_embedding_alone(exported, tmp_path):
    """An ONNX graph whose embedding output is bent (its logits untouched, the hash matching): parity fails
    on the embedding, not on the logits; the same directory's untouched artifact passes."""
    import onnx
    from onnx import helper, numpy_helper

    broken = tmp_path / "broken"
    shutil.copytree(exported, broken)
    model = onnx.load(str(broken / "model.onnx"))
    for node in model.graph.node:  # the producer writes "embedding_raw"; its readers (the head) read that
        node.output[:] = ["embedding_raw" if o == "embedding" else o for o in node.output]
        node.input[:] = ["embedding_raw" if i == "embedding" else i for i in node.input]
    bend = np.zeros(EMBED_DIM, np.float32)
    bend[: EMBED_DIM // 2] = 1.0  # half the coordinates moved by 1: a clearly other direction
    model.graph.initializer.append(numpy_helper.from_array(bend, "embedding_bend"))
    model.graph.node.append(helper.make_node("Add", ["embedding_raw", "embedding_bend"], ["embedding"]))
    onnx.save(model, str(broken / "model.onnx"))
    manifest = json.loads((broken / "manifest.json").read_text())
    (entry,) = next(a for a in manifest["artifacts"] if a["name"] == "onnx")["files"]
    entry["sha256"] = sha256_file(broken / "model.onnx")
    (broken / "manifest.json").write_text(json.dumps(manifest))

    report = run_parity(broken, ["onnx", "torchscript"], n=4)
    onnx_result, torchscript_result = report.results
    assert onnx_result.max_abs_logit <= 1e-4 and onnx_result.min_cosine >= 0.99999  # logits as good as ever
    assert len(onnx_result.failures) == 1 and onnx_result.failures[0].startswith("min embedding cosine")
    assert onnx_result.embedding.min_cosine < EMBEDDING_MIN_COSINE["fp32"]
    assert torchscript_result.passed and torchscript_result.embedding.max_abs <= FP32_ATOL
    table = run_cli("parity", broken, "--backends", "onnx", "--n", "4")
    assert table.code == 1 and "min embedding cosine" in table.stdout


# --- the Python API and predict -------------------------------------------------------------------


def test_predict_gives_window_and_file_embeddings(tiny_model_dir, reference, speech):
    clf = ast_deploy.load(tiny_model_dir)
    assert clf.has_embedding
    with_embeddings, without = clf.predict([(speech, RATE)], embeddings=True)[0], clf.predict([(speech, RATE)])[0]
    rows, lengths, starts = speech_windows(speech)
    assert with_embeddings.starts == starts and without.window_embeddings is None and without.embedding is None
    np.testing.assert_allclose(with_embeddings.window_embeddings, reference_embeddings(reference, rows, lengths),
                               rtol=0, atol=1e-5)  # fmt: skip
    np.testing.assert_array_equal(with_embeddings.window_scores, without.window_scores)
    np.testing.assert_allclose(with_embeddings.embedding, with_embeddings.window_embeddings.mean(axis=0), atol=1e-7)
    assert with_embeddings.embedding.dtype == np.float32 and with_embeddings.embedding.shape == (EMBED_DIM,)
    # a live stream's windows carry the same embeddings as predict's with that hop
    stream = clf.stream(hop=0.5, embeddings=True)
    windows = [w for i in range(0, len(speech), 3000) for w in stream.push(speech[i : i + 3000])] + stream.flush()
    offline = clf.predict([(speech, RATE)], hop_seconds=0.5, embeddings=True)[0]
    assert [w.start_sample for w in windows] == offline.starts
    np.testing.assert_allclose([w.embedding for w in windows], offline.window_embeddings, rtol=0, atol=SAME_ATOL)


@pytest.mark.parametrize("backend", ["pytorch", "torchscript", "onnx", "aoti", "openvino", "onnx-int8"])
def test_predict_cli_embeddings_equal_forward_features(exported, reference, speech, backend):
    artifacts = ArtifactDir(exported)
    if backend not in [*runnable(artifacts), "pytorch"]:
        pytest.skip(f"{backend} does not run here")
    result = run_cli("predict", exported, SPEECH_WAV, "--json", "--embeddings", "--backend", backend, "-k", "2")
    assert result.code == 0, result.stderr
    (got,) = result.json()["results"]
    assert list(got) == ["source", "duration", "aggregate", "top", "embedding", "windows"]
    assert all(list(w) == ["start", "end", "top", "embedding"] for w in got["windows"])
    rows, lengths, _ = speech_windows(speech)
    precision = registry.get(backend).precision
    windows = np.array([w["embedding"] for w in got["windows"]], np.float32)
    assert_close_embeddings(windows, reference_embeddings(reference, rows, lengths), precision, backend)
    np.testing.assert_allclose(got["embedding"], windows.mean(axis=0), rtol=0, atol=1e-6)
    plain = run_cli("predict", exported, SPEECH_WAV, "--json", "--backend", backend, "-k", "2")
    (without,) = plain.json()["results"]
    assert "embedding" not in without and not any("embedding" in w for w in without["windows"])
    assert without["top"] == got["top"]


def test_predict_embeddings_without_json_is_one_line(tiny_model_dir):
    assert_input_error(run_cli("predict", tiny_model_dir, SPEECH_WAV, "--embeddings"), "--embeddings", "--json")


# --- artifacts exported before embeddings ------------------------------------------------------------


def test_an_artifact_exported_before_embeddings_keeps_working_with_logits(speech):
    manifest = read_manifest(MANIFEST_V1)
    assert "outputs" not in manifest and ArtifactDir(MANIFEST_V1).outputs == ("logits",)
    clf = open_classifier(MANIFEST_V1, "torchscript")
    try:
        assert not clf.has_embedding
        plain = clf.predict([(speech, RATE)])[0]  # logits as ever
        assert plain.window_scores.shape == (5, len(manifest["labels"])) and plain.embedding is None
        with pytest.raises(InputError, match="has no embedding output: its artifact was exported before"):
            clf.predict([(speech, RATE)], embeddings=True)
        with pytest.raises(InputError, match="re-export"):
            clf.backend.run(torch.zeros(1, WINDOW), torch.tensor([WINDOW]), embedding=True)
    finally:
        clf.close()
    # the reference weights of the same directory have the embedding (PyTorch computes it)
    assert open_classifier(MANIFEST_V1, "pytorch").has_embedding
    assert ArtifactDir(MANIFEST_V1).embedding_unavailable("pytorch") is None
    assert "no embedding output" in ArtifactDir(MANIFEST_V1).embedding_unavailable("torchscript")
    # parity judges its logits, and says nothing of an embedding it does not have
    (result,) = run_parity(MANIFEST_V1, ["torchscript"], n=3).results
    assert result.passed and result.embedding is None


def test_asking_an_older_artifact_for_embeddings_is_one_line(tmp_path):
    line = assert_input_error(
        run_cli("predict", MANIFEST_V1, SPEECH_WAV, "--json", "--embeddings"), "--embeddings", "no embedding output"
    )
    assert str(MANIFEST_V1) in line and "re-export" in line
    ok = run_cli("predict", MANIFEST_V1, SPEECH_WAV, "--json")
    assert ok.code == 0 and "embedding" not in ok.json()["results"][0]


# --- batch ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, speech) -> Path:
    root = tmp_path_factory.mktemp("emb_corpus")
    write_wav(root / "speech.wav", speech, subtype="FLOAT")  # five windows
    write_wav(root / "short.wav", speech[4000:12000], subtype="FLOAT")  # one padded window
    write_wav(root / "two.wav", speech[:30000], subtype="FLOAT")
    return root


def predicted(model, backend: str | None, paths: list[Path], hop: float | None = None) -> dict[str, object]:
    clf = open_classifier(model, backend) if (Path(model) / "manifest.json").is_file() else ast_deploy.load(model)
    try:
        return {str(p): clf.predict([p], hop_seconds=hop, embeddings=True)[0] for p in paths}
    finally:
        clf.close()


@pytest.mark.parametrize("backend", [None, "torchscript", "openvino"])
def test_the_batch_actor_gives_predicts_embeddings(tiny_model_dir, exported, corpus, backend):
    """The actor called directly (no Ray): shared batches across files, padded static shapes on OpenVINO."""
    from ast_deploy.batch.decode import decode
    from ast_deploy.batch.model import ModelSpec, ScoreSettings, scorer_class
    from ast_deploy.batch.schema import Columns, split_timeline

    model = tiny_model_dir if backend is None else exported
    if backend is not None and backend not in runnable(ArtifactDir(exported)):
        pytest.skip(f"{backend} does not run here")
    cols = Columns(scores="float32", embeddings=True, timeline=True)
    scorer = scorer_class(ModelSpec(str(model), backend, threads=1), ScoreSettings(columns=cols, batch_size=3))()
    paths = sorted(corpus.glob("*.wav"))
    rows = [decode({"path": str(p), "size": 1, "mtime": 1}, RATE, 400, 25.0) for p in paths]
    batch = {k: np.array([r[k] for r in rows], dtype=object if k == "samples" else None) for k in rows[0]}
    files, timeline = split_timeline(scorer(batch), cols)
    expected = predicted(model, backend, paths)
    windows = timeline.to_pylist()
    for row in files.to_pylist():
        p = expected[row["path"]]
        np.testing.assert_allclose(row["embedding"], p.embedding, rtol=0, atol=SAME_ATOL)
        mine = [w["embedding"] for w in windows if w["path"] == row["path"]]
        np.testing.assert_allclose(mine, p.window_embeddings, rtol=0, atol=SAME_ATOL)


@pytest.mark.parametrize("backend", ["torchscript", "openvino"])
def test_batch_embeddings_equal_predicts(exported, corpus, tmp_path, backend):
    """``ast-deploy batch --embeddings`` on Ray: per file and per window, predict's embeddings (<= 1e-5)."""
    pytest.importorskip("ray")
    pq = pytest.importorskip("pyarrow.parquet")
    from test_batch import RAY_FLAGS

    if backend not in runnable(ArtifactDir(exported)):
        pytest.skip(f"{backend} does not run here")
    out = tmp_path / "out"
    result = run_cli(
        "batch", exported, corpus, "--out", out, "--backend", backend, "--embeddings", "--timeline", "--hop", "0.5",
        "--batch-size", "4", "--json", *RAY_FLAGS,
    )  # fmt: skip
    assert result.code == 0, result.stderr
    assert result.json()["ok"] == 3
    files = {r["path"]: r for r in pq.read_table(out / "files").to_pylist()}
    timeline: dict[str, list] = {}
    for w in pq.read_table(out / "timeline").to_pylist():
        timeline.setdefault(w["path"], []).append(w)
    expected = predicted(exported, backend, sorted(corpus.glob("*.wav")), hop=0.5)
    assert sorted(files) == sorted(expected)
    for path, p in expected.items():
        assert len(files[path]["embedding"]) == EMBED_DIM
        np.testing.assert_allclose(files[path]["embedding"], p.embedding, rtol=0, atol=SAME_ATOL)
        windows = sorted(timeline[path], key=lambda w: w["window"])
        np.testing.assert_allclose([w["embedding"] for w in windows], p.window_embeddings, rtol=0, atol=SAME_ATOL)


# --- Triton ---------------------------------------------------------------------------------------


def test_triton_configs_serve_the_embedding(exported):
    from ast_deploy.serving.repository import RepositoryOptions, parse_config, plan_repository

    pytest.importorskip("tritonclient.grpc")
    plan = plan_repository(read_manifest(exported), RepositoryOptions(python=("onnx", "openvino")))
    outputs = {m.name: [(o.name, list(o.dims)) for o in parse_config(m.config).output] for m in plan.models}
    assert outputs["onnx"] == [("logits", [10]), ("embedding", [EMBED_DIM])]
    assert outputs["torchscript"] == [("logits__0", [10]), ("embedding__1", [EMBED_DIM])]
    assert outputs["onnx-python"] == [("logits", [10]), ("scores", [10]), ("embedding", [EMBED_DIM])]
    info = json.loads(parse_config(plan.models[0].config).parameters["ast_deploy"].string_value)
    assert info["embedding"]["definition"] == EMBEDDING_DEFINITION
    # LibTorch names outputs by position: the TorchScript graph answers (logits, embedding) in that order
    module = torch.jit.load(str(exported / "model.ts"))
    logits, embedding = module(torch.zeros(2, WINDOW), torch.tensor([WINDOW, 5000]))
    assert logits.shape == (2, 10) and embedding.shape == (2, EMBED_DIM)
    # a directory exported before embeddings is served as before: logits (and scores) only
    old = plan_repository(read_manifest(MANIFEST_V1), RepositoryOptions(python=("torchscript",)))
    assert {m.name: m.outputs for m in old.models} == {
        "torchscript": ["logits__0"],
        "torchscript-python": ["logits", "scores"],
    }


def test_the_python_model_answers_the_embedding(exported, reference, speech):
    from ast_deploy.serving.python_model import open_runner

    runner = open_runner(exported, "onnx", threads=1)
    rows, lengths, _ = speech_windows(speech)
    x, n = torch.from_numpy(rows), torch.from_numpy(lengths)[:, None]
    results = runner.run([(x[:2], n[:2]), (x[2:], n[2:]), (x[:1, :100], n[:1])])  # the last: a wrong shape
    assert runner.outputs == ("logits", "scores", "embedding") and isinstance(results[2], str)
    embedding = torch.cat([results[0][2], results[1][2]]).numpy()
    assert_close_embeddings(embedding, reference_embeddings(reference, rows, lengths), "fp32", "onnx-python")


@pytest.fixture(scope="module")
def server(exported, tmp_path_factory):
    pytest.importorskip("tritonclient.grpc")
    from ast_deploy.serving.repository import RepositoryOptions, write_repository
    from ast_deploy.serving.server import TritonServer, tritonserver_unavailable

    if reason := tritonserver_unavailable():
        pytest.skip(reason)
    repo = tmp_path_factory.mktemp("emb_triton") / "repo"
    write_repository(exported, repo, RepositoryOptions(native=(), python=("onnx",), threads=1))
    srv = TritonServer(repo)
    srv.start(timeout=180)
    yield srv
    srv.stop()


def test_a_triton_server_returns_the_embedding_and_predict_url_reads_it(server, exported, reference, speech):
    from ast_deploy.runtime.triton import TritonClient

    rows, lengths, _ = speech_windows(speech)
    expected = reference_embeddings(reference, rows, lengths)
    for url in (server.http_url, server.grpc_url):
        client = TritonClient(url)
        try:
            got = client.infer({"waveform": rows[:3], "num_samples": lengths[:3, None]})
        finally:
            client.close()
        assert set(got) == {"logits", "scores", "embedding"}
        assert_close_embeddings(got["embedding"], expected[:3], "fp32", url)
    args = [SPEECH_WAV, "--json", "--embeddings", "--hop", "0.5", "-k", "3"]
    remote = run_cli("predict", "--url", server.grpc_url, *args)
    local = run_cli("predict", exported, "--backend", "onnx", *args)
    assert remote.code == 0 and local.code == 0, remote.stderr + local.stderr
    r, loc = remote.json()["results"][0], local.json()["results"][0]
    np.testing.assert_allclose(r["embedding"], loc["embedding"], rtol=0, atol=SAME_ATOL)
    np.testing.assert_allclose([w["embedding"] for w in r["windows"]], [w["embedding"] for w in loc["windows"]],
                               rtol=0, atol=SAME_ATOL)  # fmt: skip


# --- the C++ host -----------------------------------------------------------------------------------


def cpp_backends(artifacts: ArtifactDir) -> list[str]:
    """Artifacts the C++ host runs (formats torchscript, aoti, openvino) that this machine runs too."""
    names = [a["name"] for a in artifacts.manifest["artifacts"] if a["format"] in ("torchscript", "aoti", "openvino")]
    return [n for n in names if artifacts.unavailable(n, "cpu") is None]


@pytest.mark.parametrize("backend", ["torchscript", "aoti", "aoti-int8", "openvino", "openvino-int8"])
def test_the_cpp_host_returns_predicts_embeddings(request, exported, reference, speech, backend):
    """``ast_classify --json --embeddings``: the keys and order of ``predict --json --embeddings``, each window's
    and the file's embedding equal to Python's on the same artifact and to ``forward_features``."""
    if backend not in cpp_backends(ArtifactDir(exported)):
        pytest.skip(f"{backend} is not exported or does not run here")
    # OpenVINO artifacts run in the OpenVINO build (build/cpp-openvino), the rest in the libtorch one.
    host = request.getfixturevalue("ov_host" if backend.startswith("openvino") else "host")
    proc = run_host(host, exported, SPEECH_WAV, "--json", "--embeddings", "--backend", backend, "-k", "3")
    assert proc.returncode == 0, proc.stderr
    (cpp,) = json.loads(proc.stdout)["results"]
    result = run_cli("predict", exported, SPEECH_WAV, "--json", "--embeddings", "--backend", backend, "-k", "3")
    assert result.code == 0, result.stderr
    (py,) = result.json()["results"]
    assert list(cpp) == list(py) and [list(w) for w in cpp["windows"]] == [list(w) for w in py["windows"]]
    windows = np.array([w["embedding"] for w in cpp["windows"]], np.float32)
    np.testing.assert_allclose(windows, [w["embedding"] for w in py["windows"]], rtol=0, atol=SAME_ATOL)
    np.testing.assert_allclose(cpp["embedding"], py["embedding"], rtol=0, atol=SAME_ATOL)
    np.testing.assert_allclose(cpp["embedding"], windows.mean(axis=0), rtol=0, atol=1e-6)
    rows, lengths, _ = speech_windows(speech)
    precision = registry.get(backend).precision
    assert_close_embeddings(windows, reference_embeddings(reference, rows, lengths), precision, f"C++ {backend}")


def test_the_cpp_host_refuses_embeddings_of_an_older_artifact_in_one_line(host):
    proc = run_host(host, MANIFEST_V1, SPEECH_WAV, "--json", "--embeddings")
    line = assert_one_error_line(proc, "manifest_v1", "no embedding output", "re-export")
    assert "torchscript" in line
    assert_one_error_line(run_host(host, MANIFEST_V1, SPEECH_WAV, "--embeddings"), "--embeddings", "--json")
    plain = run_host(host, MANIFEST_V1, SPEECH_WAV, "--json")
    assert plain.returncode == 0 and "embedding" not in json.loads(plain.stdout)["results"][0]
