"""Options shared by several verbs, each defined once.

Groups of options travel together into a command as one object (``@with_load_options`` adds the
checkpoint flags and passes ``options: LoadOptions``):

- **Checkpoint** (``with_load_options``): how to read an authors' ``.pth`` (grid, labels, norm, ...);
- **Backend** (``with_runtime_options``): ``--backend``, ``--device``;
- **Windows** (``with_window_options``): ``--hop``, ``--batch-size`` (and ``--window`` for streams);
- **Triton server** (``with_serving_options``): ``--url``, ``--model``;
- **Triton model** (``with_model_config_options``): ``--max-batch``, ``--queue-delay-us``, ``--instances``, ``--threads``;
- **Events** and **Roll-up** live beside the code that resolves them (:mod:`.event_options`, :mod:`.rollup_option`).

Single options are ``Annotated`` types (``top_k: TopKOption = 5``). Audio is taken one way everywhere
(:mod:`ast_deploy.inputs`: files, folders, quoted glob patterns), as positional arguments
(``AudioArguments``) or after a flag (``AudioOption``) that, like every repeatable option of a
:class:`MultiValueCommand`, takes several values: ``--audio a.wav b.wav``. ``--json`` always prints
JSON on stdout; files are written by ``--report PATH`` (JSON) and ``--markdown PATH``.
"""

from __future__ import annotations

import functools
import inspect
import json
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from typer.core import TyperCommand

# --- option groups ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Opt:
    """One option of a group: the parameter ``name`` it fills, its type, flag(s), help and default;
    ``extra``: more ``typer.Option`` settings (``min=1``)."""

    name: str
    annotation: Any
    flags: str | tuple[str, ...]
    help: str
    default: Any = None
    extra: dict = field(default_factory=dict)

    def parameter(self, panel: str) -> inspect.Parameter:
        flags = (self.flags,) if isinstance(self.flags, str) else self.flags
        option = typer.Option(*flags, help=self.help, rich_help_panel=panel, **self.extra)
        return inspect.Parameter(
            self.name,
            inspect.Parameter.KEYWORD_ONLY,
            default=self.default,
            annotation=Annotated[self.annotation, option],
        )


def option_group(specs: list[Opt], panel: str, into: str, make: Callable):
    """A decorator adding each option of ``specs`` to a command (in help panel ``panel``) and passing
    them on together as one argument ``into=make(**values)``."""

    def decorate(func):
        sig = inspect.signature(func, eval_str=True)
        params = [p for p in sig.parameters.values() if p.name != into]
        params += [spec.parameter(panel) for spec in specs]

        @functools.wraps(func)
        def wrapper(**kwargs):
            values = {spec.name: kwargs.pop(spec.name) for spec in specs}
            return func(**{into: make(**values)}, **kwargs)

        wrapper.__signature__ = sig.replace(parameters=params)
        wrapper.__annotations__ = {p.name: p.annotation for p in params}
        return wrapper

    return decorate


# --- checkpoint options, shared by every verb that reads a checkpoint -------------------------

_LOAD_OPTIONS = [
    Opt("input_tdim", Optional[int], "--input-tdim", "Frames the model was trained on (authors' .pth)."),
    Opt("fstride", Optional[int], "--fstride", "Frequency stride of the patches (authors' .pth)."),
    Opt("tstride", Optional[int], "--tstride", "Time stride of the patches (authors' .pth)."),
    Opt("num_mel_bins", Optional[int], "--num-mel-bins", "Mel bins (authors' .pth; default 128)."),
    Opt("num_heads", Optional[int], "--num-heads", "Attention heads, for widths that are not DeiT sizes."),
    Opt("label_csv", Optional[Path], "--labels", "Label CSV (index,mid,display_name)."),
    Opt("norm", Optional[str], "--norm", "Normalisation preset: audioset | esc50 | speechcommands."),
    Opt("activation", Optional[str], "--activation", "Output activation: sigmoid | softmax."),
]


def with_load_options(func):
    """Add the checkpoint flags to a command and pass them on as one ``options: LoadOptions``."""
    from ..checkpoints import LoadOptions

    return option_group(_LOAD_OPTIONS, "Checkpoint", "options", LoadOptions)(func)


# --- where the model runs ------------------------------------------------------------------------

DEVICE_HELP = "cpu | cuda"
BACKEND_HELP = "Backend of an artifact directory (default: the best one here)."
DeviceOption = Annotated[str, typer.Option(help=DEVICE_HELP)]
BackendOption = Annotated[Optional[str], typer.Option("--backend", help=BACKEND_HELP)]


@dataclass(frozen=True)
class Runtime:
    """``--backend`` and ``--device``: which backend of an artifact directory runs, and where."""

    backend: str | None = None
    device: str = "cpu"

    def check_device(self) -> None:
        """An unusable ``--device`` as one line (before a model is loaded)."""
        from ..runtime.devices import check_device

        check_device(self.device)


_RUNTIME_OPTIONS = [
    Opt("backend", Optional[str], "--backend", BACKEND_HELP),
    Opt("device", str, "--device", DEVICE_HELP, default="cpu"),
]

# Add --backend and --device to a command and pass them on as one ``runtime: Runtime``.
with_runtime_options = option_group(_RUNTIME_OPTIONS, "Backend", "runtime", Runtime)


# --- windows -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Windows:
    """How audio is cut and batched: seconds between windows (None: one window), the window in seconds
    (None: the model's; streams only), windows per model call."""

    hop: float | None = None
    window: float | None = None
    batch_size: int = 8


_WINDOW_OPTIONS = [
    Opt("hop", Optional[float], "--hop", "Seconds between windows (default: one window, no overlap)."),
    Opt("window", Optional[float], "--window", "Window in seconds, at most the model's (default: the model's)."),
    Opt("batch_size", int, "--batch-size", "Windows per model call.", default=8, extra={"min": 1}),
]


def with_window_options(*, window: bool = False):
    """Add ``--hop`` and ``--batch-size`` (and ``--window`` with ``window=True``) to a command and pass
    them on as one ``windows: Windows``."""
    specs = [spec for spec in _WINDOW_OPTIONS if window or spec.name != "window"]
    return option_group(specs, "Windows", "windows", Windows)


# --- a model served by Triton --------------------------------------------------------------------


@dataclass(frozen=True)
class Serving:
    """``--url`` and ``--model``: a Triton server (``ast-deploy serve`` or any) and the model it serves."""

    url: str | None = None
    model: str | None = None

    def use_for_triton_backend(self) -> None:
        """Point backend 'triton' at this server; through the environment, so that bench's per-row
        processes see it too."""
        import os

        from ..runtime.triton import MODEL_ENV, URL_ENV

        for name, value in ((URL_ENV, self.url), (MODEL_ENV, self.model)):
            if value is not None:
                os.environ[name] = value


_SERVING_OPTIONS = [
    Opt("url", Optional[str], "--url", "A Triton server: http://HOST:PORT or grpc://HOST:PORT (ast-deploy serve)."),
    # "served_model", not "model": that is the name of the verbs' own model argument
    Opt(
        "served_model",
        Optional[str],
        "--model",
        "Model on the --url server (default: the only one, or this directory's).",
    ),
]

# Add --url and --model to a command and pass them on as one ``serving: Serving``.
with_serving_options = option_group(
    _SERVING_OPTIONS, "Triton server", "serving", lambda url, served_model: Serving(url, served_model)
)


# --- how Triton serves a model (ast-deploy triton, ast-deploy serve) ------------------------------


@dataclass(frozen=True)
class ModelConfig:
    """The Triton model settings that ``triton`` and ``serve`` share (``RepositoryOptions`` fields)."""

    max_batch: int | None = None
    queue_delay_us: int = 500
    instances: int = 1
    threads: int | None = None


_MODEL_CONFIG_OPTIONS = [
    Opt("max_batch", Optional[int], "--max-batch", "max_batch_size (default: the export's batch max)."),
    Opt("queue_delay_us", int, "--queue-delay-us", "Dynamic batcher's max queue delay (µs).", default=500),
    Opt("instances", int, "--instances", "Instances of each model (python backend: stub processes).", default=1),
    Opt("threads", Optional[int], "--threads", "Intra-op threads of each python-backend instance."),
]

# Add the Triton model settings to a command and pass them on as one ``model_config: ModelConfig``.
with_model_config_options = option_group(_MODEL_CONFIG_OPTIONS, "Triton model", "model_config", ModelConfig)


# --- single options ------------------------------------------------------------------------------

TopKOption = Annotated[int, typer.Option("--top-k", "-k", min=1, help="Labels shown per file and per window.")]
ProgressOption = Annotated[
    Optional[bool], typer.Option("--progress/--no-progress", help="Progress on stderr (default: on a terminal).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON on stdout instead of tables.")]
ReportOption = Annotated[Optional[Path], typer.Option("--report", help="Also write the full report as JSON here.")]
MarkdownOption = Annotated[Optional[Path], typer.Option("--markdown", help="Also write the tables as markdown here.")]

AUDIO_HELP = "Audio files, folders (their audio files, recursively) or quoted glob patterns ('clips/**/*.wav')."
# Strings, not paths: a path would make "s3://b/k" "s3:/b/k" before it could be refused as a URI.
AudioArguments = Annotated[Optional[list[str]], typer.Argument(help=AUDIO_HELP, show_default=False)]
AudioOption = Annotated[
    Optional[list[str]], typer.Option("--audio", help=f"{AUDIO_HELP} Several after one flag, or repeated.")
]


def audio_paths(args: Iterable[str | Path], flag: str | None = None) -> list[Path]:
    """The audio files that command-line arguments stand for (:func:`ast_deploy.inputs.audio_files`);
    sub-folders that cannot be read are warnings on stderr."""
    from ..inputs import audio_files
    from .app import err_console

    warnings: list[str] = []
    files = audio_files(args, warnings, flag)
    for warning in warnings:
        err_console.print(f"warning: {warning}", markup=False, highlight=False, soft_wrap=True)
    return files


class MultiValueCommand(TyperCommand):
    """A command whose repeatable options also take several values after one flag: ``--audio a.wav b.wav``
    is ``--audio a.wav --audio b.wav`` (click options take one value per flag). The values run to the next
    word that starts with ``-``, so such a flag goes after the command's positional arguments."""

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        flags = {flag for p in self.params if getattr(p, "multiple", False) for flag in getattr(p, "opts", ())}
        return super().parse_args(ctx, spread_values(args, flags))


def spread_values(args: list[str], flags: set[str]) -> list[str]:
    """``args`` with a flag of ``flags`` repeated before each further value that follows it."""
    out: list[str] = []
    words = iter(args)
    spreading: str | None = None  # the flag whose values are being read
    for word in words:
        if word == "--":  # what follows is positional
            out += [word, *words]
            break
        if word.startswith("-") and word != "-":
            name, has_value = word.split("=", 1)[0], "=" in word
            spreading = name if name in flags else None
            out.append(word)
            if spreading and not has_value and (value := next(words, None)) is not None:
                out.append(value)  # the flag's own first value, whatever it looks like
            continue
        out += [spreading, word] if spreading else [word]
    return out


# --- output --------------------------------------------------------------------------------------


def show_progress(progress: bool | None) -> bool:
    """``--progress/--no-progress``, by default on when stderr is a terminal."""
    from .app import err_console

    return err_console.is_terminal if progress is None else progress


def print_json_line(data) -> None:
    """One JSON object per line (JSON lines), flushed: a consumer on a pipe sees each as it comes."""
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()


def print_json(data) -> None:
    # json.dump writes piece by piece: json.dumps with indent first builds a list of every piece,
    # ~60 MB for the 28,800-window timeline of a 2-hour file at a 0.25 s hop (issue 13).
    json.dump(data, sys.stdout, indent=2)
    sys.stdout.write("\n")
