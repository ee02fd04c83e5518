"""What installing the project adds to Python's import names: ``ast_deploy`` and ``ast_deploy_training``
(the ``training/`` folder, installed under a name of this project's own), nothing else.

A top-level ``training`` collided with any user project or other package that has a module of that
name (issue 19); these tests fail if it comes back, in the build configuration or in the installed
distribution, and if a package folder is left out of the build.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import subprocess
import sys

import pytest
from conftest import REPO_ROOT

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

OWN = {"ast_deploy", "ast_deploy_training"}
FOLDERS = {"ast_deploy": REPO_ROOT / "ast_deploy", "ast_deploy_training": REPO_ROOT / "training"}


def setuptools_config() -> dict:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def packages_on_disk() -> set[str]:
    """Every folder of the two trees as the package name it installs under (data folders included)."""
    names = set()
    for name, root in FOLDERS.items():
        names.add(name)
        for folder in root.rglob("*"):
            if folder.is_dir() and "__pycache__" not in folder.parts:
                names.add(".".join([name, *folder.relative_to(root).parts]))
    return names


def test_the_build_installs_every_folder_under_the_projects_two_names():
    config = setuptools_config()
    assert {name.split(".")[0] for name in config["packages"]} == OWN
    assert config["package-dir"] == {"ast_deploy_training": "training"}
    assert set(config["package-data"]) <= OWN
    missing = packages_on_disk() - set(config["packages"])
    assert not missing, f"add {sorted(missing)} to [tool.setuptools] packages in pyproject.toml"
    assert set(config["packages"]) == packages_on_disk()


# Run in a fresh interpreter in another folder (``-I``: neither the current folder nor PYTHONPATH on
# ``sys.path``), so that it sees what is installed, not the repository's folders or a stale egg-info.
INSTALLED = """
import importlib.metadata, importlib.util, json
dist = importlib.metadata.distribution("ast-deploy")
spec = importlib.util.find_spec("training")
import ast_deploy_training, ast_deploy_training.config as config
print(json.dumps({
    "top_level": (dist.read_text("top_level.txt") or "").split(),
    "entry_points": [e.value for e in dist.entry_points],
    "training": spec and spec.origin,
    "recipes": config.recipe_names(),
}))
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    proc = subprocess.run(
        [sys.executable, "-I", "-c", INSTALLED],
        cwd=tmp_path_factory.mktemp("elsewhere"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_the_installed_distribution_has_no_other_top_level_name(installed):
    assert set(installed["top_level"]) == OWN, f"installed top-level names {installed['top_level']}: make setup"
    # the console script and the CLI plugin point into the two packages
    assert {value.split(":")[0].split(".")[0] for value in installed["entry_points"]} == OWN, installed


def test_outside_the_repository_training_is_not_importable_and_ast_deploy_training_is(installed):
    # Another distribution may own a "training" module; this project must not provide one.
    assert installed["training"] is None or not installed["training"].startswith(str(REPO_ROOT)), installed
    assert "quickstart" in installed["recipes"]  # the recipes (package data) come with ast_deploy_training


@pytest.mark.parametrize("module", ["ast_deploy_training.cli", "ast_deploy_training.__main__"])
def test_the_training_package_names_itself_by_its_installed_name(module):
    """``python -m ast_deploy_training`` (torchrun's entry) and the CLI plugin load under the new name."""
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin.endswith(
        module.replace("ast_deploy_training", "", 1).replace(".", "/") + ".py"
    )
