"""The authors' evaluation metrics in numpy/scipy: mAP, mean AUC, d-prime, accuracy.

Definitions follow scikit-learn (which the authors call): average precision is the step-wise
area ``sum_n (R_n - R_{n-1}) P_n`` over distinct score thresholds; ROC AUC is the Mann-Whitney
statistic with ties counted half. Tests compare both with scikit-learn on random data.

``mAP`` averages over classes with at least one positive, ``mAUC`` over classes with positives
and negatives (the others are undefined; scikit-learn warns and returns nonsense for them).
d-prime is ``sqrt(2) * Phi^-1(mean AUC)``, as the authors compute it.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtri
from scipy.stats import rankdata


def average_precision(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """AP of one class: binary ``y_true`` (N,), scores (N,). NaN without positives."""
    y_true = np.asarray(y_true) > 0.5
    n_pos = int(y_true.sum())
    if n_pos == 0:
        return math.nan
    order = np.argsort(-np.asarray(y_score, dtype=np.float64), kind="mergesort")
    scores, hits = np.asarray(y_score, dtype=np.float64)[order], y_true[order]
    # The last index of each run of equal scores is one threshold.
    last = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]
    tp = np.cumsum(hits)[last]
    precision = tp / (last + 1)
    recall_step = np.diff(np.r_[0, tp]) / n_pos
    return float(np.sum(recall_step * precision))


def roc_auc(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """ROC AUC of one class from ranks (ties get the average rank). NaN without both classes."""
    y_true = np.asarray(y_true) > 0.5
    n_pos = int(y_true.sum())
    n_neg = len(y_true) - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    ranks = rankdata(np.asarray(y_score, dtype=np.float64))
    return float((ranks[y_true].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def d_prime(auc: float) -> float:
    """Sensitivity index of a mean AUC: ``sqrt(2) * Phi^-1(auc)``."""
    return float(math.sqrt(2.0) * ndtri(auc)) if 0.0 < auc < 1.0 else math.copysign(math.inf, auc - 0.5)


def accuracy(scores: np.ndarray, targets: np.ndarray) -> float:
    """Top-1 accuracy: argmax of the scores against argmax of the (possibly soft) targets."""
    return float(np.mean(np.argmax(scores, axis=1) == np.argmax(targets, axis=1)))


def _nanmean(values: np.ndarray) -> float:
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else math.nan


def compute_metrics(scores: np.ndarray, targets: np.ndarray, per_class: bool = False) -> dict:
    """All metrics for ``scores`` (N, L) and binary or soft ``targets`` (N, L).

    Returns ``mAP``, ``mAUC``, ``d_prime``, ``accuracy`` and, with ``per_class``, lists
    ``ap``, ``auc``, ``support`` (positives per class) and ``class_accuracy`` (recall of argmax).
    """
    scores = np.asarray(scores, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64)
    if scores.shape != targets.shape or scores.ndim != 2:
        raise ValueError(f"scores {scores.shape} and targets {targets.shape} must be the same (N, L) shape")
    binary = targets > 0.5
    ap = np.array([average_precision(binary[:, k], scores[:, k]) for k in range(scores.shape[1])])
    auc = np.array([roc_auc(binary[:, k], scores[:, k]) for k in range(scores.shape[1])])
    mean_auc = _nanmean(auc)
    out = {
        "mAP": _nanmean(ap),
        "mAUC": mean_auc,
        "d_prime": d_prime(mean_auc) if not math.isnan(mean_auc) else math.nan,
        "accuracy": accuracy(scores, targets),
        "num_clips": int(scores.shape[0]),
    }
    if per_class:
        predicted, actual = np.argmax(scores, axis=1), np.argmax(targets, axis=1)
        support = binary.sum(axis=0)
        class_acc = [
            float(np.mean(predicted[actual == k] == k)) if np.any(actual == k) else math.nan
            for k in range(scores.shape[1])
        ]
        out.update(ap=ap.tolist(), auc=auc.tolist(), support=support.astype(int).tolist(), class_accuracy=class_acc)
    return out
