"""The documented commands work: every ``ast-deploy`` line in a code block of README.md and docs/*.md
parses (its verb, flags and arguments exist and fit), and the README's commands that run in seconds
here run, on small stand-ins for its models and files.

A command is read from a fenced code block: a line starting with ``ast-deploy`` (or piped into it),
continued over lines ending in ``\\``, cut at ``|``, ``>``, ``;``, ``&&`` and ``#``; in a synopsis the
brackets of ``[--flag VALUE]`` are dropped, so its flags are checked too.
"""

from __future__ import annotations

import io
import re
import shlex
import shutil
import sys
from pathlib import Path

import pytest
import soundfile as sf
import typer
from conftest import REPO_ROOT, SPEECH_WAV, run_cli

DOCS = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
_COMMAND = re.compile(r"(^|\|\s*)ast-deploy ")


def documented_commands(paths: list[Path]) -> list[tuple[str, list[str]]]:
    """``("FILE:LINE", argv after 'ast-deploy')`` of every command in the code blocks of ``paths``."""
    commands = []
    for path in paths:
        in_block, text, start = False, "", 0
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.lstrip().startswith("```"):
                in_block, text = not in_block, ""
                continue
            if not in_block or not (text or _COMMAND.search(line.strip())):
                continue
            text, start = (f"{text} {line.strip()}", start) if text else (line.strip(), number)
            if text.endswith("\\"):
                text = text[:-1]
                continue
            words = shlex.split(text[text.index("ast-deploy ") :], comments=True)
            text = ""
            for stop in ("|", ">", ";", "&&"):
                words = words[: words.index(stop)] if stop in words else words
            words = [w.strip("[]") if w.startswith("[") or w.endswith("]") else w for w in words]
            commands.append((f"{path.relative_to(REPO_ROOT)}:{start}", words[1:]))
    return commands


def parse_only(argv: list[str]) -> None:
    """Parse ``ast-deploy ARGV`` as the CLI would, without running it (click's errors raise)."""
    from ast_deploy.cli.app import app, load_plugins

    load_plugins()  # the training verbs are documented too
    command, name = typer.main.get_command(app), "ast-deploy"
    ctx = command.make_context(name, [], resilient_parsing=True)
    while hasattr(command, "commands"):  # a group: the verb (or sub-verb) comes next
        name, argv = argv[0], argv[1:]
        command = command.get_command(ctx, name)
        assert command is not None, f"no verb {name!r}"
        if hasattr(command, "commands"):
            ctx = command.make_context(name, [], parent=ctx, resilient_parsing=True)
    command.make_context(name, list(argv), parent=ctx)


def test_commands_are_found():
    commands = documented_commands(DOCS)
    assert len(commands) > 60, len(commands)  # the reader still finds them (79 when written)
    verbs = {argv[0] for _, argv in commands}
    assert {"export", "parity", "bench", "predict", "stream", "batch", "triton", "serve", "train"} <= verbs


@pytest.mark.parametrize(("where", "argv"), documented_commands(DOCS), ids=lambda v: v if isinstance(v, str) else "")
def test_documented_command_parses(where, argv):
    try:
        parse_only(argv)
    except Exception as e:  # click's usage errors: unknown flag, extra or missing argument
        message = e.format_message() if hasattr(e, "format_message") else str(e)
        pytest.fail(f"{where}: ast-deploy {shlex.join(argv)}\n{type(e).__name__}: {message}")


def test_a_bad_command_fails_to_parse():
    with pytest.raises(Exception, match="extra argument"):
        parse_only(["bench", "artifacts/", "--json", "bench.json"])  # --json prints; files are --report's
    with pytest.raises(Exception, match="Missing parameter: out"):
        parse_only(["export", "model.pth", "artifacts/"])


# --- the README's commands, run ---------------------------------------------------------------------

# Run here: what takes seconds on a tiny model. Not run: export to every format (minutes; tests/test_export.py),
# bench timing (seconds per row; tests/test_bench.py), serve and --url (a Triton server; tests/test_serving.py),
# train / prepare / quickstart (data and minutes; the training tests).
RUN_VERBS = {"parity", "predict", "stream", "triton", "info"}


def runs_here(argv: list[str]) -> bool:
    return (argv[0] in RUN_VERBS and "--url" not in argv) or argv[:1] + argv[2:] == ["bench", "--backends", "list"]


@pytest.fixture(scope="module")
def readme_stand_ins(tiny_model_dir, tmp_path_factory) -> Path:
    """A folder holding what the README's commands name: ``artifacts/`` (the tiny model exported to
    TorchScript and ONNX) and its audio files (the fixture sentence)."""
    folder = tmp_path_factory.mktemp("readme")
    result = run_cli("export", tiny_model_dir, "--out", folder / "artifacts", "--to", "torchscript,onnx", "--no-verify")
    assert result.code == 0, result.stderr
    samples, rate = sf.read(SPEECH_WAV, dtype="float32")
    for name in ("a.wav", "b.wav", "clip.wav", "dog.wav", "street.flac", "podcast.flac"):
        sf.write(folder / name, samples, rate)
    return folder


@pytest.fixture(scope="module")
def audioset_stand_in(tiny_model_dir, tmp_path_factory) -> Path:
    """The tiny model with AudioSet labels (the first ten): the README's AudioSet checkpoint, which
    ``--rollup`` needs (a label set of one's own is refused)."""
    from ast_deploy import load_checkpoint, save_checkpoint
    from ast_deploy.labels import builtin_label_set

    ckpt = load_checkpoint(tiny_model_dir)
    names = builtin_label_set("audioset").names[: len(ckpt.labels)]
    out = tmp_path_factory.mktemp("audioset") / "model"
    return save_checkpoint(out, ckpt.config, ckpt.state_dict, names, ckpt.frontend)


@pytest.mark.slow
def test_readme_commands_run(readme_stand_ins, audioset_stand_in, monkeypatch):
    monkeypatch.chdir(readme_stand_ins)
    stand_ins = {"audioset_10_10_0.4593.pth": str(audioset_stand_in)}  # the tiny model, loading without flags
    pcm = (sf.read(SPEECH_WAV, dtype="int16")[0]).tobytes()  # for `arecord ... | ast-deploy stream artifacts/ -`
    ran = []
    for where, argv in documented_commands([REPO_ROOT / "README.md"]):
        if not runs_here(argv):
            continue
        if argv[0] == "triton":
            shutil.rmtree("model_repository", ignore_errors=True)
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(pcm)))
        result = run_cli(*(stand_ins.get(word, word) for word in argv))
        assert result.code == 0, f"{where}: ast-deploy {shlex.join(argv)}\n{result.stderr}"
        ran.append(argv[0])
    assert sorted(set(ran)) == ["bench", "parity", "predict", "stream", "triton"], ran
