"""Shared paths, reference fixtures and helpers for the test suite.

The reference fixtures live in ``tests/fixtures``; its README.md says what each file is, where it
comes from and its sha256 (checked by ``test_fixtures.py``).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from filelock import FileLock

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"

LOGITS_ATOL = 1e-5  # float32 re-implementation vs reference logits (fixtures README)


def fixture_path(name: str) -> Path:
    path = FIXTURES / name
    assert path.exists(), f"reference fixture {path} is missing (see tests/fixtures/README.md)"
    return path


@functools.cache
def _read_json(name: str) -> dict:
    return json.loads(fixture_path(name).read_text())


@functools.cache
def load_fixture(name: str):
    """A ``.pt``/``.pth`` fixture (tensors only). Cached: treat the result as read-only."""
    return torch.load(fixture_path(name), map_location="cpu", weights_only=True)


# Cases of the reference fixtures, read at collection time so that tests can be parametrised.
AUTHORS_CASES: dict[str, dict] = _read_json("cases.json")
IMAGENET_CASES: dict[str, dict] = _read_json("imagenet_cases.json")
KALDI_CASES: dict[str, dict] = _read_json("kaldi_fbank_cases.json")
SPEECH_WAV = fixture_path("speech_16k.wav")

# The tiny authors' checkpoint that the predict and bad-input tests run: 100 frames (1.015 s
# windows), 10 labels, strides 10/10. Its positional embedding alone is ambiguous, so it needs flags.
TINY_CASE = "tiny_t100_f10t10"
TINY_PTH = fixture_path(f"{TINY_CASE}.pth")


def authors_flags(case: str) -> list[str]:
    """CLI flags that pin an authors' checkpoint's grid (what the file does not store)."""
    c = AUTHORS_CASES[case]
    return ["--input-tdim", str(c["tdim"]), "--fstride", str(c["fstride"]), "--tstride", str(c["tstride"])]


def authors_options(case: str, **overrides):
    from ast_deploy import LoadOptions

    c = AUTHORS_CASES[case]
    return LoadOptions(input_tdim=c["tdim"], fstride=c["fstride"], tstride=c["tstride"], **overrides)


def to_authors_layout(state_dict: dict[str, torch.Tensor], imagenet_heads: bool = True) -> dict[str, torch.Tensor]:
    """``ASTModel`` keys -> the authors' ``.pth`` layout, written out independently of the package:
    ``module.v.<timm key>``, ``module.mlp_head.0/1`` and the unused ImageNet heads."""
    head = {"head.norm.": "mlp_head.0.", "head.fc.": "mlp_head.1."}
    out = {}
    for key, value in state_dict.items():
        prefix = next((p for p in head if key.startswith(p)), None)
        out["module." + (head[prefix] + key[len(prefix) :] if prefix else "v." + key)] = value
    if imagenet_heads:
        dim = state_dict["pos_embed"].shape[-1]
        for name in ("head", "head_dist"):
            out[f"module.v.{name}.weight"] = torch.zeros(1000, dim)
            out[f"module.v.{name}.bias"] = torch.zeros(1000)
    return out


def write_wav(path: Path, samples: np.ndarray, sample_rate: int = 16000, subtype: str = "PCM_16") -> Path:
    sf.write(str(path), samples, sample_rate, subtype=subtype)
    return path


# --- running the CLI ---------------------------------------------------------------------------


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    def json(self):
        return json.loads(self.stdout)


def run_cli(*args) -> CliResult:
    """``ast-deploy ARGS`` in this process through ``ast_deploy.cli.main``."""
    from ast_deploy.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return CliResult(code, out.getvalue(), err.getvalue())


def cli_script() -> str:
    """The installed ``ast-deploy`` console script (the venv's, else the one on PATH)."""
    beside = Path(sys.executable).with_name("ast-deploy")
    script = str(beside) if beside.exists() else shutil.which("ast-deploy")
    assert script, "the ast-deploy console script is not installed (pip install -e .)"
    return script


def run_cli_subprocess(*args, timeout: float = 120) -> CliResult:
    """``ast-deploy ARGS`` as a separate process, through the installed console script."""
    env = {**os.environ, "COLUMNS": "200"}
    proc = subprocess.run(
        [cli_script(), *map(str, args)], capture_output=True, text=True, timeout=timeout, env=env, check=False
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def assert_input_error(result: CliResult, *fragments: str) -> str:
    """Exit status 2, one ``error: ...`` line on stderr naming the problem, no traceback."""
    assert result.code == 2, f"exit status {result.code}, stderr:\n{result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), f"not one error line:\n{result.stderr}"
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    return lines[0]


# --- common pytest fixtures ---------------------------------------------------------------------


def pytest_configure(config):
    """Under pytest-xdist (``make test`` runs one worker per core) the workers share the cores: each
    worker, and every process it starts, gets its share of them instead of one OpenMP thread per core
    each, which would spin-wait for a core held by the other worker."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        # A worker starts with COLUMNS=80 while its output is no terminal; COLUMNS wins over the CLI's
        # non-terminal width (cli/app.py), and tables would be cut where a serial run keeps them whole.
        os.environ.pop("COLUMNS", None)
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        threads = str(max(1, (os.cpu_count() or 1) // workers))
        os.environ.setdefault("OMP_NUM_THREADS", threads)
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


@pytest.fixture(scope="module")
def one_torch_thread():
    """Run a module's tiny models on one intra-op thread (use with ``pytest.mark.usefixtures``).

    They gain nothing from more, and on a small machine shared with other work OpenMP threads
    spin-waiting for a core made these tests about three times slower.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def speech() -> np.ndarray:
    """The fixture sentence as float32 mono at 16 kHz (4.15 s)."""
    samples, rate = sf.read(str(SPEECH_WAV), dtype="float32")
    assert rate == 16000 and samples.ndim == 1
    return samples


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """The tiny authors' checkpoint converted to this project's format (a Hugging Face AST directory)."""
    from ast_deploy import load_checkpoint, save_checkpoint

    ckpt = load_checkpoint(TINY_PTH, authors_options(TINY_CASE))
    out = tmp_path_factory.mktemp("models") / "tiny"
    return save_checkpoint(out, ckpt.config, ckpt.state_dict, ckpt.labels, ckpt.frontend)


@pytest.fixture(scope="session", autouse=True)
def _compiled_model_cache(tmp_path_factory):
    """Compiled-model caches (OpenVINO's CACHE_DIR, runtime/openvino.py) go to a temporary directory,
    not the user's ~/.cache, for every test that opens an OpenVINO backend."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AST_DEPLOY_CACHE", str(tmp_path_factory.mktemp("ast-deploy-cache")))
        yield


# --- slow tests -----------------------------------------------------------------------------------

# Fixtures that compile (the C++ builds, AOTInductor), quantise (NNCF), train, export every format or
# start processes that take seconds to come and go (bench workers, tritonserver): a test that needs
# one, directly or through another fixture, is marked slow, as are the tests marked by hand (a call of
# more than about 5 s on a 2-core machine). `make test-fast` leaves them out (-m "not slow");
# `make test` runs everything.
SLOW_FIXTURES = frozenset(
    {"cpp_build", "ov_host", "tiny_artifacts", "trained", "quickstart", "int8_artifacts", "cli_run", "server"}
)


# The modules that take longest (seconds of a serial run on a 2-core machine, most to least) run first:
# pytest-xdist hands out whole modules in collection order (make test: --dist loadfile
# --no-loadscope-reorder), and a long one started last would leave the other worker idle at the end.
LONGEST_FIRST = (
    "test_streaming.py",  # 85: an hour of audio through the CLI, six processes
    "test_cpp.py",  # 60: both shared exports of every format, the C++ build
    "test_batch.py",  # 52: Ray
    "test_quickstart.py",  # 48: train, export every format, parity, bench
    "test_cpu_isa.py",  # 41: one capped process per CPU class
    "test_embeddings.py",  # 30
    "test_bench.py",  # 25
    "test_cpp_streaming.py",  # 25
    "test_serving.py",  # 20: tritonserver
    "test_polygraphy.py",  # 20
    "test_cpp_openvino.py",  # 15
    "test_openvino.py",  # 13
    "test_training_loop.py",  # 9
)


@pytest.hookimpl(tryfirst=True)  # before -m deselects
def pytest_collection_modifyitems(config, items):
    for item in items:
        if SLOW_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
    stale = [name for name in LONGEST_FIRST if not (Path(__file__).parent / name).is_file()]
    if stale:
        raise pytest.UsageError(f"tests/conftest.py LONGEST_FIRST names modules that do not exist: {stale}")
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order


# --- the C++ library and host: one build per session, for every module that runs them -------------

CPP_DIR = REPO_ROOT / "cpp"
CPP_BUILD_DIR = REPO_ROOT / "build" / "cpp"


def run_command(cmd: list, timeout: float, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)


@contextlib.contextmanager
def one_worker_at_a_time(name: str):
    """Hold a lock named ``name`` across pytest-xdist workers (a no-op without them): the C++ builds
    write to one build directory, and only one worker may run CMake there at a time. The next worker
    then finds the build up to date."""
    (REPO_ROOT / "build").mkdir(exist_ok=True)
    with FileLock(REPO_ROOT / "build" / f".{name}.lock", timeout=1800):
        yield


def shared_tmp(tmp_path_factory) -> Path:
    """A temporary directory that every pytest-xdist worker of this run sees (the run's own without
    workers): the root above each worker's ``basetemp``."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def cpp_build() -> Path:
    """Configure (once) and build ``cpp/`` into ``build/cpp``; an up-to-date build costs seconds."""
    missing = [tool for tool in ("cmake", "g++") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"C++ toolchain not installed ({', '.join(missing)}): run 'make system-deps'")
    with one_worker_at_a_time("cpp"):
        return _build_cpp()


def _build_cpp() -> Path:
    prefix = torch.utils.cmake_prefix_path
    cache = CPP_BUILD_DIR / "CMakeCache.txt"
    # Configure when there is no build yet, or when it was configured against another torch.
    if not cache.is_file() or prefix not in cache.read_text(errors="replace"):
        configure = run_command(
            [
                "cmake",
                "-S",
                CPP_DIR,
                "-B",
                CPP_BUILD_DIR,
                "-DCMAKE_BUILD_TYPE=Release",
                f"-DCMAKE_PREFIX_PATH={prefix}",
            ],
            timeout=300,
        )
        assert configure.returncode == 0, f"cmake configure failed:\n{configure.stdout}\n{configure.stderr}"
    jobs = str(min(2, os.cpu_count() or 1))  # the CI machine's cores are shared
    build = run_command(["cmake", "--build", CPP_BUILD_DIR, "-j", jobs], timeout=1200)
    assert build.returncode == 0, f"C++ build failed:\n{build.stdout[-4000:]}\n{build.stderr[-4000:]}"
    return CPP_BUILD_DIR


@pytest.fixture(scope="session")
def host(cpp_build) -> Path:
    return cpp_build / "ast_classify"


OV_BUILD_DIR = REPO_ROOT / "build" / "cpp-openvino"


@pytest.fixture(scope="session")
def ov_host() -> Path:
    """``ast_classify`` built with the OpenVINO backend only (``build/cpp-openvino``, from the pip wheel's
    CMake config, no libtorch: the library builds without it); an up-to-date build costs seconds. The
    ``host`` build has no OpenVINO backend: OpenVINO artifacts run here."""
    openvino = pytest.importorskip("openvino", reason="OpenVINO not installed (pip install -e '.[openvino]')")
    missing = [tool for tool in ("cmake", "g++") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"C++ toolchain not installed ({', '.join(missing)}): run 'make system-deps'")
    ov_dir = Path(openvino.__file__).resolve().parent / "cmake"  # beside the wheel's include/ and libs/
    if not (ov_dir / "OpenVINOConfig.cmake").is_file():
        pytest.skip(f"this openvino wheel has no CMake config ({ov_dir})")
    with one_worker_at_a_time("cpp-openvino"):
        return _build_cpp_openvino(ov_dir)


def _build_cpp_openvino(ov_dir: Path) -> Path:
    cache = OV_BUILD_DIR / "CMakeCache.txt"
    if not cache.is_file() or str(ov_dir) not in cache.read_text(errors="replace"):
        configure = run_command(
            [
                *("cmake", "-S", CPP_DIR, "-B", OV_BUILD_DIR, "-DCMAKE_BUILD_TYPE=Release"),
                *("-DAST_WITH_TORCH=OFF", "-DAST_WITH_OPENVINO=ON", f"-DOpenVINO_DIR={ov_dir}"),
            ],
            timeout=300,
        )
        assert configure.returncode == 0, f"cmake configure failed:\n{configure.stdout}\n{configure.stderr}"
        assert "OpenVINO backend ON" in configure.stdout, configure.stdout
    jobs = str(min(2, os.cpu_count() or 1))
    build = run_command(["cmake", "--build", OV_BUILD_DIR, "-j", jobs], timeout=900)
    assert build.returncode == 0, f"C++ build failed:\n{build.stdout[-4000:]}\n{build.stderr[-4000:]}"
    return OV_BUILD_DIR / "ast_classify"


# name -> (seconds, channels, subtype, container format). Lengths give one padded window, an exact
# window, several windows with the last one aligned to the end, and anything in between.
WAV_CASES = {
    "pcm16_short": (0.6, 1, "PCM_16", "WAV"),
    "pcm24_long": (2.5, 1, "PCM_24", "WAV"),
    "pcm32": (1.015, 1, "PCM_32", "WAV"),
    "float": (3.3, 1, "FLOAT", "WAV"),
    "double": (1.2, 1, "DOUBLE", "WAV"),
    "u8": (0.8, 1, "PCM_U8", "WAV"),
    "stereo_pcm16": (2.0, 2, "PCM_16", "WAV"),
    "extensible_pcm24": (1.7, 2, "PCM_24", "WAVEX"),
}


@pytest.fixture(scope="session")
def wavs(tmp_path_factory) -> dict[str, Path]:
    """The speech fixture as is, plus excerpts of it written in every supported sample format."""
    speech, rate = sf.read(str(SPEECH_WAV), dtype="float32")
    assert rate == 16000
    out = tmp_path_factory.mktemp("wavs")
    files = {"speech_16k": SPEECH_WAV}
    for name, (seconds, channels, subtype, fmt) in WAV_CASES.items():
        n = round(seconds * 16000)
        x = speech[4000 : 4000 + n] * 0.9
        if channels == 2:  # different channels, so that the mix-down matters
            x = np.stack([x, np.roll(x, 800) * 0.5], axis=1)
        path = out / f"{name}.wav"
        sf.write(str(path), x, 16000, subtype=subtype, format=fmt)
        files[name] = path
    return files


# --- exported artifacts of the tiny model: one export per input kind, formats and calibration --------

ARTIFACT_BATCH = "1:2:8"  # the one batch range of the shared exports
OPENVINO_FORMATS = "openvino,openvino-int8"


@pytest.fixture(scope="session")
def tiny_artifacts(tmp_path_factory):
    """``tiny_artifacts(kind="waveform", formats="all-available", calibration=())``: the tiny authors'
    model exported (parity verified, batch range ``ARTIFACT_BATCH``) once per run for each
    (input kind, formats, calibration), so that AOTInductor compiles and NNCF quantisations are shared
    by every module that runs them, and by every pytest-xdist worker (one exports while the others
    wait for that key). The directory is shared: a test that changes it copies it first."""
    from ast_deploy.export import ExportOptions, export

    root = shared_tmp(tmp_path_factory) / "tiny-artifacts"
    root.mkdir(exist_ok=True)

    def artifacts(kind: str = "waveform", formats: str = "all-available", calibration: tuple = ()) -> Path:
        key = json.dumps([kind, formats, [str(path) for path in calibration]])
        out = root / hashlib.sha256(key.encode()).hexdigest()[:16] / "artifacts"
        with FileLock(str(out.parent) + ".lock", timeout=1800):
            if not (out / "manifest.json").is_file():  # export writes the manifest last
                out.parent.mkdir(exist_ok=True)
                shutil.rmtree(out, ignore_errors=True)  # what a killed worker left
                export(
                    TINY_PTH,
                    out,
                    to=formats,
                    input_kind=kind,
                    batch=ARTIFACT_BATCH,
                    load_options=authors_options(TINY_CASE),
                    options=ExportOptions(calibration=tuple(calibration)),
                    log=lambda message: None,
                )
        return out

    return artifacts
