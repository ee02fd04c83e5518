"""``ast-deploy serve``: one artifact backend behind a real Triton server on this machine."""

from __future__ import annotations

import json
import shutil
import signal
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from ..errors import InputError
from .app import app, err_console
from .options import BackendOption, ModelConfig, with_model_config_options


class _Stop(Exception):
    """SIGINT or SIGTERM arrived."""


def _raise_stop(signum, frame) -> None:
    raise _Stop(signal.Signals(signum).name)


@app.command()
@with_model_config_options
def serve(
    directory: Annotated[Path, typer.Argument(help="Artifact directory written by 'ast-deploy export'.")],
    backend: BackendOption = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    http_port: Annotated[int, typer.Option(help="HTTP port (0: a free one).")] = 8000,
    grpc_port: Annotated[int, typer.Option(help="gRPC port (0: a free one).")] = 8001,
    metrics_port: Annotated[int, typer.Option(help="Prometheus metrics port (0: a free one).")] = 8002,
    start_timeout: Annotated[float, typer.Option(help="Seconds to wait for the server to be ready.")] = 300.0,
    model_config: ModelConfig | None = None,
) -> None:
    """Serve an artifact backend with Triton (python backend) until SIGINT or SIGTERM."""
    from ..artifacts import ArtifactDir
    from ..runtime import registry
    from ..serving.repository import RepositoryOptions, python_model_name, write_repository
    from ..serving.server import TritonServer

    artifacts = ArtifactDir(directory)
    name = backend or artifacts.default_backend("cpu")
    entry = registry.get(name)
    if not entry.runs_artifact:
        raise InputError(
            f"--backend {name!r}: serve runs an artifact backend ({', '.join(artifacts.artifact_names())})"
        )
    reason = artifacts.unavailable(name, "cpu")
    if reason:
        raise InputError(f"--backend {name!r} cannot run here: {reason}")
    options = RepositoryOptions(native=(), python=(name,), kind="cpu", **asdict(model_config))
    work = Path(tempfile.mkdtemp(prefix="ast-deploy-serve-"))
    previous = {s: signal.signal(s, _raise_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    server = None
    try:
        write_repository(directory, work / "repository", options)
        server = TritonServer(
            work / "repository", host=host, http_port=http_port, grpc_port=grpc_port, metrics_port=metrics_port
        )
        err_console.print(f"starting tritonserver for {name} ...", markup=False)
        server.start(timeout=start_timeout)
        # one JSON line on stdout, for scripts and tests: where it listens and who to signal
        model = python_model_name(name)
        info = {
            "model": model,
            "http": server.http_url,
            "grpc": server.grpc_url,
            "metrics": server.metrics_url,
            "pid": server.pid,
        }
        print(json.dumps(info), flush=True)
        err_console.print(
            f"serving {model} at {server.http_url} and {server.grpc_url} (metrics {server.metrics_url}); "
            f"try: ast-deploy predict --url {server.http_url} clip.wav   (Ctrl-C stops)",
            markup=False,
            soft_wrap=True,
        )
        while server.running():
            time.sleep(0.5)
        raise InputError(f"tritonserver exited with status {server.process.returncode}:\n{server.log_tail()}")
    except _Stop as stop:
        err_console.print(f"{stop}: stopping tritonserver ...", markup=False)
    finally:
        for s in previous:  # a second Ctrl-C must not cut the clean-up short
            signal.signal(s, signal.SIG_IGN)
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
        for s, handler in previous.items():
            signal.signal(s, handler)
