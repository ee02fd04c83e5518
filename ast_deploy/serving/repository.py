"""A Triton Inference Server model repository from an artifact directory's manifest.

:func:`plan_repository` is a pure function of the manifest (and the options): it returns every
file of the repository, either as text or as an artifact file to copy with its sha256, so that it
can be checked without touching a disk. :func:`write_repository` materialises a plan atomically,
checking every copied file against the manifest's hash.

One Triton model per chosen artifact, with its native Triton backend where Triton has one:

========================  =======================  ============  ===========================
manifest format           Triton platform          model file    instances
========================  =======================  ============  ===========================
``tensorrt``              ``tensorrt_plan``        model.plan    KIND_GPU (engines are GPU-only)
``onnx`` (fp32/fp16/int8) ``onnxruntime_onnx``     model.onnx    --kind (default KIND_AUTO)
``torchscript``           ``pytorch_libtorch``     model.pt      --kind (default KIND_AUTO)
========================  =======================  ============  ===========================

and, for any ast-deploy runtime backend (AOTInductor, OpenVINO, ... or the ones above), a
``python``-backend model that runs it through :mod:`ast_deploy.serving.python_model`: the model
directory holds the artifact's files and a manifest reduced to that artifact, so that the hashes
are checked again when the server loads it. Python-backend models answer ``logits`` and ``scores``
(the model's activation); native models answer ``logits`` (the artifact's bytes are served
unchanged, so their hashes and parity still hold), and since the activation is monotone Triton's
classification extension ranks labels the same on either. Every model of a directory exported since
embeddings also answers ``embedding`` (the clip embedding, ``embed_dim`` floats per row; TorchScript
names it ``embedding__1``); one exported before answers logits (and scores) only.

Every model carries its provenance in ``ast-deploy.json`` and in the ``ast_deploy`` config
parameter (artifact, files and hashes, parity, labels, input spec), which is what the client
reads to window, batch and label like local predict. An artifact whose parity failed is never
written.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError
from ..export.manifest import MANIFEST, output_names
from ..extras import missing
from ..fileio import atomic_dir, sha256_file
from ..model import EMBEDDING_NAME
from ..runtime.triton import PARAMETER  # what the client reads back

PROVENANCE = "ast-deploy.json"
LABELS = "labels.txt"
PYTHON_MODEL_SUFFIX = "-python"
ARTIFACTS_SUBDIR = "artifacts"  # inside a python-backend model's version directory
INSTANCE_KINDS = {"auto": "KIND_AUTO", "cpu": "KIND_CPU", "gpu": "KIND_GPU"}
# Triton's data types for the manifest's dtype names (model_config.proto DataType).
DATA_TYPES = {"float32": "TYPE_FP32", "float16": "TYPE_FP16", "int64": "TYPE_INT64", "int32": "TYPE_INT32"}


@dataclass(frozen=True)
class Native:
    """A Triton backend that runs an artifact format itself."""

    platform: str
    file: str  # the name Triton's backend looks for in the version directory
    output: str  # the graph output's name as that backend knows it
    kind: str | None = None  # a fixed instance kind (TensorRT engines run on the GPU only)
    embedding: str = EMBEDDING_NAME  # the embedding output's name as that backend knows it

    def outputs(self, manifest: dict) -> list[str]:
        """The outputs it serves: logits, and the embedding where the manifest's graphs have one."""
        return [self.output, *([self.embedding] if EMBEDDING_NAME in output_names(manifest) else [])]


# Keyed by the manifest's artifact "format". LibTorch names outputs by position (``<name>__<index>``)
# but inputs by the forward() argument names, which are the manifest's input names.
NATIVE: dict[str, Native] = {
    "tensorrt": Native("tensorrt_plan", "model.plan", "logits", "KIND_GPU"),
    "onnx": Native("onnxruntime_onnx", "model.onnx", "logits"),
    "torchscript": Native("pytorch_libtorch", "model.pt", "logits__0", embedding="embedding__1"),
}


def _embed_dim(manifest: dict) -> int | None:
    return (manifest.get("embedding") or {}).get("dim") or manifest["model"].get("embed_dim")


def python_outputs(manifest: dict) -> list[str]:
    """What a python-backend model answers: logits, scores, and the embedding where the graphs have one."""
    return ["logits", "scores", *([EMBEDDING_NAME] if EMBEDDING_NAME in output_names(manifest) else [])]


PLATFORMS = tuple(n.platform for n in NATIVE.values())


@dataclass(frozen=True)
class RepositoryOptions:
    """What to serve and how. ``native``: artifacts served by their Triton backend (``None``: every
    artifact that has one); ``python``: ast-deploy backends served by the python backend (``None``:
    every artifact without a native one)."""

    native: tuple[str, ...] | None = None
    python: tuple[str, ...] | None = None
    max_batch: int | None = None  # default: the export's batch max
    queue_delay_us: int = 500
    preferred: tuple[int, ...] | None = None  # preferred batch sizes (default: the export's opt and max)
    instances: int = 1
    kind: str = "auto"  # instance kind of ONNX/TorchScript/python models: auto | cpu | gpu
    threads: int | None = None  # intra-op threads of each python-backend instance
    version: int = 1


@dataclass(frozen=True)
class CopyFile:
    """An artifact file to copy into the repository: path relative to the artifact directory."""

    source: str
    sha256: str
    bytes: int | None = None


@dataclass
class ModelPlan:
    name: str
    backend: str  # "tensorrt_plan", "onnxruntime_onnx", "pytorch_libtorch" or "python"
    artifact: str  # the manifest artifact it serves
    runtime_backend: str | None  # the ast-deploy backend a python model runs
    config: str  # config.pbtxt text
    outputs: list[str]
    precision: str
    parity: dict | None


@dataclass
class RepositoryPlan:
    files: dict[str, str | CopyFile] = field(default_factory=dict)  # repository-relative path -> content
    models: list[ModelPlan] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)  # {"name", "reason"}


# --- config.pbtxt --------------------------------------------------------------------------------


class Enum(str):
    """A protobuf enum value: written bare in text format."""


def _scalar(value) -> str:
    if isinstance(value, Enum):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    text = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{text}"'


def render_pbtxt(message: dict, indent: int = 0) -> str:
    """A nested dict as protobuf text format (lists of dicts: repeated messages; lists: packed)."""
    pad = " " * indent
    lines = []
    for key, value in message.items():
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            blocks = [f"{pad}  {{\n{render_pbtxt(v, indent + 4)}\n{pad}  }}" for v in value]
            lines.append(f"{pad}{key} [\n" + ",\n".join(blocks) + f"\n{pad}]")
        elif isinstance(value, list):
            lines.append(f"{pad}{key}: [ {', '.join(_scalar(v) for v in value)} ]".replace("[  ]", "[ ]"))
        elif isinstance(value, dict):
            lines.append(f"{pad}{key} {{\n{render_pbtxt(value, indent + 2)}\n{pad}}}")
        else:
            lines.append(f"{pad}{key}: {_scalar(value)}")
    return "\n".join(lines)


def parse_config(text: str, where: str = "config.pbtxt"):
    """``text`` parsed with Triton's own schema (``ModelConfig`` from tritonclient); raises on any
    field or enum value the schema does not know, and on platforms and data types we do not write."""
    if reason := config_schema_missing():  # pragma: no cover - the serve extra is part of dev
        raise InputError(f"checking {where}: {reason}")
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    try:
        config = text_format.Parse(text, model_config_pb2.ModelConfig())
    except text_format.ParseError as e:
        raise InputError(f"{where}: not a Triton ModelConfig: {e}") from None
    # The schema leaves platform and backend free-form strings: check the values we know.
    if config.platform and config.platform not in PLATFORMS:
        raise InputError(f"{where}: unknown platform {config.platform!r} (known: {', '.join(PLATFORMS)})")
    if config.backend and config.backend != "python":
        raise InputError(f"{where}: unknown backend {config.backend!r}")
    if bool(config.platform) == bool(config.backend):
        raise InputError(f"{where}: exactly one of platform and backend must be set")
    for tensor in [*config.input, *config.output]:
        if tensor.data_type == model_config_pb2.TYPE_INVALID:
            raise InputError(f"{where}: {tensor.name} has no data_type")
    return config


# --- the plan ------------------------------------------------------------------------------------


def _parity_failed(artifact: dict) -> bool:
    parity = artifact.get("parity")
    return isinstance(parity, dict) and parity.get("passed") is False


def _batching(manifest: dict, options: RepositoryOptions) -> tuple[int, list[int]]:
    batch = manifest["input"]["batch"]
    max_batch = options.max_batch or batch["max"]
    if max_batch > batch["max"]:
        raise InputError(f"--max-batch {max_batch}: the artifacts were exported for batches up to {batch['max']}")
    if max_batch < 1:
        raise InputError(f"--max-batch {max_batch}: must be at least 1")
    wanted = options.preferred or (batch["opt"], max_batch)
    preferred = sorted({b for b in wanted if batch["min"] <= b <= max_batch})
    return max_batch, preferred


def _tensors(manifest: dict) -> list[dict]:
    """The inputs, batch dimension excluded. A per-row length (``num_samples``: shape (B,) in the
    graph) travels as (B, 1) and is reshaped to (B,) by Triton, since a batched input needs dims."""
    spec = manifest["input"]
    dtypes = spec.get("dtypes") or {n: ("int64" if n == "num_samples" else "float32") for n in spec["names"]}
    out = []
    for name in spec["names"]:
        dtype = DATA_TYPES[dtypes[name]]
        if name == "waveform":
            out.append({"name": name, "data_type": Enum(dtype), "dims": [spec["num_samples"]]})
        elif name == "num_samples":
            out.append({"name": name, "data_type": Enum(dtype), "dims": [1], "reshape": {"shape": []}})
        elif name == "fbank":
            out.append({"name": name, "data_type": Enum(dtype), "dims": [spec["num_frames"], spec["num_mel_bins"]]})
        else:
            raise InputError(f"manifest input {name!r}: not an input this writer knows")
    return out


def served_spec(manifest: dict, artifact: dict, runtime_backend: str | None, max_batch: int) -> dict:
    """What the ``ast_deploy`` parameter carries: enough for a client to window, batch and label."""
    from ..runtime import registry

    spec = manifest["input"]
    return {
        "artifact": artifact["name"],
        "backend": runtime_backend,
        "format": artifact["format"],
        # what the served model computes in: a python model of openvino-bf16 is bf16, not its IR's fp32
        "precision": registry.get(runtime_backend).precision_of(artifact) if runtime_backend else artifact["precision"],
        "files": artifact["files"],
        "parity": artifact.get("parity"),
        "source_sha256": manifest.get("source", {}).get("sha256"),
        "labels": manifest["labels"],
        "activation": manifest["activation"],
        "embedding": manifest.get("embedding"),  # what the embedding output is (None: exported before embeddings)
        "input": {
            "kind": spec["kind"],
            "sample_rate": spec["sample_rate"],
            "num_samples": spec.get("num_samples"),
            "num_frames": spec["num_frames"],
            "num_mel_bins": spec["num_mel_bins"],
            "batch": {**spec["batch"], "max": max_batch},
            "frontend": spec["frontend"],
        },
    }


def _config(
    name: str,
    engine: dict,
    manifest: dict,
    inputs: list[dict],
    outputs: list[str],
    kind: str,
    options: RepositoryOptions,
    provenance: dict,
    extra: dict,
) -> str:
    max_batch, preferred = _batching(manifest, options)
    num_labels = len(manifest["labels"])
    embed_dim = _embed_dim(manifest)
    batching: dict = {"max_queue_delay_microseconds": options.queue_delay_us}
    if preferred:
        batching = {"preferred_batch_size": preferred, **batching}
    # the parameter carries the verdict; the full parity report is in ast-deploy.json beside it
    parity = provenance.get("parity")
    brief = {
        **provenance,
        "parity": {"passed": parity.get("passed"), "inputs": parity.get("inputs")} if parity else None,
    }
    parameters = {PARAMETER: json.dumps(brief, separators=(",", ":")), **extra}
    config = {
        "name": name,
        **engine,
        "max_batch_size": max_batch,
        "input": inputs,
        "output": [
            {"name": o, "data_type": Enum("TYPE_FP32"), "dims": [embed_dim]}
            if o.startswith(EMBEDDING_NAME)
            else {"name": o, "data_type": Enum("TYPE_FP32"), "dims": [num_labels], "label_filename": LABELS}
            for o in outputs
        ],
        "dynamic_batching": batching,
        "instance_group": [{"count": options.instances, "kind": Enum(kind)}],
        "version_policy": {"specific": {"versions": [options.version]}},
        "parameters": [{"key": k, "value": {"string_value": v}} for k, v in parameters.items()],
    }
    return render_pbtxt(config) + "\n"


def _check_options(options: RepositoryOptions) -> None:
    if options.kind not in INSTANCE_KINDS:
        raise InputError(f"--kind {options.kind!r}: expected {', '.join(INSTANCE_KINDS)}")
    if options.instances < 1:
        raise InputError(f"--instances {options.instances}: must be at least 1")
    if options.queue_delay_us < 0:
        raise InputError(f"--queue-delay-us {options.queue_delay_us}: must be >= 0")
    if options.version < 1:
        raise InputError(f"version {options.version}: must be >= 1")


def plan_repository(manifest: dict, options: RepositoryOptions | None = None) -> RepositoryPlan:
    """Every file of the repository for ``manifest`` (see the module docstring)."""
    from ..runtime import registry

    options = options or RepositoryOptions()
    _check_options(options)
    artifacts = {a["name"]: a for a in manifest["artifacts"]}
    failed = {f["name"] for f in manifest.get("failed", [])}
    plan = RepositoryPlan()

    native = (
        list(options.native)
        if options.native is not None
        else [n for n, a in artifacts.items() if a["format"] in NATIVE]
    )
    python = (
        list(options.python)
        if options.python is not None
        else [n for n, a in artifacts.items() if a["format"] not in NATIVE]
    )
    for name in native:
        artifact = artifacts.get(name)
        if artifact is None:
            reason = "failed parity at export" if name in failed else "not in the manifest"
            raise InputError(f"artifact {name!r}: {reason} (have: {', '.join(artifacts) or 'none'})")
        if artifact["format"] not in NATIVE:
            raise InputError(
                f"artifact {name!r} ({artifact['format']}) has no native Triton backend; serve it with the python backend"
            )
    for name in python:
        entry = registry.get(name)
        if not entry.runs_artifact or entry.option("remote"):
            raise InputError(f"backend {name!r} runs no artifact; the python backend serves artifact backends")
        if entry.artifact_name not in artifacts:
            raise InputError(f"backend {name!r} needs artifact {entry.artifact_name!r}, which the manifest lacks")

    labels_text = "".join(f"{label}\n" for label in manifest["labels"])
    inputs = _tensors(manifest)
    max_batch, _ = _batching(manifest, options)

    for name in native:
        artifact = artifacts[name]
        if _parity_failed(artifact):
            plan.skipped.append({"name": name, "reason": "failed parity"})
            continue
        target = NATIVE[artifact["format"]]
        if manifest["input"]["batch"]["min"] > 1:
            plan.skipped.append({"name": name, "reason": "exported for a minimum batch > 1, which Triton cannot send"})
            continue
        provenance = served_spec(manifest, artifact, None, max_batch)
        kind = target.kind or INSTANCE_KINDS[options.kind]
        served = target.outputs(manifest)
        config = _config(name, {"platform": target.platform}, manifest, inputs, served, kind, options, provenance, {})
        _add_model(plan, name, config, labels_text, provenance)
        files = artifact["files"]
        # the primary file under the name Triton's backend opens; companions (none today) keep theirs
        plan.files[f"{name}/{options.version}/{target.file}"] = _copy(files[0])
        for entry in files[1:]:
            plan.files[f"{name}/{options.version}/{entry['file']}"] = _copy(entry)
        plan.models.append(
            ModelPlan(
                name,
                target.platform,
                name,
                None,
                config,
                served,
                artifact["precision"],
                artifact.get("parity"),
            )
        )

    for backend in python:
        entry = registry.get(backend)
        artifact = artifacts[entry.artifact_name]
        if _parity_failed(artifact):
            plan.skipped.append({"name": backend, "reason": "failed parity"})
            continue
        name = python_model_name(backend)
        provenance = served_spec(manifest, artifact, backend, max_batch)
        extra = {"backend": backend}
        if options.threads:
            extra["threads"] = str(options.threads)
        kind = INSTANCE_KINDS[options.kind]
        served = python_outputs(manifest)
        config = _config(name, {"backend": "python"}, manifest, inputs, served, kind, options, provenance, extra)
        _add_model(plan, name, config, labels_text, provenance)
        version = f"{name}/{options.version}"
        plan.files[f"{version}/model.py"] = PYTHON_MODEL_PY
        reduced = {**manifest, "artifacts": [artifact], "skipped": [], "failed": []}
        reduced.pop("reference", None)  # the reference weights stay behind: parity was checked at export
        plan.files[f"{version}/{ARTIFACTS_SUBDIR}/{MANIFEST}"] = json.dumps(reduced, indent=2) + "\n"
        for f in artifact["files"]:
            plan.files[f"{version}/{ARTIFACTS_SUBDIR}/{f['file']}"] = _copy(f)
        plan.models.append(
            ModelPlan(
                name, "python", artifact["name"], backend, config, served, provenance["precision"],
                artifact.get("parity"),
            )
        )  # fmt: skip

    if not plan.models:
        raise InputError("nothing to serve: no artifact was chosen, or every chosen one failed parity")
    plan.files["README.md"] = readme(manifest, plan)
    return plan


def _copy(entry: dict) -> CopyFile:
    return CopyFile(entry["file"], entry["sha256"], entry.get("bytes"))


def _add_model(plan: RepositoryPlan, name: str, config: str, labels_text: str, provenance: dict) -> None:
    if any(m.name == name for m in plan.models):
        raise InputError(f"model {name!r} asked for twice")
    plan.files[f"{name}/config.pbtxt"] = config
    plan.files[f"{name}/{LABELS}"] = labels_text
    plan.files[f"{name}/{PROVENANCE}"] = json.dumps(provenance, indent=2) + "\n"


# The python-backend model file: the logic lives in the package (tested without a server).
PYTHON_MODEL_PY = '''"""Triton python-backend model written by ast-deploy: runs one ast-deploy runtime backend.

The server's Python needs ast-deploy (and the backend's runtime) installed; see ../README.md.
"""

from ast_deploy.serving.python_model import TritonPythonModel  # noqa: F401
'''


def readme(manifest: dict, plan: RepositoryPlan) -> str:
    """The repository's README: what each model is, its hashes and parity, and how to serve it."""
    source = manifest.get("source", {})
    tools = {}
    for a in manifest["artifacts"]:
        tools.update(a.get("tools") or {})
    rows = []
    for m in plan.models:
        files = ", ".join(f"`{rel}` ({copy.sha256[:12]}…)" for rel, copy in _model_files(plan, m))
        parity = m.parity
        verdict = "not checked" if not parity else ("passed" if parity.get("passed") else "FAILED")
        where = "GPU" if m.backend == "tensorrt_plan" else "CPU or GPU"
        rows.append(f"| `{m.name}` | {m.backend} | `{m.artifact}` ({m.precision}) | {files} | {verdict} | {where} |")
    skipped = "".join(f"- `{s['name']}`: not written ({s['reason']})\n" for s in plan.skipped)
    native = [m for m in plan.models if m.backend != "python"]
    python = [m for m in plan.models if m.backend == "python"]
    example = plan.models[0]
    spec = manifest["input"]
    trt = tools.get("tensorrt")
    lines = [
        "# Triton model repository (written by `ast-deploy triton`)",
        "",
        f"Source checkpoint: `{source.get('path', '?')}` (sha256 `{str(source.get('sha256', '?'))[:16]}…`), "
        f"{len(manifest['labels'])} labels, activation `{manifest['activation']}`, input `{spec['kind']}` "
        f"({_input_text(spec)}), batch up to {spec['batch']['max']}.",
        "",
        "| model | Triton backend | artifact | files (sha256) | parity | runs on |",
        "| --- | --- | --- | --- | --- | --- |",
        *rows,
        "",
        *([skipped] if skipped else []),
        "Every model's `ast-deploy.json` (and its `ast_deploy` config parameter) holds the artifact's",
        "files, sha256 and parity result as exported.",
        "",
        "## Serve it on a GPU machine (NGC container)",
        "",
        "```bash",
        "docker run --gpus all --rm --shm-size=1g -p 8000:8000 -p 8001:8001 -p 8002:8002 \\",
        '    -v "$PWD":/models nvcr.io/nvidia/tritonserver:<yy.mm>-py3 \\',
        "    tritonserver --model-repository=/models",
        "```",
        "",
        f"Pick the container release whose TensorRT is the one that built the engine ({trt})."
        if trt
        else "Any recent release runs the ONNX and TorchScript models.",
        "HTTP on 8000, gRPC on 8001, Prometheus metrics on 8002.",
    ]
    if python:
        lines += [
            "",
            f"Python-backend models ({', '.join(f'`{m.name}`' for m in python)}) run ast-deploy inside the server:",
            "install it into the container's Python first (`pip install ast-deploy[onnx]`, plus the backend's",
            "runtime), or serve them on this machine with `ast-deploy serve`.",
        ]
    if native:
        lines += [
            "",
            "Native models answer `logits`; python-backend models `logits` and `scores`. Labels come with",
            "Triton's classification extension (`class_count`), ranked identically on either.",
        ]
    if EMBEDDING_NAME in output_names(manifest):
        lines += [
            "",
            "Every model also answers `embedding` (TorchScript: `embedding__1`), the clip embedding of each row",
            f"({_embed_dim(manifest)} floats: what the classifier head reads; `ast-deploy predict --url URL",
            "--embeddings --json` reads it).",
        ]
    lines += [
        "",
        "## Ask it",
        "",
        "```bash",
        f"ast-deploy predict --url http://127.0.0.1:8000 --model {example.name} clip.wav",
        f"curl -s localhost:8000/v2/models/{example.name}/config",
        "```",
        "",
    ]
    return "\n".join(lines)


def _input_text(spec: dict) -> str:
    if spec["kind"] == "waveform":
        return f"{spec['num_samples']} samples at {spec['sample_rate']} Hz + num_samples"
    return f"{spec['num_frames']} frames x {spec['num_mel_bins']} mel bins"


def _model_files(plan: RepositoryPlan, model: ModelPlan) -> list[tuple[str, CopyFile]]:
    prefix = f"{model.name}/"
    return [(p[len(prefix) :], c) for p, c in plan.files.items() if p.startswith(prefix) and isinstance(c, CopyFile)]


# --- writing -------------------------------------------------------------------------------------


def write_repository(
    artifact_dir: str | Path, out: str | Path, options: RepositoryOptions | None = None, force: bool = False
) -> RepositoryPlan:
    """Write the repository for ``artifact_dir`` to ``out`` atomically; returns the plan.

    Each copied file is checked against the manifest's sha256 (a tampered artifact is refused), and
    each config against Triton's schema when tritonclient is installed."""
    from ..export.manifest import read_manifest

    artifact_dir = Path(artifact_dir)
    manifest = read_manifest(artifact_dir)
    plan = plan_repository(manifest, options)
    for model in plan.models:
        _try_parse(model.config, f"{model.name}/config.pbtxt")
    with atomic_dir(out, overwrite=force) as tmp:
        materialise(plan, artifact_dir, tmp)
    return plan


def materialise(plan: RepositoryPlan, artifact_dir: Path, root: Path) -> None:
    for rel, content in plan.files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, CopyFile):
            src = artifact_dir / content.source
            if not src.is_file():
                raise InputError(f"{src}: listed in the manifest but missing")
            shutil.copyfile(src, path)
            digest = sha256_file(path)
            if digest != content.sha256:
                raise InputError(
                    f"{src}: sha256 {digest[:12]}... does not match the manifest ({content.sha256[:12]}...)"
                )
        else:
            path.write_text(content)


def config_schema_missing() -> str | None:
    """Why Triton's ``ModelConfig`` schema (tritonclient's gRPC protobufs) cannot be read here, or None."""
    return missing("tritonclient.grpc.model_config_pb2", "serve", "tritonclient[grpc]")


def _try_parse(text: str, where: str) -> None:
    if config_schema_missing():
        return  # the writer works without the serve extra; the tests check every config
    parse_config(text, where)


def python_model_name(backend: str) -> str:
    return backend + PYTHON_MODEL_SUFFIX


__all__ = [
    "NATIVE",
    "CopyFile",
    "ModelPlan",
    "RepositoryOptions",
    "RepositoryPlan",
    "parse_config",
    "plan_repository",
    "python_model_name",
    "render_pbtxt",
    "write_repository",
]
