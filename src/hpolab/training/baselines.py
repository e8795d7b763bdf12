"""Fit, evaluate and save scikit-learn baselines the way Keras models are.

A baseline fits in one call, so its "history" is a single epoch; its validation metrics
are computed by the same :func:`hpolab.training.metrics.compute_metrics` as a network's,
and ``val_loss`` is the same quantity Keras reports (cross-entropy for classification,
mean squared error on the standardized target for regression), so values compare across
model types of one study.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn import metrics as skm

from hpolab.errors import ConfigError, TrialFailed
from hpolab.training.metrics import compute_metrics
from hpolab.training.result import EpochHook, TrainResult, fit_targets

if TYPE_CHECKING:
    from hpolab.data.dataset import Dataset


def is_estimator(model: Any) -> bool:
    """A scikit-learn estimator (has ``fit`` and ``get_params``), not a Keras model."""
    return hasattr(model, "get_params") and hasattr(model, "fit")


def with_params(model: Any, params: dict[str, Any], field: str = "params") -> Any:
    """An unfitted copy of estimator ``model`` with ``params`` set (``clone`` + ``set_params``).

    Raises:
        ConfigError: the estimator has no such parameter (named under ``field``).
    """
    from sklearn.base import clone

    try:
        return clone(model).set_params(**params)
    except ValueError as exc:
        raise ConfigError(f"{field}: {exc}") from None


def flat(X: np.ndarray) -> np.ndarray:
    """Windows and spectrograms as one feature vector per sample."""
    X = np.asarray(X)
    return X.reshape(len(X), -1)


def estimator_outputs(model: Any, X: np.ndarray) -> np.ndarray:
    """Class probabilities ``(n, k)`` or standardized regression values ``(n, 1)``."""
    if hasattr(model, "predict_proba"):
        return np.asarray(model.predict_proba(flat(X)), dtype=np.float64)
    return np.asarray(model.predict(flat(X)), dtype=np.float64).reshape(-1, 1)


def loss_value(task: str, y: np.ndarray, outputs: np.ndarray, n_outputs: int) -> float:
    """Cross-entropy (classification) or MSE of standardized targets (regression)."""
    if task == "classification":
        proba = np.clip(outputs, 1e-7, 1.0)
        proba = proba / proba.sum(axis=1, keepdims=True)  # clipping breaks the sum a hair
        return float(skm.log_loss(y, proba, labels=list(range(n_outputs))))
    return float(np.mean((outputs.reshape(-1) - np.asarray(y, dtype=np.float64)) ** 2))


def fit_estimator(
    estimator: Any,
    data: Dataset,
    *,
    monitor: str,
    hooks: Sequence[EpochHook] = (),
    use_validation: bool = True,
) -> TrainResult:
    """Fit ``estimator`` on the training split (or train + validation) and score it.

    ``hooks`` are called once, as after a single epoch, so tracking sees the baseline's
    metrics like a network's.

    Raises:
        TrialFailed: scikit-learn refused the data or the parameters.
    """
    X_fit, y_fit = data.X_train, fit_targets(data, data.y_train)
    if not use_validation:
        X_fit = np.concatenate([data.X_train, data.X_val])
        y_fit = np.concatenate([y_fit, fit_targets(data, data.y_val)])
    start = time.perf_counter()
    try:
        estimator.fit(flat(X_fit), y_fit)
    except ValueError as exc:
        raise TrialFailed(f"{type(estimator).__name__} could not be fit: {exc}") from None
    seconds = time.perf_counter() - start
    logs = {
        "loss": loss_value(data.task, y_fit, estimator_outputs(estimator, X_fit), data.n_outputs)
    }
    if use_validation:
        outputs = estimator_outputs(estimator, data.X_val)
        y_val = fit_targets(data, data.y_val)
        logs["val_loss"] = loss_value(data.task, y_val, outputs, data.n_outputs)
        for name, value in compute_metrics(
            data.task, data.y_val, outputs, data.target_scaler
        ).items():
            logs[f"val_{name}"] = value
    for hook in hooks:
        hook(1, logs)
    key = monitor if use_validation else "loss"
    value = logs.get(key)
    if value is None or not math.isfinite(value):
        raise TrialFailed(f"metric {key!r} was not produced by {type(estimator).__name__}")
    return TrainResult(
        history={k: [float(v)] for k, v in logs.items()},
        epochs_run=1,
        best_epoch=1,
        best_value=float(value),
        monitor=key,
        seconds=seconds,
        best_metrics=dict(logs),
    )


# scikit-learn's own types that hpolab's baselines hold and skops does not trust by
# default: tree structures and calibration wrappers, rebuilt from data, never code.
BASELINE_TYPES = (
    "sklearn.tree._tree.Tree",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
)


def save_estimator(model: Any, path: Path) -> None:
    """Save a fitted estimator in skops' format (``.skops``), which loads without running
    code from the file (unlike a pickle)."""
    import skops.io

    skops.io.dump(model, path)


def load_estimator(path: Path, trust: bool = False) -> Any:
    """Load an estimator saved by :func:`save_estimator` without running code from it.

    A ``.skops`` file may hold only types skops trusts plus :data:`BASELINE_TYPES`;
    anything else, and any pickle (``.joblib``, which runs code when loaded), needs
    ``trust=True``: pass it only for a file you made or whose source you trust.

    Raises:
        FinalModelError: the file needs ``trust=True``.
    """
    from hpolab.final_models import FinalModelError

    if path.suffix == ".joblib":
        if not trust:
            raise FinalModelError(
                f"{path}: a pickle (joblib) runs code when loaded; pass trust=True if you "
                "made this file, or retrain it (hpolab retrain saves .skops)"
            )
        import joblib

        return joblib.load(path)
    import skops.io

    untrusted = [t for t in skops.io.get_untrusted_types(file=path) if t not in BASELINE_TYPES]
    if untrusted and not trust:
        raise FinalModelError(
            f"{path}: holds types hpolab does not trust by default ({', '.join(untrusted)}); "
            "pass trust=True if you made this file"
        )
    return skops.io.load(path, trusted=[*BASELINE_TYPES, *untrusted])
