"""``parity.threshold_overrides``: what ``ast-deploy parity --max-abs-logit/--min-cosine/--min-top1`` change."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
from conftest import run_cli

from ast_deploy import parity
from ast_deploy.frontend import FrontEndConfig
from ast_deploy.parity import DEFAULT_THRESHOLDS, ParityReport, Thresholds, threshold_overrides


def test_no_bounds_override_nothing():
    assert threshold_overrides() == {}
    assert threshold_overrides(None, None, None) == {}


def test_max_abs_logit_replaces_the_float32_bound_only():
    assert threshold_overrides(max_abs_logit=1e-3) == {"fp32": Thresholds(max_abs_logit=1e-3)}


@pytest.mark.parametrize(
    ("kwargs", "cosine", "top1"),
    [
        ({"min_cosine": 0.99}, 0.99, DEFAULT_THRESHOLDS["fp16"].min_top1),
        ({"min_top1": 0.9}, DEFAULT_THRESHOLDS["fp16"].min_cosine, 0.9),
        ({"min_cosine": 0.98, "min_top1": 0.95}, 0.98, 0.95),
        ({"min_cosine": 0.0, "min_top1": 0.0}, 0.0, 0.0),  # zero is a bound given, not a missing one
    ],
)
def test_cosine_and_top1_replace_fp16_and_bf16_keeping_the_other_default(kwargs, cosine, top1):
    expected = Thresholds(min_cosine=cosine, min_top1=top1)
    assert threshold_overrides(**kwargs) == {"fp16": expected, "bf16": expected}


def test_all_bounds_leave_int8_and_the_defaults_alone():
    defaults = copy.deepcopy(DEFAULT_THRESHOLDS)
    overrides = threshold_overrides(max_abs_logit=2e-4, min_cosine=0.9, min_top1=0.8)
    assert set(overrides) == {"fp32", "fp16", "bf16"}
    assert overrides["fp32"] == Thresholds(max_abs_logit=2e-4)
    assert overrides["bf16"] == overrides["fp16"] == Thresholds(min_cosine=0.9, min_top1=0.8)
    assert defaults == DEFAULT_THRESHOLDS  # not changed in place


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ([], {}),
        (["--max-abs-logit", "0.001"], {"fp32": Thresholds(max_abs_logit=1e-3)}),
        (["--min-top1", "0.5"], threshold_overrides(min_top1=0.5)),
        (["--min-cosine", "0.9", "--min-top1", "0.5"], threshold_overrides(min_cosine=0.9, min_top1=0.5)),
    ],
)
def test_cli_flags_reach_run_parity(monkeypatch, tmp_path, flags, expected):
    """``ast-deploy parity`` passes its bounds to ``run_parity`` as these overrides (no artifacts run)."""
    import ast_deploy.artifacts

    seen = {}
    artifacts = SimpleNamespace(
        spec=SimpleNamespace(num_samples=16000, sample_rate=16000), frontend_config=FrontEndConfig(target_length=100)
    )

    def run_parity(artifact_dir, names, inputs, n, device, thresholds, progress):
        seen["thresholds"] = thresholds
        return ParityReport(inputs="synthetic", num_inputs=n, reference="pytorch", results=[])

    monkeypatch.setattr(ast_deploy.artifacts, "ArtifactDir", lambda directory: artifacts)
    monkeypatch.setattr(parity, "run_parity", run_parity)
    result = run_cli("parity", tmp_path, *flags)
    assert result.code == 0, result.stderr
    assert seen["thresholds"] == expected
