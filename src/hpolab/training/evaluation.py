"""Predictions and metrics of a trained model (Keras or scikit-learn), and what reports draw."""

from __future__ import annotations

from typing import Any

import numpy as np

from hpolab.data.dataset import Dataset
from hpolab.training.baselines import estimator_outputs, is_estimator
from hpolab.training.metrics import compute_metrics


def predict_model(model: Any, X: np.ndarray) -> np.ndarray:
    """Raw model outputs (class probabilities or scaled regression values)."""
    if is_estimator(model):
        return estimator_outputs(model, X)
    return np.asarray(model.predict(X, batch_size=1024, verbose=0))


def rounded(metrics: dict[str, float], digits: int = 6) -> dict[str, float]:
    """Metrics as plain floats rounded for JSON and display."""
    return {k: round(float(v), digits) for k, v in metrics.items()}


def evaluate_model(model: Any, data: Dataset, X: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Metrics of ``model`` on ``(X, y)``, named without a prefix."""
    return compute_metrics(data.task, y, predict_model(model, X), data.target_scaler)


def test_split_outputs(model: Any, data: Dataset, max_points: int = 500) -> dict[str, Any]:
    """What reports draw from the test split: a confusion matrix, or true vs predicted."""
    raw = predict_model(model, data.X_test)
    if data.task == "classification":
        from sklearn.metrics import confusion_matrix

        labels = list(range(data.n_outputs))
        matrix = confusion_matrix(data.y_test, raw.argmax(axis=1), labels=labels)
        return {"confusion_matrix": matrix.tolist(), "classes": data.classes}
    pred = raw.reshape(-1, 1)
    if data.target_scaler is not None:
        pred = data.target_scaler.inverse(pred)
    keep = slice(0, max_points)
    return {
        "y_true": [round(float(v), 6) for v in data.y_test[keep]],
        "y_pred": [round(float(v), 6) for v in pred.reshape(-1)[keep]],
    }


# Test metrics where a smaller value is better; the others are scores.
_LOWER_IS_BETTER = ("rmse", "mae")


def baseline_comparison(
    data: Dataset, test_metrics: dict[str, float], study_metric: str
) -> dict[str, Any]:
    """The final model's test score beside a trivial model's, and whether it beats it.

    The trivial model predicts the class frequencies of the training rows (so always the
    majority class) or their mean target, and never looks at the features. The two are
    compared on the test counterpart of the study's metric (``val_auc`` -> ``auc``); for a
    loss or another metric without one, on accuracy (classification) or RMSE (regression).
    """
    y_fit = np.concatenate([data.y_train, data.y_val])  # the final model's training rows
    n_test = len(data.y_test)
    if data.task == "classification":
        prior = np.bincount(y_fit.astype(np.int64), minlength=data.n_outputs) / len(y_fit)
        trivial = compute_metrics(data.task, data.y_test, np.tile(prior, (n_test, 1)))
        kind, fallback = "majority class", "accuracy"
    else:
        trivial = compute_metrics(data.task, data.y_test, np.full(n_test, float(y_fit.mean())))
        kind, fallback = "mean", "rmse"
    name = study_metric.removeprefix("val_")
    metric = name if name in trivial and name in test_metrics else fallback
    model, base = float(test_metrics[metric]), float(trivial[metric])
    if np.isnan(base):  # an AUC with one class in the test rows: compare accuracy
        metric = fallback
        model, base = float(test_metrics[metric]), float(trivial[metric])
    beats = model < base if metric in _LOWER_IS_BETTER else model > base
    return {
        "baseline": kind,
        "metric": metric,
        "model_value": round(model, 6),
        "baseline_value": round(base, 6),
        "beats_baseline": bool(beats),
    }
