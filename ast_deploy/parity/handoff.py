"""Hand-off to polygraphy: our parity data and gates in polygraphy's own formats and commands.

``ast-deploy parity ART --polygraphy DIR`` (and ``export --polygraphy DIR``) writes a directory that
a TensorRT user replays with the tool they know, on any machine:

* ``inputs.json``: the parity inputs as polygraphy input data (a JSON list of feed dicts, one per
  iteration, written with :func:`polygraphy.json.to_json`) under the graph's real input names and
  dtypes (``waveform`` float32 + ``num_samples`` int64, or ``fbank`` float32); ``inputs_one.json``
  holds the first iteration only, for layer-wise runs whose outputs are large.
* ``reference.json``: the PyTorch float32 logits for those inputs as a polygraphy ``RunResults``
  (runner ``pytorch-fp32``), for ``--load-outputs``.
* ``load_audio.py``: a ``--data-loader-script`` that feeds real audio through this package's front end.
* ``handoff.json``: what the commands need (input spec, tolerances, the commands themselves).
* ``README.md``: the exact commands for this artifact directory, with the tolerances explained.

Each iteration is one clip (``min_batch`` clips when the export's batch range starts above 1), so
that polygraphy's per-iteration verdicts are per-clip verdicts like ours.

How our thresholds (:data:`ast_deploy.parity.DEFAULT_THRESHOLDS`) become polygraphy checks
(:func:`gate_checks`):

* float32, ``max |logit error| <= 1e-4``: ``--atol 1e-4 --rtol 0 --check-error-stat max``, the same test
  (``rtol 0`` disables polygraphy's relative escape: an element passes on the absolute bound alone).
* FP16/BF16, ``min cosine >= c`` and ``top-1 >= 99 %``: an elementwise bound implies the cosine. With
  ``e`` the error and ``r`` the reference logits of one clip, ``cos(r + e, r) >= sqrt(1 - |e|^2/|r|^2)``,
  so ``max |e_i| <= sqrt(1 - c^2) * rms(r)`` guarantees cosine ``>= c``; the artifact's ``--atol`` is
  that bound with the smallest ``rms(r)`` over the clips. It is sufficient, not necessary (stricter
  than ours). Top-1 is ``--postprocess top-1 --compare indices``, every clip: the same as our 99 % below
  100 clips (one flip is already more than 1 %), stricter from 100 clips on.
  ``--compare cosine_similarity --cosine-similarity-threshold c`` is our cosine test exactly (per clip),
  in polygraphy versions whose CLI has it (0.53 here; 0.49's has only ``simple`` and ``indices``).
* INT8, ``min cosine >= 0.99`` and top-1 on decisive clips: the cosine test exactly; the decisive-clip
  rule has no polygraphy equivalent (the top-1 command is printed for information only).

``parity --crosscheck polygraphy`` runs the same checks through polygraphy's ``Comparator`` and
reports polygraphy's verdict beside ours (:mod:`ast_deploy.parity.crosscheck`).

Hand-off folders written before this module moved into ``ast_deploy.parity`` have a ``load_audio.py``
that imports ``ast_deploy.polygraphy_handoff``: that path still works (it re-exports
:func:`audio_feeds`), so the format of a folder is unchanged (:data:`HANDOFF_VERSION` 1).
"""

from __future__ import annotations

import contextlib
import math
import os
import shlex
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import InputError, UnavailableError
from ..extras import missing
from ..fileio import atomic_dir, read_json_object, write_json
from .compare import DEFAULT_THRESHOLDS
from .inputs import synthetic_inputs

HANDOFF_FORMAT = "ast-deploy-polygraphy-handoff"
HANDOFF_VERSION = 1
REFERENCE_RUNNER = "pytorch-fp32"
INPUTS_FILE = "inputs.json"
ONE_INPUT_FILE = "inputs_one.json"
REFERENCE_FILE = "reference.json"
META_FILE = "handoff.json"
LOADER_FILE = "load_audio.py"
README_FILE = "README.md"
AUDIO_ENV = "AST_DEPLOY_AUDIO"  # audio paths separated by os.pathsep, for load_audio.py
AUDIO_LIST_ENV = "AST_DEPLOY_AUDIO_LIST"  # a file with one audio path per line
POLYGRAPHY_FORMATS = ("onnx", "tensorrt")  # artifact formats polygraphy runs
LAYERWISE_TOLERANCE = 1e-2  # a bisecting aid for intermediate tensors, not a gate (see the README)


def polygraphy_version() -> str:
    from polygraphy import __version__

    return __version__


def polygraphy_missing() -> str | None:
    return missing("polygraphy", "tensorrt")


def require_polygraphy() -> None:
    reason = polygraphy_missing()
    if reason:
        raise UnavailableError(reason)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Polygraphy silent: its progress and verdict lines (on stdout) would mix with our tables; its
    verdicts are read from the returned objects. Its fatal errors still raise PolygraphyException."""
    from polygraphy.logger import G_LOGGER

    colors, G_LOGGER.colors = G_LOGGER.colors, False  # else a "'colored' module is not installed" line
    try:
        with G_LOGGER.verbosity(G_LOGGER.CRITICAL):
            yield
    finally:
        G_LOGGER.colors = colors


# --- data -------------------------------------------------------------------------------------


def feed_dicts(
    windows: np.ndarray, lengths: np.ndarray, input_section: dict, batch: int = 1
) -> Iterator[dict[str, np.ndarray]]:
    """Feed dicts of ``batch`` windows under the graph's input names and dtypes (the manifest's
    ``input`` section). A short last group is padded with its last window, as parity does."""
    from ..frontend import FrontEndConfig, KaldiFbank

    frontend = KaldiFbank(FrontEndConfig(**input_section["frontend"])) if input_section["kind"] == "fbank" else None
    names, dtypes = input_section["names"], input_section["dtypes"]
    for i in range(0, len(windows), batch):
        x, n = windows[i : i + batch], lengths[i : i + batch]
        pad = batch - len(x)
        if pad > 0:
            x, n = np.concatenate([x, np.repeat(x[-1:], pad, 0)]), np.concatenate([n, np.repeat(n[-1:], pad)])
        if frontend is not None:  # (fbank,)
            with torch.inference_mode():
                values = [frontend(torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(n)).numpy()]
        else:  # (waveform, num_samples)
            values = [x, n]
        yield {name: np.ascontiguousarray(v, dtype=dtypes[name]) for name, v in zip(names, values, strict=True)}


@dataclass
class HandoffData:
    """Parity inputs as polygraphy feeds, with the PyTorch float32 logits of each iteration."""

    feeds: list[dict[str, np.ndarray]]
    reference: list[np.ndarray]
    description: str
    batch: int

    def reference_results(self):
        from polygraphy.comparator import RunResults

        results = RunResults()
        results.add([{"logits": r} for r in self.reference], runner_name=REFERENCE_RUNNER)
        return results


def handoff_data(artifacts, inputs) -> HandoffData:
    """The feeds and reference logits for ``inputs`` (:class:`ast_deploy.parity.ParityInputs`)."""
    spec = artifacts.spec
    batch = spec.min_batch
    feeds = list(feed_dicts(inputs.windows, inputs.lengths, artifacts.manifest["input"], batch))
    reference = artifacts.open("pytorch", "cpu")
    try:
        with torch.inference_mode():
            logits = [reference(*(torch.from_numpy(v) for v in feed.values())) for feed in feeds]
    finally:
        reference.close()
    return HandoffData(feeds, [t.float().numpy() for t in logits], inputs.description, batch)


# --- checks: our thresholds as polygraphy comparisons ---------------------------------------------


@dataclass(frozen=True)
class Check:
    """One polygraphy comparison: ``simple`` (max |error| <= ``value``), ``top1`` or ``cosine`` (>= ``value``)."""

    kind: str
    value: float | None = None
    gate: bool = True  # part of the verdict; False: printed for information

    @property
    def flags(self) -> str:
        if self.kind == "simple":
            return f"--atol {_number(self.value)} --rtol 0 --check-error-stat max"
        if self.kind == "top1":
            return "--postprocess top-1 --compare indices"
        return f"--compare cosine_similarity --cosine-similarity-threshold {_number(self.value)}"

    @property
    def label(self) -> str:
        if self.kind == "simple":
            return f"max |Δlogit| <= {_number(self.value)}"
        return "top-1 index equal" if self.kind == "top1" else f"cosine >= {_number(self.value)}"

    def compare_func(self):
        from polygraphy.comparator import compare

        if self.kind == "simple":
            return compare.SimpleCompareFunc(atol=self.value, rtol=0.0, check_error_stat="max")
        if self.kind == "top1":
            return compare.IndicesCompareFunc()
        return compare.CosineSimilarityCompareFunc(cosine_similarity_threshold=self.value)


def _number(value: float) -> str:
    return f"{value:.6g}"


def _floor2(value: float) -> float:
    """``value`` rounded down to two significant digits (a tolerance may only get stricter)."""
    if value <= 0 or not math.isfinite(value):
        return 0.0
    scale = 10 ** (math.floor(math.log10(value)) - 1)
    return math.floor(value / scale) * scale


def cosine_atol(min_cosine: float, reference: list[np.ndarray]) -> float:
    """The elementwise bound on logit errors that implies ``cosine >= min_cosine`` on every clip."""
    rms = min(float(np.sqrt(np.mean(r.astype(np.float64) ** 2))) for r in reference)
    return _floor2(math.sqrt(1 - min_cosine**2) * rms)


def gate_checks(thresholds, reference: list[np.ndarray]) -> list[Check]:
    """Our ``thresholds`` (one precision's) as polygraphy checks (see the module docstring)."""
    if thresholds.max_abs_logit is not None:
        return [Check("simple", thresholds.max_abs_logit)]
    checks = []
    if thresholds.decisive_margin is None:
        checks.append(Check("simple", cosine_atol(thresholds.min_cosine, reference)))
        if thresholds.min_top1 is not None:
            checks.append(Check("top1"))
        checks.append(Check("cosine", thresholds.min_cosine, gate=False))
    else:  # INT8: the cosine exactly; the decisive-clip top-1 rule has no polygraphy equivalent
        checks.append(Check("cosine", thresholds.min_cosine))
        checks.append(Check("top1", gate=False))
    return checks


# --- commands -----------------------------------------------------------------------------------


@dataclass
class Command:
    id: str
    title: str
    command: str  # a bash command line; $ART is the artifact directory, $HANDOFF the hand-off directory
    needs_tensorrt: bool = False
    expect: str = "pass"  # "pass", "info" (output to read), or "fail-on-bad" (a bisecting aid)
    artifact: str | None = None


def _shapes(input_section: dict, batch: int) -> str:
    """``name:[B,...]`` for every graph input (polygraphy's shape syntax)."""
    if input_section["kind"] == "fbank":  # (fbank (B, frames, mel bins),)
        rest = [[input_section["num_frames"], input_section["num_mel_bins"]]]
    else:  # (waveform (B, samples), num_samples (B,))
        rest = [[input_section["num_samples"]], []]
    names = input_section["names"]
    return " ".join(f"{n}:[{','.join(map(str, [batch, *dims]))}]" for n, dims in zip(names, rest, strict=True))


def _profile(input_section: dict) -> str:
    b = input_section["batch"]
    return " ".join(f"--trt-{k}-shapes {_shapes(input_section, b[k])}" for k in ("min", "opt", "max"))


LOAD = f'--load-inputs "$HANDOFF/{INPUTS_FILE}" --load-outputs "$HANDOFF/{REFERENCE_FILE}"'
# debug reduce's check: each candidate subgraph (polygraphy_debug.onnx) against the golden tensors. Its
# TensorRT build uses polygraphy's default profile (dynamic dimensions = 1), which fits one-clip iterations.
REDUCE_CHECK = (
    "polygraphy run polygraphy_debug.onnx {runner} --load-inputs layerwise_inputs.json "
    "--load-outputs layerwise_golden.json {tol}"
)
ENGINE = "model.polygraphy.plan"  # the engine polygraphy builds from the FP16 ONNX, in the working directory


def artifact_commands(manifest: dict, checks: dict[str, list[Check]]) -> list[Command]:
    """Gate commands for every artifact polygraphy can run, plus TensorRT from the FP16 ONNX."""
    out = []
    by_name = {a["name"]: a for a in manifest["artifacts"]}
    for artifact in manifest["artifacts"]:
        if artifact["format"] not in POLYGRAPHY_FORMATS:
            continue
        file, name = artifact["files"][0]["file"], artifact["name"]
        for check in checks[name]:
            if artifact["format"] == "onnx":
                runner, trt = "--onnxrt", False
            else:
                runner, trt = "--trt --model-type engine", True
            out.append(
                Command(
                    f"{name}:{check.kind}",
                    f"{name} ({file}) against PyTorch float32: {check.label}",
                    f'polygraphy run "$ART/{file}" {runner} {LOAD} {check.flags}',
                    needs_tensorrt=trt,
                    expect="pass" if check.gate else "info",
                    artifact=name,
                )
            )
    if "onnx-fp16" in by_name:  # a TensorRT engine from the FP16 ONNX, built by polygraphy on the GPU box
        file = by_name["onnx-fp16"]["files"][0]["file"]
        for i, check in enumerate(checks["onnx-fp16"]):
            build = f'"$ART/{file}" --trt --strongly-typed {_profile(manifest["input"])} --save-engine {ENGINE}'
            model = build if i == 0 else f"{ENGINE} --model-type engine --trt"  # build once, reuse
            out.append(
                Command(
                    f"trt-from-fp16:{check.kind}",
                    f"TensorRT (strongly typed) from {file} against PyTorch float32: {check.label}",
                    f"polygraphy run {model} {LOAD} {check.flags}",
                    needs_tensorrt=True,
                    expect="pass" if check.gate else "info",
                    artifact="tensorrt",
                )
            )
    return out


def layerwise_commands(manifest: dict) -> list[Command]:
    """Find the layer that loses accuracy: every tensor of the FP16 graph (in ONNX Runtime, then in
    TensorRT) against the float32 ONNX's, on one clip. The FP16 conversion keeps tensor names."""
    by_name = {a["name"]: a for a in manifest["artifacts"]}
    if "onnx" not in by_name or "onnx-fp16" not in by_name:
        return []
    fp32, fp16 = by_name["onnx"]["files"][0]["file"], by_name["onnx-fp16"]["files"][0]["file"]
    one = f'--load-inputs "$HANDOFF/{ONE_INPUT_FILE}"'
    tol = f"--atol {_number(LAYERWISE_TOLERANCE)} --rtol {_number(LAYERWISE_TOLERANCE)}"
    return [
        Command(
            "layerwise:golden",
            f"every tensor of {fp32} in ONNX Runtime (one clip): the golden values",
            f'polygraphy run "$ART/{fp32}" --onnxrt --onnx-outputs mark all {one} --save-outputs layers_fp32.json',
        ),
        Command(
            "layerwise:onnx-fp16",
            f"every tensor of {fp16} in ONNX Runtime against them (the FP16 conversion alone)",
            f'polygraphy run "$ART/{fp16}" --onnxrt --onnx-outputs mark all {one} --load-outputs layers_fp32.json {tol}',
            expect="fail-on-bad",
        ),
        Command(
            "layerwise:tensorrt",
            f"every tensor of the TensorRT engine from {fp16} against them (marking outputs disables some fusions)",
            f'polygraphy run "$ART/{fp16}" --trt --strongly-typed {_profile(manifest["input"])} --trt-outputs mark all '
            f"{one} --load-outputs layers_fp32.json {tol}",
            needs_tensorrt=True,
            expect="fail-on-bad",
        ),
        Command(
            "reduce:sanitize",
            f"debug reduce, step 1: {fp16} with constants folded",
            f'polygraphy surgeon sanitize "$ART/{fp16}" -o folded.fp16.onnx --fold-constants',
        ),
        Command(
            "reduce:golden",
            "step 2: every tensor of the folded graph in ONNX Runtime, merged with the inputs so that any subgraph has its inputs",
            f"polygraphy run folded.fp16.onnx --onnxrt --onnx-outputs mark all {one} --save-outputs layerwise_golden.json"
            f' && polygraphy data merge "$HANDOFF/{ONE_INPUT_FILE}" layerwise_golden.json -o layerwise_inputs.json',
        ),
        Command(
            "reduce:bisect",
            "step 3: the smallest subgraph on which TensorRT disagrees with ONNX Runtime -> reduced.onnx",
            "polygraphy debug reduce folded.fp16.onnx -o reduced.onnx --mode=bisect --load-inputs layerwise_inputs.json "
            f"--check {REDUCE_CHECK.format(runner='--trt --strongly-typed', tol=tol)}",
            needs_tensorrt=True,
            expect="fail-on-bad",
        ),
    ]


def engine_commands(manifest: dict) -> list[Command]:
    engine = next((a for a in manifest["artifacts"] if a["format"] == "tensorrt"), None)
    file = engine["files"][0]["file"] if engine else "model.plan"
    return [
        Command(
            "inspect:engine",
            f"the engine's layers, precisions and tactics ({file}{'' if engine else ', after export --to tensorrt'})",
            f'polygraphy inspect model "$ART/{file}" --model-type engine --show layers',
            needs_tensorrt=True,
            expect="info",
        ),
        Command(
            "inspect:polygraphy-engine",
            f"the same for the engine polygraphy built ({ENGINE})",
            f"polygraphy inspect model {ENGINE} --model-type engine --show layers",
            needs_tensorrt=True,
            expect="info",
        ),
    ]


def audio_commands(manifest: dict) -> list[Command]:
    """Real audio: float32 ONNX outputs as the golden values, then any model against them."""
    by_name = {a["name"]: a for a in manifest["artifacts"]}
    if "onnx" not in by_name:
        return []
    fp32 = by_name["onnx"]["files"][0]["file"]
    out = [
        Command(
            "audio:golden",
            f"real audio through {LOADER_FILE} into {fp32} (ONNX Runtime): inputs and golden outputs",
            f'{AUDIO_ENV}=clip1.wav{os.pathsep}clip2.flac polygraphy run "$ART/{fp32}" --onnxrt '
            f'--data-loader-script "$HANDOFF/{LOADER_FILE}" --save-inputs audio_inputs.json --save-outputs audio_fp32.json',
        )
    ]
    if "onnx-fp16" in by_name:
        top1 = Check("top1")
        out.append(
            Command(
                "audio:tensorrt",
                "the TensorRT engine's decisions on them (scale-free, so no tolerance to carry over)",
                f"polygraphy run {ENGINE} --model-type engine --trt --load-inputs audio_inputs.json "
                f"--load-outputs audio_fp32.json {top1.flags}",
                needs_tensorrt=True,
            )
        )
    return out


# --- writing the hand-off -------------------------------------------------------------------------


def write_handoff(artifacts, directory: str | Path, data: HandoffData, thresholds: dict | None = None) -> Path:
    """Write the hand-off directory (replacing an earlier hand-off there); returns its path."""
    from polygraphy.json import to_json

    require_polygraphy()
    directory = Path(directory)
    _check_directory(directory)
    thresholds = {**DEFAULT_THRESHOLDS, **(thresholds or {})}
    manifest = artifacts.manifest
    checks = {
        a["name"]: gate_checks(thresholds[a["precision"]], data.reference)
        for a in manifest["artifacts"]
        if a["format"] in POLYGRAPHY_FORMATS
    }
    if "onnx-fp16" in checks:
        checks.setdefault("tensorrt", checks["onnx-fp16"])
    commands = [
        *artifact_commands(manifest, checks),
        *engine_commands(manifest),
        *layerwise_commands(manifest),
        *audio_commands(manifest),
    ]
    meta = {
        "format": HANDOFF_FORMAT,
        "format_version": HANDOFF_VERSION,
        "polygraphy": polygraphy_version(),
        "artifact_dir": str(Path(artifacts.path).resolve()),
        "inputs": data.description,
        "iterations": len(data.feeds),
        "batch": data.batch,
        "reference_runner": REFERENCE_RUNNER,
        "files": {"inputs": INPUTS_FILE, "one_input": ONE_INPUT_FILE, "reference": REFERENCE_FILE},
        "input": manifest["input"],
        "checks": {name: [asdict(c) for c in cs] for name, cs in checks.items()},
        "commands": [asdict(c) for c in commands],
    }
    with atomic_dir(directory, overwrite=True) as tmp, quiet():
        for name, text in (
            (INPUTS_FILE, to_json(data.feeds)),
            (ONE_INPUT_FILE, to_json(data.feeds[:1])),
            (REFERENCE_FILE, to_json(data.reference_results())),
        ):
            (tmp / name).write_text(text)
        write_json(tmp / META_FILE, meta)
        (tmp / LOADER_FILE).write_text(LOADER_SCRIPT)
        (tmp / README_FILE).write_text(readme(meta, commands, thresholds))
    return directory


LOADER_SCRIPT = f'''"""polygraphy --data-loader-script: real audio through ast-deploy's front end.

    {AUDIO_ENV}=a.wav{os.pathsep}b.flac polygraphy run model.onnx --onnxrt --data-loader-script load_audio.py
    {AUDIO_LIST_ENV}=clips.txt polygraphy run ...     (one path per line)

Every window of every file becomes one iteration, cut, resampled and (for fbank graphs) turned into
features exactly as ``ast-deploy predict`` does; the input spec is read from {META_FILE} beside this file.
"""

from pathlib import Path

from ast_deploy.parity.handoff import audio_feeds

SPEC = Path(__file__).resolve().with_name("{META_FILE}")


def load_data():
    yield from audio_feeds(SPEC)
'''


def audio_paths(environ=None) -> list[Path]:
    """The audio files named by :data:`AUDIO_ENV` and :data:`AUDIO_LIST_ENV`."""
    environ = os.environ if environ is None else environ
    paths = [Path(p) for p in environ.get(AUDIO_ENV, "").split(os.pathsep) if p.strip()]
    listing = environ.get(AUDIO_LIST_ENV)
    if listing:
        try:
            lines = Path(listing).read_text().splitlines()
        except OSError as e:
            raise InputError(f"{AUDIO_LIST_ENV}={listing}: cannot read it ({e.strerror})") from None
        paths += [Path(line.strip()) for line in lines if line.strip() and not line.startswith("#")]
    if not paths:
        raise InputError(
            f"no audio: set {AUDIO_ENV} (paths separated by '{os.pathsep}') or {AUDIO_LIST_ENV} (a list file)"
        )
    return paths


def audio_feeds(spec_path: str | Path, paths: list[Path] | None = None) -> Iterator[dict[str, np.ndarray]]:
    """Feed dicts for every window of every audio file (the data loader script's ``load_data``)."""
    from ..audio import load_audio
    from ..frontend import FrontEndConfig
    from ..windows import cut_windows

    meta = read_json_object(spec_path, "polygraphy hand-off")
    section, batch = meta["input"], meta["batch"]
    window = section["num_samples"] or FrontEndConfig(**section["frontend"]).window_samples
    for path in paths if paths is not None else audio_paths():
        windows, lengths, _ = cut_windows(load_audio(path, section["sample_rate"]), window, window)
        yield from feed_dicts(windows, lengths, section, batch)


def readme(meta: dict, commands: list[Command], thresholds: dict) -> str:
    """The hand-off's README.md: every command, where it runs, and what its tolerances mean."""

    def block(selected: list[Command]) -> str:
        lines = []
        for c in selected:
            where = "GPU + TensorRT" if c.needs_tensorrt else "anywhere (ONNX Runtime)"
            note = {"pass": "must pass", "info": "for information", "fail-on-bad": "lists what disagrees"}[c.expect]
            lines += [f"# {c.title} [{where}; {note}]", c.command, ""]
        return "```bash\n" + "\n".join(lines).rstrip() + "\n```\n"

    groups = {
        "gate": [c for c in commands if ":" in c.id and c.artifact and not c.id.startswith("trt-from")],
        "trt": [c for c in commands if c.id.startswith("trt-from")],
        "inspect": [c for c in commands if c.id.startswith("inspect:")],
        "layerwise": [c for c in commands if c.id.startswith(("layerwise:", "reduce:"))],
        "audio": [c for c in commands if c.id.startswith("audio:")],
    }
    missing = {
        "gate": "(no ONNX or TensorRT artifact here)",
        "trt": "(this directory has no FP16 ONNX)",
        "inspect": "",
        "layerwise": "(needs both the float32 and the FP16 ONNX)",
        "audio": "(needs the float32 ONNX)",
    }
    sections = {k: block(v) if v else missing[k] + "\n" for k, v in groups.items()}
    checks = meta["checks"]
    rows = []
    for name, cs in checks.items():
        for c in cs:
            check = Check(c["kind"], c["value"], c["gate"])
            rows.append(f"| {name} | `{check.flags}` | {'gate' if check.gate else 'information'} |")
    fp16 = thresholds["fp16"]
    spec = meta["input"]
    names = ", ".join(f"`{n}` {spec['dtypes'][n]}" for n in spec["names"])
    text = f"""# polygraphy hand-off

Parity data of `{meta["artifact_dir"]}` in polygraphy's formats: {meta["iterations"]} iterations of
{meta["batch"]} clip(s) ({meta["inputs"]}), graph inputs {names}, output `logits`.

| file | what |
| --- | --- |
| `{INPUTS_FILE}` | polygraphy input data: a JSON list of feed dicts, one per iteration (`--load-inputs`) |
| `{ONE_INPUT_FILE}` | the first iteration only, for layer-wise runs |
| `{REFERENCE_FILE}` | PyTorch float32 logits as a polygraphy `RunResults`, runner `{REFERENCE_RUNNER}` (`--load-outputs`) |
| `{LOADER_FILE}` | `--data-loader-script` for real audio (needs `ast-deploy` installed) |
| `{META_FILE}` | input spec, tolerances and these commands, for scripts |

Set the two directories first (copy both to the GPU box as they are):

```bash
ART={shlex.quote(meta["artifact_dir"])}
HANDOFF="$(pwd)"   # this directory
```

Written and run with polygraphy {polygraphy_version()} (its ONNX Runtime runner); the TensorRT commands were
checked with its argument parser only. Older polygraphy: 0.49 calls `data merge` `data to-input` and has
no `--compare cosine_similarity`. `surgeon sanitize` and `debug reduce` need `onnx-graphsurgeon`.

## The parity gate in polygraphy

Each command exits 0 when polygraphy's verdict is PASSED. Tolerances, from `ast_deploy.parity`:

| artifact | polygraphy flags | role |
| --- | --- | --- |
{chr(10).join(rows)}

* **float32** (`max |logit error| <= {_number(thresholds["fp32"].max_abs_logit)}`): `--atol {_number(thresholds["fp32"].max_abs_logit)} --rtol 0 --check-error-stat max`
  is the same test; `--rtol 0` turns off polygraphy's relative escape (an element passes when it is
  within `atol` *or* `rtol`).
* **FP16** (cosine >= {fp16.min_cosine:g} per clip and top-1 on {fp16.min_top1:.0%} of clips): our gate is
  scale-free, polygraphy's `simple` compare is elementwise. For one clip with reference logits `r` and error
  `e`, `cos(r + e, r) >= sqrt(1 - |e|^2 / |r|^2)`, so `max |e_i| <= sqrt(1 - c^2) * rms(r)` guarantees
  cosine >= c. `--atol` is that bound for the clip with the smallest `rms(r)`, rounded down: sufficient
  for our cosine test, hence stricter. Top-1 is `--postprocess top-1 --compare indices` on every clip:
  the same as our {fp16.min_top1:.0%} below 100 clips, stricter above. `--compare cosine_similarity` is
  our cosine test exactly (polygraphy >= 0.53; 0.49's CLI has only `simple` and `indices`).
* **INT8** (cosine >= {thresholds["int8"].min_cosine:g}, top-1 on clips decided by >= {thresholds["int8"].decisive_margin:g} logits):
  the cosine compare exactly; the decisive-clip rule has no polygraphy form (top-1 is shown for information).

{sections["gate"]}
## TensorRT

On a machine with an NVIDIA GPU, TensorRT and polygraphy (`pip install 'ast-deploy[tensorrt]'`), build
a strongly typed engine from the FP16 ONNX (precision comes from the ONNX types, as in
`ast-deploy export --to tensorrt`) with the export's batch profile, and check it against the same
reference with the FP16 tolerances; the engine is saved and reused.

{sections["trt"]}
{sections["inspect"]}
## Which layer loses accuracy

Layer-wise runs compare every intermediate tensor on one clip. The tolerance ({_number(LAYERWISE_TOLERANCE)}
absolute *or* relative, per element) is a bisecting aid, not a gate: healthy FP16 stays within it on
most tensors; read the first tensors in polygraphy's `Mismatched outputs` list. `debug reduce` then cuts
the FP16 graph down to the smallest subgraph on which TensorRT disagrees with ONNX Runtime.

{sections["layerwise"]}
## Real audio

`{LOADER_FILE}` yields every window of the files named by `{AUDIO_ENV}` (separated by `{os.pathsep}`) or
listed in the file `{AUDIO_LIST_ENV}` names, through this package's loader and front end (it imports
`ast_deploy`). The float32 ONNX gives the golden outputs (it matches PyTorch float32 to
{_number(thresholds["fp32"].max_abs_logit)}); top-1 agreement needs no tolerance carried over.

{sections["audio"]}"""
    return text


# --- what the CLI verbs call ---------------------------------------------------------------------


def write_handoff_for(artifacts, directory: Path, inputs, thresholds: dict | None = None) -> HandoffData:
    """:func:`handoff_data` + :func:`write_handoff`: what the CLI verbs call."""
    require_polygraphy()
    data = handoff_data(artifacts, inputs)
    write_handoff(artifacts, directory, data, thresholds)
    return data


def check_options(directory: Path | None, crosscheck_with: str | None) -> None:
    """Refuse bad ``--polygraphy``/``--crosscheck`` values before any work is done."""
    if crosscheck_with is not None and crosscheck_with != "polygraphy":
        raise InputError(f"--crosscheck {crosscheck_with!r}: the only cross-checker is polygraphy")
    if directory is not None or crosscheck_with is not None:
        require_polygraphy()
    if directory is not None:
        _check_directory(directory)


def _check_directory(directory: Path) -> None:
    """A hand-off replaces an earlier one, never a directory of something else."""
    if directory.exists() and not directory.is_dir():
        raise InputError(f"--polygraphy {directory}: exists and is not a directory")
    if directory.is_dir() and not (directory / META_FILE).is_file() and any(directory.iterdir()):
        raise InputError(f"--polygraphy {directory}: exists and is not a polygraphy hand-off (no {META_FILE})")


def handoff_after_export(out: Path, directory: Path) -> str:
    """``export --polygraphy DIR``: the hand-off for the published artifacts, on parity's default inputs."""
    from ..artifacts import ArtifactDir

    artifacts = ArtifactDir(out)
    write_handoff_for(artifacts, directory, synthetic_inputs(artifacts))
    return f"polygraphy hand-off written to {directory} (commands in {directory / README_FILE})"
