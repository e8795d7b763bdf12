"""Objective metrics computed from predictions (scikit-learn underneath)."""

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
        result = {
            "accuracy": float(skm.accuracy_score(y_true, labels)),
            "f1_macro": float(skm.f1_score(y_true, labels, average="macro", zero_division=0)),
            "auc": _auc(y_true, proba),
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


def _auc(y_true: np.ndarray, proba: np.ndarray) -> float:
    if len(np.unique(y_true)) < 2 or not np.all(np.isfinite(proba)):
        return float("nan")
    if proba.shape[1] == 2:
        return float(skm.roc_auc_score(y_true, proba[:, 1]))
    # Renormalise: float32 softmax rows can miss 1.0 by a hair and sklearn checks the sum.
    proba = proba / proba.sum(axis=1, keepdims=True)
    return float(
        skm.roc_auc_score(y_true, proba, multi_class="ovr", labels=list(range(proba.shape[1])))
    )
