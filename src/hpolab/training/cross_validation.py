"""Cross-validation of Keras builders and scikit-learn estimators (sklearn splitters).

``evaluate_with_cross_validation(model_or_builder, X, y, cv_method=..., scoring=...)``
accepts a scikit-learn estimator (cloned per fold), a model type of the registry
(``"mlp"``, ``"cnn1d"``, with ``params``) or any callable ``build(input_shape, n_outputs)``
returning a Keras model; it returns the mean, standard deviation and per-fold scores.
Features are standardized per fold on the fold's training part only. ``scoring`` is one
of :data:`SCORERS` or any scikit-learn scorer name; a fitted Keras model is scored
through a small scikit-learn view of it, so every scorer works on both kinds of model.
``KFoldValidator(n_splits, cv_method).get_splits(X, y)`` gives the folds themselves.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from sklearn import metrics as skm
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    RegressorMixin,
    clone,
    is_classifier,
    is_regressor,
)
from sklearn.model_selection import (
    GroupKFold,
    KFold,
    LeaveOneOut,
    StratifiedKFold,
    TimeSeriesSplit,
)

from hpolab.data.dataset import Dataset, Scaler
from hpolab.errors import ConfigError
from hpolab.training.result import MappingResult

CV_METHODS = ("stratified_kfold", "kfold", "leave_one_out", "time_series", "group_kfold")
SCORERS: dict[str, tuple[Callable[..., float], bool]] = {
    # name -> (function(y_true, y_pred), needs class labels)
    "accuracy": (skm.accuracy_score, True),
    "f1_macro": (lambda t, p: skm.f1_score(t, p, average="macro", zero_division=0), True),
    "r2": (skm.r2_score, False),
    "neg_rmse": (lambda t, p: -float(np.sqrt(skm.mean_squared_error(t, p))), False),
    "neg_mae": (lambda t, p: -float(skm.mean_absolute_error(t, p)), False),
}
FoldScorer = Callable[[Any, np.ndarray, np.ndarray], float]
"""``score(fitted_estimator, X_test, y_test) -> float``, higher is better."""


@dataclass
class CVResult(MappingResult):
    """Scores of one cross-validation (higher is better for every scorer).

    Also read as a mapping: ``result["mean"]``, ``result["std"]``, ``result["scores"]``.
    """

    mapping_keys: ClassVar[tuple[str, ...]] = (
        "scoring",
        "cv_method",
        "mean",
        "std",
        "scores",
        "fold_seconds",
    )

    scoring: str
    cv_method: str
    scores: list[float]
    fold_seconds: list[float] = field(default_factory=list)

    @property
    def mean(self) -> float:
        """Mean score over the folds."""
        return float(np.mean(self.scores))

    @property
    def std(self) -> float:
        """Standard deviation of the fold scores."""
        return float(np.std(self.scores))

    def as_dict(self) -> dict[str, Any]:
        """Every key and value as a plain dict."""
        return dict(self.items())


class KFoldValidator:
    """The folds of a data set: ``KFoldValidator(5).get_splits(X, y)``.

    Args:
        n_splits: number of folds (ignored by ``leave_one_out``).
        cv_method: ``stratified_kfold`` (needs ``y``), ``kfold``, ``leave_one_out``,
            ``time_series`` (never shuffled) or ``group_kfold`` (needs ``groups``).
        shuffle: shuffle before splitting (the k-fold methods).
        random_state: seed of the shuffle, so the folds are the same on every call.
    """

    def __init__(
        self,
        n_splits: int = 5,
        cv_method: str = "stratified_kfold",
        shuffle: bool = True,
        random_state: int | None = 0,
    ) -> None:
        if cv_method not in CV_METHODS:
            raise ConfigError(
                f"cv_method: unknown method {cv_method!r}; use {', '.join(CV_METHODS)}"
            )
        if n_splits < 2 and cv_method != "leave_one_out":
            raise ConfigError(f"n_splits: at least 2 folds are needed, got {n_splits}")
        self.n_splits = n_splits
        self.cv_method = cv_method
        self.shuffle = shuffle
        self.random_state = random_state

    def get_splits(
        self, X: Any, y: Any = None, groups: Any = None
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """(train indices, test indices) per fold of ``X``."""
        return cv_splits(
            np.asarray(X),
            None if y is None else np.asarray(y),
            self.cv_method,
            self.n_splits,
            None if groups is None else np.asarray(groups),
            self.random_state,
            shuffle=self.shuffle,
        )

    def __repr__(self) -> str:
        return (
            f"KFoldValidator(n_splits={self.n_splits}, cv_method={self.cv_method!r}, "
            f"shuffle={self.shuffle}, random_state={self.random_state})"
        )


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
    y: np.ndarray | None,
    cv_method: str = "stratified_kfold",
    n_splits: int = 5,
    groups: np.ndarray | None = None,
    random_state: int | None = 0,
    shuffle: bool = True,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train indices, test indices) per fold."""
    if cv_method == "group_kfold" and groups is None:
        raise ConfigError("data.cv: group_kfold needs groups (one group id per sample)")
    if cv_method == "stratified_kfold" and y is None:
        raise ConfigError(
            "y: stratified_kfold keeps class shares and needs the labels; "
            "pass y or use cv_method='kfold'"
        )
    splitter = get_cv_splitter(cv_method, n_splits, shuffle, random_state)
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
            (``"mlp"``), or ``build(input_shape, n_outputs) -> keras.Model`` (ending in a
            softmax for classification).
        cv_method: default stratified k-fold for classification, k-fold for regression.
        scoring: ``accuracy`` (default for classification), ``f1_macro``, ``r2`` (default
            for regression), ``neg_rmse``, ``neg_mae`` or any name of
            ``sklearn.metrics.get_scorer_names()`` (``f1_weighted``, ``roc_auc_ovr``,
            ``neg_log_loss``, ...). Every score is higher-is-better.
        params: Keras builders only: model and training parameters (``epochs``,
            ``batch_size``, ``learning_rate``, ...).
        task: ``classification`` or ``regression``; inferred from the estimator or ``y``.

    Raises:
        ConfigError: unknown scorer or CV method, a scorer that does not fit the task, or
            a parameter the model does not take.
    """
    X = np.asarray(X, dtype=np.float32)
    y = np.asarray(y)
    task = task or _task_of(model_or_builder, y)
    scoring = scoring or ("accuracy" if task == "classification" else "r2")
    cv_method = cv_method or ("stratified_kfold" if task == "classification" else "kfold")
    score = resolve_scorer(scoring, task)
    if params and not hasattr(model_or_builder, "get_params"):  # an estimator has its own
        from hpolab.models.registry import check_params

        check_params(model_or_builder if isinstance(model_or_builder, str) else None, params)
        if "patience" in params:  # a fold has no validation split to stop on
            raise ConfigError(
                "params.patience: cross-validation trains each fold for 'epochs' epochs "
                "(no early stopping); remove patience"
            )
    folds = cv_splits(X, y, cv_method, n_splits, groups, random_state)
    scores, seconds = [], []
    for train, test in folds:
        start = time.perf_counter()
        scaler = Scaler.fit(X[train])
        fitted = _fit(
            model_or_builder,
            scaler.transform(X[train]),
            y[train],
            task,
            params or {},
            random_state,
        )
        scores.append(score(fitted, _inputs_of(fitted, scaler.transform(X[test])), y[test]))
        seconds.append(round(time.perf_counter() - start, 3))
    return CVResult(scoring, cv_method, scores, seconds)


def resolve_scorer(scoring: str, task: str) -> FoldScorer:
    """``score(fitted, X_test, y_test)`` for a :data:`SCORERS` key or a scikit-learn scorer.

    Raises:
        ConfigError: ``scoring`` is unknown, or scores the other task.
    """
    if scoring in SCORERS:
        metric, needs_labels = SCORERS[scoring]
        if needs_labels != (task == "classification"):
            raise ConfigError(f"scoring: {scoring!r} does not apply to {task}")
        return lambda fitted, X, y: float(metric(y, fitted.predict(X)))
    names = skm.get_scorer_names()
    if scoring not in names:
        raise ConfigError(_unknown_scorer_message(scoring, [*SCORERS, *names]))
    scorer = skm.get_scorer(scoring)
    if _scorer_task(scorer) != task:
        example = "accuracy" if task == "classification" else "r2"
        raise ConfigError(f"scoring: {scoring!r} does not apply to {task}; use e.g. {example!r}")

    def score(fitted: Any, X: np.ndarray, y: np.ndarray) -> float:
        try:
            return float(scorer(fitted, X, y))
        except (ValueError, AttributeError) as exc:  # e.g. binary-only scorer, no predict_proba
            message = f"scoring: {scoring!r} cannot score this model and data: {exc}"
            raise ConfigError(message) from None

    return score


def _unknown_scorer_message(scoring: str, names: list[str]) -> str:
    close = difflib.get_close_matches(scoring, names, n=4, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    return (
        f"scoring: unknown scorer {scoring!r}; {hint}use one of {', '.join(SCORERS)} "
        "or a name from sklearn.metrics.get_scorer_names()"
    )


def _scorer_task(scorer: Any) -> str:
    # scikit-learn has no public "task" of a scorer; the module of the metric it wraps
    # (sklearn.metrics._regression) is the one place that records it.
    metric = getattr(scorer, "_score_func", None)
    module = getattr(metric, "__module__", "") or ""
    return "regression" if module.startswith("sklearn.metrics._regression") else "classification"


def _task_of(model: Any, y: np.ndarray) -> str:
    if hasattr(model, "get_params"):  # a scikit-learn estimator knows its task
        if is_classifier(model):
            return "classification"
        if is_regressor(model):
            return "regression"
    from hpolab.data.dataset import infer_task

    return infer_task(y)


def _inputs_of(fitted: Any, X: np.ndarray) -> np.ndarray:
    """``X`` as ``fitted`` reads it: Keras keeps the shape, estimators want 2-D."""
    return X if isinstance(fitted, _FittedKeras) else X.reshape(len(X), -1)


def _fit(
    model: Any,
    X_train: np.ndarray,
    y_train: np.ndarray,
    task: str,
    params: dict[str, Any],
    seed: int | None,
) -> Any:
    """The fold's fitted estimator (a clone) or scikit-learn view of the fitted Keras model."""
    if isinstance(model, str):
        from hpolab.models import build_model, is_keras

        if not is_keras(model):  # a registry baseline: build the estimator it names
            n_outputs = len(np.unique(y_train)) if task == "classification" else 1
            model = build_model(model, params, tuple(X_train.shape[1:]), task, n_outputs)
    if hasattr(model, "fit") and hasattr(model, "get_params"):
        return clone(model).fit(X_train.reshape(len(X_train), -1), y_train)
    return _keras_fit(model, X_train, y_train, task, params, seed)


def _keras_fit(
    builder: Any,
    X_train: np.ndarray,
    y_train: np.ndarray,
    task: str,
    params: dict[str, Any],
    seed: int | None,
) -> _FittedKeras:
    from hpolab.config import TrainingSection
    from hpolab.models import build_model
    from hpolab.training.fit import (
        clear_keras,
        compile_model,
        fit_arrays,
        seed_everything,
        training_params,
    )

    clear_keras()
    seed_everything(seed)
    view: _FittedKeras
    if task == "classification":
        view = _KerasClassifierView()
        view.classes_, target = np.unique(y_train, return_inverse=True)
        n_outputs = len(view.classes_)
    else:
        view = _KerasRegressorView()
        view.target_mean_ = float(np.mean(y_train))
        view.target_scale_ = float(np.std(y_train) or 1.0)
        n_outputs = 1
        target = (np.asarray(y_train, dtype=np.float64) - view.target_mean_) / view.target_scale_
    shape = tuple(X_train.shape[1:])
    if isinstance(builder, str):
        model = build_model(builder, params, shape, task, n_outputs)
    else:
        model = builder(shape, n_outputs)
    # The same compile as a study trial: loss, optimizer, schedule of ``params``.
    hp = training_params(params, TrainingSection())
    steps = math.ceil(len(X_train) / int(hp["batch_size"]))
    labels = target if task == "classification" else None
    compile_model(model, task, hp, labels, steps, classes=list(getattr(view, "classes_", [])))
    fit_arrays(model, X_train, target, epochs=int(hp["epochs"]), batch_size=int(hp["batch_size"]))
    view.model_ = model
    return view


class _FittedKeras(BaseEstimator):
    """A fitted Keras model seen as a fitted scikit-learn estimator, for scorers.

    The outputs of the last input array are kept: a scorer asking for ``predict`` and
    ``predict_proba`` of the same test fold costs one forward pass.
    """

    model_: Any

    def __init__(self) -> None:  # no hyperparameters: it only wraps a fitted model
        self._cached: tuple[np.ndarray, np.ndarray] | None = None

    def fit(self, X: Any, y: Any) -> _FittedKeras:
        """Not supported: the view is made of a model already fitted on the fold.

        It exists because scikit-learn only treats objects with ``fit`` as estimators
        (``check_is_fitted`` refuses the others).
        """
        raise TypeError("a fitted Keras view is not refitted; cross-validate the builder")

    def _outputs(self, X: np.ndarray) -> np.ndarray:
        if self._cached is None or self._cached[0] is not X:
            raw = self.model_.predict(X, batch_size=1024, verbose=0)
            self._cached = (X, np.asarray(raw, dtype=np.float64))
        return self._cached[1]


class _KerasClassifierView(ClassifierMixin, _FittedKeras):
    """Classes and softmax probabilities of a fitted Keras classifier."""

    classes_: np.ndarray

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        proba = self._outputs(X)
        # float32 softmax rows can miss 1 by more than log_loss / roc_auc tolerate.
        return proba / proba.sum(axis=1, keepdims=True)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.classes_[self._outputs(X).argmax(axis=1)]


class _KerasRegressorView(RegressorMixin, _FittedKeras):
    """Predictions of a fitted Keras regressor, in the units of ``y``."""

    target_mean_: float
    target_scale_: float

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self._outputs(X).reshape(-1) * self.target_scale_ + self.target_mean_


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
