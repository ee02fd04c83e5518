"""The ``ast-deploy`` app: the typer object, ``--debug``, the consoles, plugin loading and error mapping.

Bad input is reported as one line on stderr with exit status 2 (``--debug`` shows the traceback).
Other packages (the ``training`` package) add verbs through the ``ast_deploy.cli`` entry-point
group, so that ``ast_deploy`` never imports them by name; a plugin that fails to load is reported
as one warning line and the other verbs still work.
"""

from __future__ import annotations

import os
import sys
from importlib import metadata
from typing import Annotated

import typer
from rich.console import Console, ConsoleDimensions

from ..errors import InputError

try:  # typer >= 0.20 vendors click
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover - older typer depends on click
    from click import exceptions as click_exceptions

PLUGIN_GROUP = "ast_deploy.cli"

# Width of output that goes to a file or a pipe (CI logs, `ast-deploy bench > out.txt`) when
# COLUMNS does not set one: wide enough for the parity and bench tables with a failure message.
NON_TERMINAL_WIDTH = 200


def _is_tty(file) -> bool:
    try:
        return file.isatty()
    except (AttributeError, ValueError, OSError):  # no isatty, or closed
        return False


class _Console(Console):
    """A rich Console that does not cut tables at 80 columns when it writes to a file or a pipe.

    Rich sizes its output to the terminal; writing elsewhere it falls back to 80 columns (or to the
    width of a terminal on stdin), and table cells were cut with "…". Here COLUMNS, when set, wins
    as in rich; otherwise a terminal gives its width and anything else :data:`NON_TERMINAL_WIDTH`.
    Decided at each print, so it follows redirections of ``sys.stdout``.
    """

    @property
    def size(self) -> ConsoleDimensions:
        size = Console.size.fget(self)
        if os.environ.get("COLUMNS", "").isdigit() or _is_tty(self.file):
            return size
        return ConsoleDimensions(NON_TERMINAL_WIDTH, size.height)

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)


app = typer.Typer(
    name="ast-deploy",
    help="Audio Spectrogram Transformer: train, export, check parity, benchmark, predict.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = _Console()
err_console = _Console(stderr=True)
state: dict = {"debug": False}  # "argv": this invocation's arguments (bench records them)


def print_table(heading: str, table) -> None:
    """``heading`` on its own line, never wrapped, then ``table``.

    Not the table's title: rich wraps a title to the table's width, which cut file paths in two
    (and made them impossible to copy or grep) whenever the path was longer than the table.
    """
    console.print(heading, markup=False, highlight=False, soft_wrap=True)
    console.print(table)


@app.callback()
def _main(debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False) -> None:
    state["debug"] = debug


# --- plugins -----------------------------------------------------------------------------------

_loaded_plugins: set[tuple[str, str]] = set()  # (name, value) of the entry points tried in this process


def load_plugins() -> None:
    """Let each ``ast_deploy.cli`` entry point register its verbs on :data:`app`, once per process.

    Plugin verbs are listed first (``train`` comes first in the workflow). An entry point that fails
    to import or to register is reported as one warning line on stderr, whatever it registered is
    taken back, and the rest of the CLI works; with ``--debug`` its error is raised instead.
    """
    for ep in metadata.entry_points(group=PLUGIN_GROUP):
        key = (ep.name, ep.value)
        if key in _loaded_plugins:
            continue
        commands, groups = list(app.registered_commands), list(app.registered_groups)
        try:
            ep.load()(app)
        except Exception as e:
            app.registered_commands[:], app.registered_groups[:] = commands, groups
            if state["debug"]:
                raise
            reason = " ".join(str(e).split()) or "(no message)"
            err_console.print(
                f"warning: plugin {ep.name!r} ({ep.value}) failed to load: {type(e).__name__}: {reason}",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
        else:
            added = [c for c in app.registered_commands if not any(c is old for old in commands)]
            app.registered_commands[:] = added + commands
        _loaded_plugins.add(key)


# --- entry point -------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Console entry point: run the app, turning bad input into one line and exit status 2."""
    argv = list(sys.argv[1:] if argv is None else argv)
    state["debug"] = "--debug" in argv
    state["argv"] = argv  # recorded by bench with its results
    load_plugins()
    command = typer.main.get_command(app)
    try:
        status = command.main(args=argv, prog_name="ast-deploy", standalone_mode=False)
    except InputError as e:
        if state["debug"]:
            raise
        err_console.print(f"error: {e}", markup=False, highlight=False, soft_wrap=True)
        return 2
    except click_exceptions.NoArgsIsHelpError as e:
        err_console.print(e.ctx.get_help() if e.ctx else str(e), markup=False, highlight=False)
        return 2
    except click_exceptions.ClickException as e:
        if state["debug"]:
            raise
        where = f"{e.ctx.command_path}: " if getattr(e, "ctx", None) else ""
        err_console.print(f"error: {where}{e.format_message()}", markup=False, highlight=False, soft_wrap=True)
        return e.exit_code
    except typer.Exit as e:
        return e.exit_code
    except typer.Abort:
        err_console.print("aborted")
        return 130
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130
    return status if isinstance(status, int) else 0


def run() -> None:
    sys.exit(main())
