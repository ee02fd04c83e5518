"""The runtime registry: one entry per backend, consistent with the export formats it runs."""

from __future__ import annotations

import pytest

from ast_deploy.errors import InputError
from ast_deploy.export import FORMATS
from ast_deploy.runtime import registry


def test_every_export_format_has_a_backend_of_the_same_format_and_precision():
    for name, module in FORMATS.items():
        entry = registry.get(name)
        assert entry.runs_artifact and entry.artifact_name == name
        assert (entry.format, entry.precision) == (module.FORMAT, module.PRECISION), name


def test_every_artifact_backend_runs_an_exported_format():
    for name in registry.artifact_backends():
        entry = registry.get(name)
        assert entry.artifact_name in FORMATS, name
        assert entry.format == FORMATS[entry.artifact_name].FORMAT, name
        # what the runtime module must provide for an artifact backend
        module = registry.module(entry)
        assert callable(module.open_artifact) and callable(module.unavailable), entry.runtime


def test_variants_are_data():
    trt = registry.get("onnx-trt")
    assert trt.artifact_name == "onnx-fp16" and trt.devices == ("cuda",) and trt.option("provider") == "tensorrt"
    assert registry.get("pytorch-int8").options["quantize"] == "int8"


def test_reference_backends_run_no_artifact():
    names = registry.reference_backends()
    assert "pytorch" in names and not set(names) & set(registry.artifact_backends())
    remote = registry.remote_backends()  # served models (triton): neither kind
    assert "triton" in remote and not set(remote) & (set(names) | set(registry.artifact_backends()))
    assert set(names) | set(registry.artifact_backends()) | set(remote) == set(registry.names())


def test_unknown_backend_is_an_input_error_naming_the_known_ones():
    with pytest.raises(InputError, match=r"unknown backend 'nope'.*torchscript"):
        registry.get("nope")


def test_default_is_the_best_ranked_that_can_run_here(monkeypatch):
    offered = ["onnx-int8", "aoti", "torchscript", "onnx", "pytorch"]
    assert registry.preferred("cpu", offered) == "onnx"  # int8 is asked for by name, never by default
    assert registry.preferred("cpu", ["aoti", "torchscript", "pytorch"]) == "torchscript"
    # an AOTInductor package compiled for CUDA is skipped on the CPU
    assert registry.preferred("cpu", ["aoti", "pytorch"], {"aoti": {"device": "cuda"}}) == "pytorch"
    # TensorRT ranks first on CUDA where it can run and its (FP16) engine passed parity; else the fallback is
    # PyTorch. Whether it can run is its runtime module's answer, set here, so that both cases are checked on
    # every host, with a GPU or without.
    cuda = ["tensorrt", "pytorch"]
    passed = {"tensorrt": {"parity": {"passed": True}}}
    real = registry.preferred("cuda", cuda, passed)
    assert real == ("pytorch" if registry.unavailable("tensorrt", "cuda") else "tensorrt")
    tensorrt = registry.module(registry.get("tensorrt"))
    monkeypatch.setattr(tensorrt, "unavailable", lambda entry, device, artifact=None: None)
    assert registry.preferred("cuda", cuda, passed) == "tensorrt"
    assert registry.preferred("cuda", cuda) == "pytorch"  # an engine whose parity was never checked
    assert registry.preferred("cuda", cuda, {"tensorrt": {"parity": {"passed": False}}}) == "pytorch"
    monkeypatch.setattr(tensorrt, "unavailable", lambda entry, device, artifact=None: "no GPU here")
    assert registry.preferred("cuda", cuda, passed) == "pytorch"


def test_device_restrictions_say_why():
    assert registry.unavailable("tensorrt", "cpu") == "runs on an NVIDIA GPU only (use --device cuda)"
    assert registry.unavailable("aoti", "cpu", {"device": "cuda"}) == (
        "the AOTInductor package was compiled for cuda, not cpu"
    )
    assert registry.unavailable("torchscript", "cpu") is None


def test_the_architecture_docs_list_every_backend():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "architecture.md").read_text()
    missing = [name for name in registry.names() if f"| `{name}` | `{registry.get(name).runtime}` |" not in text]
    assert not missing, f"docs/architecture.md's registry table lacks {missing}"
