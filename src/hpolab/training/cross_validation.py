"""Cross-validation of Keras builders and scikit-learn estimators (sklearn splitters).

``evaluate_with_cross_validation(model_or_builder, X, y, cv_method=..., scoring=...)``
accepts a scikit-learn estimator (cloned per fold), a model type of the registry
(``"mlp"``, ``"cnn1d"``, with ``params``) or any callable ``build(input_shape, n_outputs)``
returning a Keras model; it returns the mean, standard deviation and per-fold scores.
Features are standardized per fold on the fold's training part only.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn import metrics as skm
from sklearn.base import clone, is_classifier, is_regressor
from sklearn.model_selection import (
    GroupKFold,
    KFold,
    LeaveOneOut,
    StratifiedKFold,
    TimeSeriesSplit,
)

from hpolab.data.dataset import Dataset, Scaler
from hpolab.errors import ConfigError

CV_METHODS = ("stratified_kfold", "kfold", "leave_one_out", "time_series", "group_kfold")
SCORERS: dict[str, tuple[Callable[..., float], bool]] = {
    # name -> (function(y_true, y_pred), needs class labels)
    "accuracy": (skm.accuracy_score, True),
    "f1_macro": (lambda t, p: skm.f1_score(t, p, average="macro", zero_division=0), True),
    "r2": (skm.r2_score, False),
    "neg_rmse": (lambda t, p: -float(np.sqrt(skm.mean_squared_error(t, p))), False),
    "neg_mae": (lambda t, p: -float(skm.mean_absolute_error(t, p)), False),
}


@dataclass
class CVResult:
    """Scores of one cross-validation (higher is better for every scorer)."""

    scoring: str
    cv_method: str
    scores: list[float]
    fold_seconds: list[float] = field(default_factory=list)

    @property
    def mean(self) -> float:
        return float(np.mean(self.scores))

    @property
    def std(self) -> float:
        return float(np.std(self.scores))

    def as_dict(self) -> dict[str, Any]:
        return {
            "scoring": self.scoring,
            "cv_method": self.cv_method,
            "mean": self.mean,
            "std": self.std,
            "scores": self.scores,
            "fold_seconds": self.fold_seconds,
        }


def get_cv_splitter(
    cv_method: str, n_splits: int = 5, shuffle: bool = True, random_state: int | None = 0
) -> Any:
    """The scikit-learn splitter called ``cv_method``."""
    if cv_method not in CV_METHODS:
        raise ConfigError(
            f"data.cv.method: unknown method {cv_method!r}; use {', '.join(CV_METHODS)}"
        )
    if cv_method == "leave_one_out":
        return LeaveOneOut()
    if n_splits < 2:
        raise ConfigError("data.cv.n_splits: at least 2 folds are needed")
    if cv_method == "time_series":
        return TimeSeriesSplit(n_splits=n_splits)  # ordered: never shuffled
    if cv_method == "group_kfold":
        return GroupKFold(n_splits=n_splits)
    seed = random_state if shuffle else None
    splitter = StratifiedKFold if cv_method == "stratified_kfold" else KFold
    return splitter(n_splits=n_splits, shuffle=shuffle, random_state=seed)


def cv_splits(
    X: np.ndarray,
    y: np.ndarray,
    cv_method: str = "stratified_kfold",
    n_splits: int = 5,
    groups: np.ndarray | None = None,
    random_state: int | None = 0,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train indices, test indices) per fold."""
    if cv_method == "group_kfold" and groups is None:
        raise ConfigError("data.cv: group_kfold needs groups (one group id per sample)")
    splitter = get_cv_splitter(cv_method, n_splits, random_state=random_state)
    try:
        # Only group k-fold reads groups; the others warn when given them.
        return list(splitter.split(X, y, groups if cv_method == "group_kfold" else None))
    except ValueError as exc:
        raise ConfigError(f"data.cv: cannot split {len(X)} samples: {exc}") from None


def evaluate_with_cross_validation(
    model_or_builder: Any,
    X: np.ndarray,
    y: np.ndarray,
    cv_method: str | None = None,
    scoring: str | None = None,
    n_splits: int = 5,
    groups: np.ndarray | None = None,
    params: dict[str, Any] | None = None,
    task: str | None = None,
    random_state: int | None = 0,
) -> CVResult:
    """Cross-validated scores of a scikit-learn estimator or a Keras builder.

    Args:
        model_or_builder: an unfitted scikit-learn estimator, a registry model type
            (``"mlp"``), or ``build(input_shape, n_outputs) -> keras.Model``.
        cv_method: default stratified k-fold for classification, k-fold for regression.
        scoring: ``accuracy`` (default for classification), ``f1_macro``, ``r2`` (default
            for regression), ``neg_rmse`` or ``neg_mae``.
        params: Keras builders only: model and training parameters (``epochs``,
            ``batch_size``, ``learning_rate``, ...).
        task: ``classification`` or ``regression``; inferred from the estimator or ``y``.
    """
    X = np.asarray(X, dtype=np.float32)
    y = np.asarray(y)
    task = task or _task_of(model_or_builder, y)
    scoring = scoring or ("accuracy" if task == "classification" else "r2")
    cv_method = cv_method or ("stratified_kfold" if task == "classification" else "kfold")
    if scoring not in SCORERS:
        raise ConfigError(f"scoring: unknown scorer {scoring!r}; use {', '.join(SCORERS)}")
    scorer, needs_labels = SCORERS[scoring]
    if needs_labels != (task == "classification"):
        raise ConfigError(f"scoring: {scoring!r} does not apply to {task}")
    folds = cv_splits(X, y, cv_method, n_splits, groups, random_state)
    scores, seconds = [], []
    for train, test in folds:
        start = time.perf_counter()
        scaler = Scaler.fit(X[train])
        predicted = _fit_predict(
            model_or_builder,
            scaler.transform(X[train]),
            y[train],
            scaler.transform(X[test]),
            task,
            params or {},
            random_state,
        )
        scores.append(float(scorer(y[test], predicted)))
        seconds.append(round(time.perf_counter() - start, 3))
    return CVResult(scoring, cv_method, scores, seconds)


def _task_of(model: Any, y: np.ndarray) -> str:
    if hasattr(model, "get_params"):  # a scikit-learn estimator knows its task
        if is_classifier(model):
            return "classification"
        if is_regressor(model):
            return "regression"
    from hpolab.data.dataset import infer_task

    return infer_task(y)


def _fit_predict(
    model: Any,
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_test: np.ndarray,
    task: str,
    params: dict[str, Any],
    seed: int | None,
) -> np.ndarray:
    if isinstance(model, str):
        from hpolab.models import build_model, is_keras

        if not is_keras(model):  # a registry baseline: build the estimator it names
            n_outputs = len(np.unique(y_train)) if task == "classification" else 1
            model = build_model(model, params, tuple(X_train.shape[1:]), task, n_outputs)
    if hasattr(model, "fit") and hasattr(model, "get_params"):
        fitted = clone(model).fit(X_train.reshape(len(X_train), -1), y_train)
        return np.asarray(fitted.predict(X_test.reshape(len(X_test), -1)))
    return _keras_fit_predict(model, X_train, y_train, X_test, task, params, seed)


def _keras_fit_predict(
    builder: Any,
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_test: np.ndarray,
    task: str,
    params: dict[str, Any],
    seed: int | None,
) -> np.ndarray:
    from hpolab.models import build_model
    from hpolab.training.fit import clear_keras, fit_arrays, make_optimizer, seed_everything

    clear_keras()
    seed_everything(seed)
    if task == "classification":
        classes, codes = np.unique(y_train, return_inverse=True)
        n_outputs, target = len(classes), codes
    else:
        mean, scale = float(np.mean(y_train)), float(np.std(y_train) or 1.0)
        n_outputs, target = 1, (np.asarray(y_train, dtype=np.float64) - mean) / scale
    shape = tuple(X_train.shape[1:])
    if isinstance(builder, str):
        model = build_model(builder, params, shape, task, n_outputs)
    else:
        model = builder(shape, n_outputs)
    loss = "sparse_categorical_crossentropy" if task == "classification" else "mse"
    model.compile(optimizer=make_optimizer(params), loss=loss)
    fit_arrays(
        model,
        X_train,
        target,
        epochs=int(params.get("epochs", 20)),
        batch_size=int(params.get("batch_size", 32)),
    )
    raw = np.asarray(model.predict(X_test, batch_size=1024, verbose=0))
    if task == "classification":
        return classes[raw.argmax(axis=1)]
    return raw.reshape(-1) * scale + mean


def fold_datasets(
    data: Dataset, cv_method: str, n_splits: int, seed: int | None = 0
) -> list[Dataset]:
    """Datasets whose train / validation parts are the folds of ``data``'s train + val.

    The test split is left as it is, so a study that cross-validates still reports its
    final model on data no fold has seen. Inputs keep the scaling fitted on the training
    split (refitting a scaler per fold would change the inputs between folds for nothing
    a network notices).
    """
    X = np.concatenate([data.X_train, data.X_val])
    y = np.concatenate([data.y_train, data.y_val])
    folds = []
    for train, val in cv_splits(X, y, cv_method, n_splits, random_state=seed):
        folds.append(
            dataclasses.replace(
                data, X_train=X[train], y_train=y[train], X_val=X[val], y_val=y[val]
            )
        )
    return folds
