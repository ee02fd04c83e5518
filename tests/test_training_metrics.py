"""ast_deploy_training.metrics against scikit-learn (the authors' implementation) on random data."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from ast_deploy_training.metrics import accuracy, average_precision, compute_metrics, d_prime, roc_auc

sklearn_metrics = pytest.importorskip("sklearn.metrics")


@pytest.mark.parametrize("seed", range(5))
def test_ap_and_auc_match_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, labels = 200, 7
    targets = (rng.random((n, labels)) < rng.uniform(0.05, 0.5, labels)).astype(np.float32)
    targets[0] = 1  # every class has a positive
    targets[1] = 0  # and a negative
    scores = rng.random((n, labels))
    if seed % 2:  # ties, as quantised or saturated scores produce
        scores = np.round(scores, 1)
    ours = compute_metrics(scores, targets, per_class=True)
    ap = sklearn_metrics.average_precision_score(targets, scores, average=None)
    auc = sklearn_metrics.roc_auc_score(targets, scores, average=None)
    np.testing.assert_allclose(ours["ap"], ap, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours["auc"], auc, rtol=0, atol=1e-12)
    assert ours["mAP"] == pytest.approx(ap.mean(), abs=1e-12)
    assert ours["mAUC"] == pytest.approx(auc.mean(), abs=1e-12)
    assert ours["d_prime"] == pytest.approx(math.sqrt(2) * norm.ppf(auc.mean()), abs=1e-12)


def test_single_class_functions_match_sklearn() -> None:
    rng = np.random.default_rng(9)
    y = rng.random(500) < 0.2
    s = rng.normal(size=500) + y
    assert average_precision(y, s) == pytest.approx(sklearn_metrics.average_precision_score(y, s), abs=1e-12)
    assert roc_auc(y, s) == pytest.approx(sklearn_metrics.roc_auc_score(y, s), abs=1e-12)


def test_accuracy_is_argmax_agreement_like_sklearn() -> None:
    rng = np.random.default_rng(3)
    scores = rng.random((100, 5))
    targets = np.eye(5)[rng.integers(0, 5, 100)]
    expected = sklearn_metrics.accuracy_score(targets.argmax(1), scores.argmax(1))
    assert accuracy(scores, targets) == pytest.approx(expected)


def test_classes_without_positives_are_left_out_not_counted_as_zero() -> None:
    targets = np.array([[1, 0], [0, 0], [1, 0]], dtype=np.float32)
    scores = np.array([[0.9, 0.1], [0.2, 0.5], [0.8, 0.3]])
    m = compute_metrics(scores, targets, per_class=True)
    assert math.isnan(m["ap"][1]) and math.isnan(m["auc"][1])
    assert m["mAP"] == 1.0 and m["mAUC"] == 1.0


def test_d_prime_of_chance_is_zero_and_perfect_is_infinite() -> None:
    assert d_prime(0.5) == 0.0
    assert d_prime(1.0) == math.inf
