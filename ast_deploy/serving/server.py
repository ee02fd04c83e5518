"""The ``tritonserver`` that the ``nvidia-pytriton`` wheel bundles, run on a model repository.

The wheel (0.7.0) carries Triton 2.51 with the python backend only, its shared libraries under
``nvidia_pytriton.libs`` and a python-backend stub per Python version. PyTriton's own Python code
is not used (it pins NumPy < 2; ``make setup`` installs the wheel with ``--no-deps``): this module
lays out a backend directory with the stub for the running interpreter and starts the server on
a plain repository, which also avoids PyTriton's proxy hop.

Two facts of this set-up (see docs/serving.md): the stub links whichever ``libpython3.X.so`` the
loader finds first, so the interpreter's ``LIBDIR`` goes first on ``LD_LIBRARY_PATH`` (with a pyenv
Python the system one is found otherwise and models fail with an ``RLock`` error); and the stub's
interpreter is the first ``python3`` on ``PATH``, so the running environment's ``bin`` goes first.

A server lives in its own process group and a private work directory, with its python-backend
shared-memory regions named after it; :meth:`TritonServer.stop` ends the group (SIGTERM, then
SIGKILL after a grace period) and removes the regions and the directory.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError, UnavailableError

INSTALL_HINT = "pip install --no-deps nvidia-pytriton==0.7.0 (make setup does)"
SHM_DIR = Path("/dev/shm")


@dataclass(frozen=True)
class TritonInstall:
    binary: Path
    libs: Path
    python_backend: Path  # libtriton_python.so and triton_python_backend_utils.py
    stub: Path  # triton_python_backend_stub for this interpreter's Python version


def find_tritonserver() -> TritonInstall:
    """The bundled server, found without importing PyTriton (whose import needs NumPy < 2)."""
    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        raise UnavailableError(f"tritonserver is not installed: {INSTALL_HINT}")
    root = Path(next(iter(spec.submodule_search_locations)))
    dist = root / "tritonserver"
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    install = TritonInstall(
        binary=dist / "bin" / "tritonserver",
        libs=root.parent / "nvidia_pytriton.libs",
        python_backend=dist / "backends" / "python",
        stub=dist / "python_backend_stubs" / version / "triton_python_backend_stub",
    )
    if not install.binary.is_file() or not install.python_backend.is_dir():
        raise UnavailableError(f"{dist}: no tritonserver binary in the nvidia-pytriton wheel; {INSTALL_HINT}")
    if not install.stub.is_file():
        raise UnavailableError(f"nvidia-pytriton ships no python-backend stub for Python {version}")
    return install


def tritonserver_unavailable() -> str | None:
    try:
        find_tritonserver()
    except UnavailableError as e:
        return str(e)
    return None


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def parse_metrics(text: str) -> dict[str, dict[str, float]]:
    """Prometheus text -> {metric: {model: value}} for the per-model ``nv_inference_*`` counters."""
    out: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        m = re.match(r'^(nv_inference_\w+)\{[^}]*model="([^"]+)"[^}]*\}\s+([0-9.eE+-]+)$', line)
        if m:
            out.setdefault(m.group(1), {})[m.group(2)] = out.get(m.group(1), {}).get(m.group(2), 0.0) + float(
                m.group(3)
            )
    return out


class TritonServer:
    """``with TritonServer(repo) as server: server.http_url ...`` (or :meth:`start`/:meth:`stop`)."""

    def __init__(
        self,
        repository: str | Path,
        host: str = "127.0.0.1",
        http_port: int = 0,
        grpc_port: int = 0,
        metrics_port: int = 0,
        log_verbose: int = 0,
        shm_mib: int = 16,
    ):
        self.repository = Path(repository).resolve()
        if not self.repository.is_dir():
            raise InputError(f"{self.repository}: not a model repository directory")
        self.host = host
        self.ports = {
            "http": http_port or free_port(host),
            "grpc": grpc_port or free_port(host),
            "metrics": metrics_port or free_port(host),
        }
        self.log_verbose = log_verbose
        self.shm_mib = shm_mib
        self.install = find_tritonserver()
        self.workdir: Path | None = None
        self.process: subprocess.Popen | None = None
        self.shm_prefix = f"ast-deploy-{os.getpid()}-{secrets.token_hex(4)}-"

    # --- addresses -----------------------------------------------------------------------------

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.ports['http']}"

    @property
    def grpc_url(self) -> str:
        return f"grpc://{self.host}:{self.ports['grpc']}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self.host}:{self.ports['metrics']}/metrics"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def log_path(self) -> Path | None:
        return self.workdir / "tritonserver.log" if self.workdir else None

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path or not self.log_path.is_file():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    # --- life cycle ----------------------------------------------------------------------------

    def command(self) -> list[str]:
        backends = self.workdir / "backends"
        mib = self.shm_mib * 2**20
        return [
            str(self.install.binary),
            f"--model-repository={self.repository}",
            f"--backend-directory={backends}",
            "--model-control-mode=none",
            "--strict-readiness=true",
            "--exit-on-error=true",
            "--exit-timeout-secs=10",
            f"--http-address={self.host}",
            f"--http-port={self.ports['http']}",
            f"--grpc-address={self.host}",
            f"--grpc-port={self.ports['grpc']}",
            f"--metrics-address={self.host}",
            f"--metrics-port={self.ports['metrics']}",
            "--allow-metrics=true",
            "--allow-gpu-metrics=false",
            f"--log-verbose={self.log_verbose}",
            f"--backend-config=python,shm-region-prefix-name={self.shm_prefix}",
            f"--backend-config=python,shm-default-byte-size={mib}",
            f"--backend-config=python,shm-growth-byte-size={mib}",
        ]

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        libdir = sysconfig.get_config_var("LIBDIR") or ""
        env["LD_LIBRARY_PATH"] = os.pathsep.join(
            p for p in (libdir, str(self.install.libs), env.get("LD_LIBRARY_PATH", "")) if p
        )
        env["PATH"] = os.pathsep.join((str(Path(sys.executable).parent), env.get("PATH", "")))
        return env

    def start(self, timeout: float = 180.0) -> TritonServer:
        """Start the server and wait until it and every model are ready (or raise with its log)."""
        if self.process is not None:
            raise RuntimeError("server already started")
        self.workdir = Path(tempfile.mkdtemp(prefix="ast-deploy-triton-"))
        backend = self.workdir / "backends" / "python"
        backend.mkdir(parents=True)
        for item in self.install.python_backend.iterdir():
            (backend / item.name).symlink_to(item)
        (backend / "triton_python_backend_stub").symlink_to(self.install.stub)
        log = open(self.log_path, "wb")  # noqa: SIM115 - the child writes it for its whole life
        try:
            self.process = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.environment(),
                start_new_session=True,  # its own process group: stop() ends the stubs with it
            )
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self.log_tail()
                self.stop()
                raise InputError(f"tritonserver exited while starting:\n{tail}")
            if self.ready():
                return self
            time.sleep(0.2)
        tail = self.log_tail()
        self.stop()
        raise InputError(f"tritonserver was not ready after {timeout:.0f} s:\n{tail}")

    def _get(self, url: str, timeout: float = 2.0) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()
        except (urllib.error.URLError, OSError):
            return 0, b""

    def live(self) -> bool:
        return self._get(f"{self.http_url}/v2/health/live")[0] == 200

    def ready(self) -> bool:
        return self._get(f"{self.http_url}/v2/health/ready")[0] == 200

    def metrics(self) -> dict[str, dict[str, float]]:
        status, body = self._get(self.metrics_url, timeout=10)
        if status != 200:
            raise InputError(f"{self.metrics_url}: HTTP {status}")
        return parse_metrics(body.decode())

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _group_alive(self) -> bool:
        try:
            os.killpg(self.process.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # pragma: no cover - a recycled group id of another user
            return False
        return True

    def stop(self, grace: float = 20.0) -> int | None:
        """SIGTERM (Triton unloads its models and the stubs exit), SIGKILL to the group after
        ``grace`` seconds; then shared memory and the work directory go. Returns the exit status."""
        code = None
        if self.process is not None:
            if self.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(grace)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(self.process.pid, signal.SIGKILL)
                    self.process.wait(10)
            code = self.process.returncode
            # stubs left behind by a server that died or was killed: same group, ours to end
            deadline = time.monotonic() + 5
            while self._group_alive() and time.monotonic() < deadline:
                time.sleep(0.1)
            if self._group_alive():
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
        for region in SHM_DIR.glob(f"{self.shm_prefix}*") if SHM_DIR.is_dir() else ():
            with contextlib.suppress(OSError):
                region.unlink()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
        return code

    def leftovers(self) -> list[str]:
        """What a stopped server left behind (should be nothing): processes, shm regions, files."""
        left = []
        if self.process is not None and (self.process.poll() is None or self._group_alive()):
            left.append(f"process group {self.process.pid}")
        if SHM_DIR.is_dir():
            left += [str(p) for p in SHM_DIR.glob(f"{self.shm_prefix}*")]
        if self.workdir is not None and self.workdir.exists():
            left.append(str(self.workdir))
        return left

    def __enter__(self) -> TritonServer:
        return self.start() if self.process is None else self

    def __exit__(self, *exc) -> None:
        self.stop()


__all__ = ["TritonInstall", "TritonServer", "find_tritonserver", "parse_metrics", "tritonserver_unavailable"]
