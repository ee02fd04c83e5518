"""``ast_deploy.extras.missing``: the one "is X installed" probe, and the line it gives when X is not."""

from __future__ import annotations

import sys

from ast_deploy.extras import missing


def test_an_importable_module_is_not_missing():
    assert missing("json", "dev") is None
    assert missing(("json", "os.path"), "dev") is None


def test_a_missing_module_names_itself_and_the_extra():
    assert missing("ast_deploy_no_such_module", "onnx") == (
        "ast_deploy_no_such_module is not installed (pip install 'ast-deploy[onnx]')"
    )
    assert missing("ast_deploy_no_such_module.sub", "serve", "Some Library") == (
        "Some Library is not installed (pip install 'ast-deploy[serve]')"
    )
    # several modules: the first that fails is named
    assert missing(("json", "ast_deploy_no_such_module"), "bench").startswith("ast_deploy_no_such_module is not")


def test_an_installed_module_whose_dependency_is_missing_says_so(tmp_path, monkeypatch):
    (tmp_path / "ast_deploy_broken_lib.py").write_text("import ast_deploy_no_such_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "ast_deploy_broken_lib", raising=False)
    reason = missing("ast_deploy_broken_lib", "events")
    assert reason.startswith(
        "ast_deploy_broken_lib cannot be imported (No module named 'ast_deploy_no_such_dependency'"
    )
    assert reason.endswith("pip install 'ast-deploy[events]')") and "\n" not in reason
