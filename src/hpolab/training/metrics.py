"""Objective metrics computed from predictions: NumPy for classification (every epoch of
every trial), scikit-learn for regression."""

from __future__ import annotations

import math

import numpy as np
from sklearn import metrics as skm

from hpolab.data.dataset import Scaler


def compute_metrics(
    task: str,
    y_true: np.ndarray,
    raw_pred: np.ndarray,
    target_scaler: Scaler | None = None,
) -> dict[str, float]:
    """Metrics of ``raw_pred`` (model outputs) against ``y_true``, without a prefix.

    Classification: ``accuracy``, ``f1_macro``, ``auc`` (one-vs-rest for several classes).
    Regression: ``rmse``, ``mae``, ``r2`` in the target's original units.
    """
    if task == "classification":
        proba = np.asarray(raw_pred, dtype=np.float64)
        labels = proba.argmax(axis=1)
        y = np.rint(np.asarray(y_true, dtype=np.float64)).astype(np.int64)  # class indices
        result = {
            "accuracy": float(np.mean(y == labels)) if len(y) else math.nan,
            "f1_macro": _f1_macro(y, labels),
            "auc": _auc(y, proba),
        }
    else:
        pred = np.asarray(raw_pred, dtype=np.float64).reshape(-1)
        if target_scaler is not None:
            pred = target_scaler.inverse(pred[:, None]).reshape(-1)
        if not np.all(np.isfinite(pred)):
            return {"rmse": math.inf, "mae": math.inf, "r2": -math.inf}
        result = {
            "rmse": float(math.sqrt(skm.mean_squared_error(y_true, pred))),
            "mae": float(skm.mean_absolute_error(y_true, pred)),
            "r2": float(skm.r2_score(y_true, pred)),
        }
    return result


# Computed with NumPy: they run on the validation rows after every epoch of every trial,
# where scikit-learn's checks cost more than the metrics (~15 ms an epoch). Pinned
# against scikit-learn by tests/test_training_units.py.


def _f1_macro(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """scikit-learn's ``f1_score(average="macro", zero_division=0)``: over the labels
    that are true or predicted."""
    n = int(max(y_true.max(initial=0), y_pred.max(initial=0))) + 1
    hits = np.bincount(y_true[y_true == y_pred], minlength=n)
    support = np.bincount(y_true, minlength=n) + np.bincount(y_pred, minlength=n)
    present = support > 0
    if not present.any():
        return 0.0
    return float(np.mean(2.0 * hits[present] / support[present]))


def _auc(y_true: np.ndarray, proba: np.ndarray) -> float:
    """ROC AUC (one-vs-rest macro for several classes), as scikit-learn's; NaN when a
    class has no positive or no negative row, or a probability is not finite."""
    if len(np.unique(y_true)) < 2 or not np.all(np.isfinite(proba)):
        return float("nan")
    if proba.shape[1] == 2:
        return _binary_auc(y_true == 1, proba[:, 1])
    proba = _normalized(proba)
    return float(np.mean([_binary_auc(y_true == c, proba[:, c]) for c in range(proba.shape[1])]))


def _normalized(proba: np.ndarray) -> np.ndarray:
    # float32 softmax rows can miss 1.0 by a hair and scikit-learn checks the sum.
    return proba / proba.sum(axis=1, keepdims=True)


def _binary_auc(positive: np.ndarray, score: np.ndarray) -> float:
    """The Mann-Whitney form of the ROC AUC, ties counted half."""
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    _, inverse, counts = np.unique(score, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2.0)[inverse]  # average rank, from 1
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))
