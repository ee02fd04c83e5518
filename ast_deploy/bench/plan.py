"""A benchmark request, checked: source, backends (available here or why not), inputs, batch sizes.

Every :class:`~ast_deploy.errors.InputError` a request can raise is raised here, by
:func:`make_plan`, before anything is measured.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..checkpoints import LoadOptions
from ..errors import InputError
from ..runtime.base import InputKind
from .harness import Job, Timing
from .sources import INPUT_KINDS, BenchSource, open_source, options_to_dict

ISOLATION = ("batch", "backend", "none")


@dataclass
class BenchPlan:
    """A checked benchmark request: everything :func:`run` needs, nothing left to fail on input."""

    source: BenchSource
    load_options: dict
    backends: list[str]
    inputs: list[InputKind]
    batch_sizes: list[int]
    device: str
    threads: int | None
    timing: Timing
    isolation: str = "batch"
    baselines: list[str] = field(default_factory=lambda: ["pytorch"])
    roofline: bool = False
    unavailable: dict[str, str] = field(default_factory=dict)

    def jobs(self) -> list[Job]:
        per_batch = self.isolation == "batch"
        groups = [(b,) for b in self.batch_sizes] if per_batch else [tuple(self.batch_sizes)]
        return [
            Job(
                str(self.source.path),
                self.load_options,
                name,
                kind,
                group,
                self.device,
                self.threads,
                self.timing,
                self.isolation,
            )
            for kind in self.inputs
            for name in self.backends
            for group in groups
        ]

    def settings(self) -> dict:
        return settings_block(
            self.backends,
            self.inputs,
            self.batch_sizes,
            self.device,
            self.threads,
            self.timing,
            self.isolation,
            self.baselines,
        )


def settings_block(
    backends: list[str],
    inputs: list[InputKind],
    batch_sizes: list[int],
    device: str,
    threads: int | None,
    timing: Timing,
    isolation: str,
    baselines: list[str],
) -> dict:
    """The ``settings`` object of a result document."""
    return {
        "backends": backends,
        "inputs": inputs,
        "batch_sizes": batch_sizes,
        "device": device,
        "threads": threads,
        **asdict(timing),
        "isolation": isolation,
        "baselines": baselines,
    }


# --- checking a request --------------------------------------------------------------------------


def parse_batch_sizes(text: str) -> list[int]:
    """``"1,8,32"`` -> ``[1, 8, 32]``; anything but positive integers is an :class:`InputError`."""
    parts = [p.strip() for p in str(text).split(",")]
    sizes = []
    for part in parts:
        if not part.isdigit() or int(part) < 1:
            raise InputError(f"--batch-sizes {text!r}: {part!r} is not a positive integer (expected e.g. 1,8,32)")
        if int(part) not in sizes:
            sizes.append(int(part))
    return sizes


def backend_listing(source: BenchSource, device: str) -> tuple[list[str], dict[str, str]]:
    """(available backend names, {unavailable name: why}) for ``source`` on ``device``."""
    reasons = {name: source.unavailable(name, device) for name in source.backend_names()}
    return [n for n, r in reasons.items() if r is None], {n: r for n, r in reasons.items() if r is not None}


def describe_listing(available: list[str], unavailable: dict[str, str]) -> str:
    text = f"available here: {', '.join(available) or 'none'}"
    if unavailable:
        text += "; not available: " + "; ".join(f"{n} ({r})" for n, r in unavailable.items())
    return text


def _not_offered(name: str, source: BenchSource) -> str:
    from ..runtime import registry

    if name not in registry.artifact_backends():
        return f"unknown backend {name!r}"
    if source.type == "checkpoint":
        return f"backend {name!r} runs an exported artifact: benchmark a directory written by 'ast-deploy export'"
    return f"backend {name!r}: {source.path} has no such artifact (export it with --to)"


def choose_backends(requested: list[str] | None, source: BenchSource, device: str) -> tuple[list[str], dict[str, str]]:
    available, unavailable = backend_listing(source, device)
    if not requested:
        if not available:
            raise InputError(
                f"{source.path}: no backend can run on {device}; {describe_listing(available, unavailable)}"
            )
        return available, unavailable
    for name in requested:
        if name in unavailable:
            raise InputError(
                f"backend {name!r} is not available here: {unavailable[name]}; available: {', '.join(available)}"
            )
        if name not in available:
            raise InputError(f"{_not_offered(name, source)}; {describe_listing(available, unavailable)}")
    return list(dict.fromkeys(requested)), unavailable


def choose_inputs(requested: str | None, source: BenchSource) -> list[InputKind]:
    kinds = source.input_kinds()
    if requested is None:
        return list(kinds)
    wanted = list(INPUT_KINDS) if requested == "both" else [requested]
    if requested not in (*INPUT_KINDS, "both"):
        raise InputError(f"--input {requested!r}: expected waveform, fbank or both")
    missing = [k for k in wanted if k not in kinds]
    if missing:
        raise InputError(
            f"--input {requested}: {source.path} takes {kinds[0]} input only (its graphs were exported for it); "
            "export again with --input, or benchmark the checkpoint"
        )
    return wanted


def make_plan(
    source: str | Path,
    *,
    options: LoadOptions | None = None,
    backends: list[str] | None = None,
    inputs: str | None = None,
    batch_sizes: str | list[int] = "1,8,32",
    device: str = "cpu",
    threads: int | None = None,
    timing: Timing | None = None,
    isolation: str = "batch",
    baselines: list[str] | None = None,
    roofline: bool = False,
) -> BenchPlan:
    """Check every part of a request (raising :class:`InputError`) before anything is measured."""
    from ..runtime.devices import check_device

    check_device(device)
    sizes = (
        parse_batch_sizes(batch_sizes)
        if isinstance(batch_sizes, str)
        else parse_batch_sizes(",".join(map(str, batch_sizes)))
    )
    if threads is not None and threads < 1:
        raise InputError(f"--threads {threads}: must be at least 1")
    if isolation not in ISOLATION:
        raise InputError(f"--isolation {isolation!r}: expected one of {', '.join(ISOLATION)}")
    timing = (timing or Timing()).check()
    src = open_source(source, options)
    names, unavailable = choose_backends(backends, src, device)
    baselines = baselines if baselines is not None else ["pytorch"]
    for name in baselines:
        if name not in src.backend_names():
            raise InputError(
                f"--baseline {name!r} is not a backend of {source}; known: {', '.join(src.backend_names())}"
            )
    return BenchPlan(
        src, options_to_dict(options), names, choose_inputs(inputs, src), sizes, device, threads, timing,
        isolation, baselines, roofline, unavailable,
    )  # fmt: skip
