"""The CLI app (``ast_deploy/cli/app.py``): plugin loading and the width of output to files and pipes.

A plugin of the ``ast_deploy.cli`` entry-point group that fails to import or to register is one
warning line on stderr naming it and its error; every other verb still works (``--debug`` raises).
"""

from __future__ import annotations

import importlib
import importlib.metadata as metadata
import sys

import pytest
from conftest import SPEECH_WAV, TINY_CASE, TINY_PTH, authors_flags, run_cli

from ast_deploy.cli import app

cli_app = importlib.import_module("ast_deploy.cli.app")  # the module (ast_deploy.cli.app is the typer app)

GROUP = "ast_deploy.cli"
PLUGIN_MODULE = "ast_deploy_test_plugins"
PLUGIN_SOURCE = '''
def register(app):
    @app.command("plugin-hello")
    def hello(name: str = "world") -> None:
        """Say hello (a test plugin)."""
        print(f"hello {name}")


def register_then_fail(app):
    @app.command("plugin-half")
    def half() -> None:
        """Registered by a plugin that then fails: taken back."""

    raise RuntimeError("no licence\\nfor this plugin")
'''

BROKEN = {  # entry point name -> (value, the warning's end)
    "missing": (
        "ast_deploy_no_such_plugin.cli:register",
        "ModuleNotFoundError: No module named 'ast_deploy_no_such_plugin'",
    ),
    "half": (f"{PLUGIN_MODULE}:register_then_fail", "RuntimeError: no licence for this plugin"),
    "no-function": (
        f"{PLUGIN_MODULE}:no_such_function",
        f"AttributeError: module '{PLUGIN_MODULE}' has no attribute 'no_such_function'",
    ),
}


def warning(name: str) -> str:
    value, error = BROKEN[name]
    return f"warning: plugin {name!r} ({value}) failed to load: {error}"


@pytest.fixture
def fresh_app(monkeypatch):
    """The app as it is now, restored afterwards, with no entry point loaded yet in this process."""
    monkeypatch.setattr(app, "registered_commands", list(app.registered_commands))
    monkeypatch.setattr(app, "registered_groups", list(app.registered_groups))
    monkeypatch.setattr(cli_app, "_loaded_plugins", set())
    return app


@pytest.fixture
def plugins(fresh_app, monkeypatch, tmp_path):
    """The installed entry points replaced by three broken ones around a working one."""
    (tmp_path / f"{PLUGIN_MODULE}.py").write_text(PLUGIN_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    eps = [metadata.EntryPoint(name, value, GROUP) for name, (value, _) in BROKEN.items()]
    eps.insert(1, metadata.EntryPoint("hello", f"{PLUGIN_MODULE}:register", GROUP))
    monkeypatch.setattr(metadata, "entry_points", lambda **params: metadata.EntryPoints(eps).select(**params))
    yield
    sys.modules.pop(PLUGIN_MODULE, None)


def test_failing_plugins_are_one_warning_each_and_the_cli_works(plugins, tiny_model_dir):
    result = run_cli("info", tiny_model_dir, "--json")
    assert result.code == 0, result.stderr
    assert result.json()["format"] == "ast-deploy"
    assert result.stderr.splitlines() == [warning(name) for name in BROKEN]

    hello = run_cli("plugin-hello", "--name", "there")  # the working plugin's verb; warnings not repeated
    assert (hello.code, hello.stdout, hello.stderr) == (0, "hello there\n", "")

    help_text = run_cli("--help")
    assert help_text.code == 0 and help_text.stderr == ""
    assert "plugin-half" not in help_text.stdout  # what the failing plugin registered was taken back
    verbs = [line.split()[1] for line in help_text.stdout.splitlines() if line.startswith("│ ")]
    assert verbs.index("plugin-hello") < verbs.index("export") < verbs.index("init")  # plugins first
    assert run_cli("plugin-half").code == 2


def test_help_works_with_a_broken_plugin(plugins):
    result = run_cli("--help")
    assert result.code == 0
    assert "export" in result.stdout and "plugin-hello" in result.stdout
    assert result.stderr.splitlines() == [warning(name) for name in BROKEN]


def test_debug_raises_the_plugins_error(plugins):
    with pytest.raises(ModuleNotFoundError, match="ast_deploy_no_such_plugin"):
        run_cli("--debug", "--help")


def test_installed_plugins_load_without_warnings(fresh_app):
    result = run_cli("--help")
    assert result.code == 0 and result.stderr == ""
    verbs = [line.split()[1] for line in result.stdout.splitlines() if line.startswith("│ ")]
    assert set(verbs) >= {"train", "evaluate", "prepare", "export", "predict"}
    assert verbs.index("train") < verbs.index("export") < verbs.index("predict")  # the workflow's order


# --- output width --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def long_labels(tmp_path_factory) -> tuple[list[str], str]:
    """Ten labels longer than an 80-column table has room for, with and without spaces."""
    labels = [
        f"Label {i} with a long display name, as some AudioSet classes have, longer than eighty columns allow"
        if i % 2
        else f"label_{i}_without_any_space_that_rich_could_wrap_at_so_an_80_column_table_would_cut_it_with_an_ellipsis"
        for i in range(10)
    ]
    path = tmp_path_factory.mktemp("labels") / "long.csv"
    path.write_text("index,mid,display_name\n" + "".join(f'{i},/m/{i},"{name}"\n' for i, name in enumerate(labels)))
    return labels, str(path)


def predict_table(labels_csv: str):
    return run_cli("predict", TINY_PTH, *authors_flags(TINY_CASE), "--labels", labels_csv, SPEECH_WAV, "-k", "10")


def test_tables_are_not_cut_when_output_is_not_a_terminal(monkeypatch, long_labels):
    """stdout is a StringIO here, as a file or a pipe would be: rows keep their full labels."""
    monkeypatch.delenv("COLUMNS", raising=False)
    labels, csv = long_labels
    result = predict_table(csv)
    assert result.code == 0, result.stderr
    assert "…" not in result.stdout
    for label in labels:
        assert sum(label in line for line in result.stdout.splitlines()) == 1, label


def test_columns_still_sets_the_width(monkeypatch, long_labels):
    monkeypatch.setenv("COLUMNS", "80")
    labels, csv = long_labels
    result = predict_table(csv)
    assert result.code == 0, result.stderr
    assert max(map(len, result.stdout.splitlines())) <= 80
    assert not any(label in result.stdout for label in labels)
