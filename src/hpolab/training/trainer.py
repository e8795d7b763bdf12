"""``ModelTrainer`` and ``MultiModelTrainer``: train known configurations from Python.

They run the same code as study trials (:func:`hpolab.training.fit.fit_model`: losses,
schedules, callbacks, early stopping) on arrays, with labels encoded and features scaled
on the training split, and log to MLflow when given an ``experiment_name``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras
import numpy as np
from pydantic import ValidationError

from hpolab.config import (
    METRICS,
    TRAINING_KEYS,
    TrainingSection,
    format_validation_error,
    metric_direction,
)
from hpolab.data.dataset import Dataset, Scaler, encode_labels, infer_task
from hpolab.errors import ConfigError, DataError
from hpolab.layout import Layout, atomic_save
from hpolab.models import build_model
from hpolab.training.evaluation import evaluate_model, predict_model
from hpolab.training.fit import clear_keras, fit_model, training_params


class ModelTrainer:
    """Train one model (a Keras model or a registry model type) on arrays.

    Args:
        model: an uncompiled ``keras.Model``, or a model type (``"mlp"``, ``"cnn1d"``) built
            from ``config`` when the data shape is known.
        config: training keys (``epochs``, ``batch_size``, ``patience``, ``loss``,
            ``optimizer``, ``learning_rate``, ``lr_schedule``, ``class_weight`` such as
            ``"balanced"``, ``callbacks``...) and, for a model type, its parameters.
        experiment_name: log the run (parameters, per-epoch metrics, test metrics, model)
            to this MLflow experiment of the root's ``mlruns/``.
        metric: the validation metric early stopping watches (default ``val_loss``).
    """

    def __init__(
        self,
        model: keras.Model | str,
        config: Mapping[str, Any] | None = None,
        experiment_name: str | None = None,
        metric: str = "val_loss",
        task: str | None = None,
        root: str | os.PathLike[str] | None = None,
    ) -> None:
        if metric not in METRICS:
            raise ConfigError(f"metric: unknown metric {metric!r}; use {', '.join(METRICS)}")
        self.model = model
        self.config = dict(config or {})
        training = {k: v for k, v in self.config.items() if k in TrainingSection.model_fields}
        try:
            self.training = TrainingSection.model_validate(training)
        except ValidationError as exc:
            raise ConfigError(format_validation_error(exc)) from None
        self.experiment_name = experiment_name
        self.metric = metric
        self.task = task
        self.layout = Layout.from_root(root)
        self.history_: dict[str, list[float]] = {}

    def train(self, X_train: Any, y_train: Any, X_val: Any, y_val: Any) -> dict[str, list[float]]:
        """Fit with early stopping on ``metric``; return the per-epoch history."""
        self.data_ = self._dataset(X_train, y_train, X_val, y_val)
        if isinstance(self.model, str):
            n_outputs = self.data_.n_outputs
            self.model_ = build_model(
                self.model, self.config, self.data_.input_shape, self.data_.task, n_outputs
            )
        else:
            self.model_ = self.model
        hp = training_params(self.config, self.training)
        direction = metric_direction(self.metric)
        run = self._start_run(hp)
        hooks = [run.log_epoch] if run is not None else []
        try:
            result = fit_model(
                self.model_, self.data_, hp, monitor=self.metric, direction=direction, hooks=hooks
            )
        except BaseException as exc:
            if run is not None:
                run.end("failed", error=f"{type(exc).__name__}: {exc}")
            raise
        self.result_ = result
        self.history_ = result.history
        self.run_ = run
        if run is not None:
            run.end("complete", result.best_value, attrs={"best_epoch": result.best_epoch})
        return self.history_

    def evaluate(self, X: Any, y: Any) -> dict[str, float]:
        """Metrics on ``(X, y)``: accuracy / F1 / AUC, or RMSE / MAE / R²."""
        data = self._fitted()
        codes = self._targets(y)
        metrics = evaluate_model(self.model_, data, data.feature_scaler.transform(_array(X)), codes)
        if getattr(self, "run_", None) is not None:
            self.run_.log_epoch(0, {f"test_{k}": v for k, v in metrics.items()})
        return metrics

    def predict(self, X: Any) -> np.ndarray:
        """Labels (classification) or values in the target's units (regression)."""
        data = self._fitted()
        raw = predict_model(self.model_, data.feature_scaler.transform(_array(X)))
        if data.task == "classification":
            return np.asarray(data.classes, dtype=object)[raw.argmax(axis=1)]
        assert data.target_scaler is not None
        return data.target_scaler.inverse(raw.reshape(-1, 1)).reshape(-1)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Save the trained Keras model atomically (``.keras``)."""
        self._fitted()
        target = Path(path)
        if target.suffix != ".keras":
            raise ConfigError(f"save: {target.name!r} must end in .keras")
        atomic_save(target, lambda tmp: self.model_.save(tmp), suffix=".keras")
        return target

    # ------------------------------------------------------------------ helpers
    def _fitted(self) -> Dataset:
        if not hasattr(self, "model_"):
            raise ConfigError("this trainer is not trained yet; call train() first")
        return self.data_

    def _targets(self, y: Any) -> np.ndarray:
        data = self.data_
        y = np.asarray(y)
        if data.task != "classification":
            return y.astype(np.float64)
        index = {label: code for code, label in enumerate(data.classes or [])}
        try:
            return np.asarray([index[v.item() if hasattr(v, "item") else v] for v in y])
        except KeyError as exc:
            raise DataError(f"y: label {exc.args[0]!r} was not seen in training") from None

    def _dataset(self, X_train: Any, y_train: Any, X_val: Any, y_val: Any) -> Dataset:
        X_train, X_val = _array(X_train), _array(X_val)
        y_train, y_val = np.asarray(y_train), np.asarray(y_val)
        if len(X_train) != len(y_train) or len(X_val) != len(y_val):
            raise DataError("y_train / y_val: one target per sample of X_train / X_val")
        task = self.task or infer_task(y_train)
        classes = None
        target_scaler = None
        if task == "classification":
            codes, classes = encode_labels(np.concatenate([y_train, y_val]))
            y_train_c, y_val_c = codes[: len(y_train)], codes[len(y_train) :]
        else:
            y_train_c, y_val_c = y_train.astype(np.float64), y_val.astype(np.float64)
            target_scaler = Scaler.fit(y_train_c[:, None])
        scaler = Scaler.fit(X_train)
        empty = np.empty((0, *X_train.shape[1:]), dtype=np.float32)
        return Dataset(
            X_train=scaler.transform(X_train),
            y_train=y_train_c,
            X_val=scaler.transform(X_val),
            y_val=y_val_c,
            X_test=empty,
            y_test=np.empty((0,)),
            task=task,
            feature_scaler=scaler,
            target_scaler=target_scaler,
            classes=classes,
            feature_names=[f"x{i}" for i in range(int(np.prod(X_train.shape[1:])))],
            fingerprint="",
            source="arrays",
            target=None,
        )

    def _start_run(self, hp: dict[str, Any]) -> Any:
        if not self.experiment_name:
            return None
        from hpolab.tracking import StudyTracker

        tracker = StudyTracker(
            self.layout.tracking_uri, self.layout.artifacts_dir, self.experiment_name
        )
        name = self.model if isinstance(self.model, str) else self.model.name
        params = {
            k: v for k, v in {**self.config, **hp}.items() if k in TRAINING_KEYS or k in self.config
        }
        return tracker.start_run(f"{name}-manual", params, role="manual")


def _array(X: Any) -> np.ndarray:
    array = np.asarray(X, dtype=np.float32)
    if array.ndim < 2:
        raise DataError(f"X: expected shape (n_samples, ...), got {array.shape}")
    return array


class MultiModelTrainer:
    """Several trainers on the same data, ranked by a metric."""

    def __init__(self, experiment_name: str | None = None, root: Any = None) -> None:
        self.experiment_name = experiment_name
        self.root = root
        self.trainers: dict[str, ModelTrainer] = {}
        self.results_: dict[str, dict[str, float]] = {}

    def add_model(
        self, name: str, model: keras.Model | str, config: Mapping[str, Any] | None = None
    ) -> ModelTrainer:
        """Register ``model`` under ``name`` (unique)."""
        if name in self.trainers:
            raise ConfigError(f"add_model: a model named {name!r} is already added")
        trainer = ModelTrainer(model, config, self.experiment_name, root=self.root)
        self.trainers[name] = trainer
        return trainer

    def train_all(self, X_train: Any, y_train: Any, X_val: Any, y_val: Any) -> None:
        """Train every added model on the same split (Keras state cleared in between)."""
        if not self.trainers:
            raise ConfigError("train_all: add a model first (add_model)")
        for trainer in self.trainers.values():
            clear_keras()
            trainer.train(X_train, y_train, X_val, y_val)

    def evaluate_all(self, X: Any, y: Any) -> dict[str, dict[str, float]]:
        """Metrics of every trained model on ``(X, y)``."""
        self.results_ = {name: t.evaluate(X, y) for name, t in self.trainers.items()}
        return self.results_

    def compare_models(self, metric: str) -> list[dict[str, Any]]:
        """Models ranked by ``metric`` (best first; errors ascending, scores descending)."""
        if not self.results_:
            raise ConfigError("compare_models: call evaluate_all first")
        missing = [n for n, m in self.results_.items() if metric not in m]
        if missing:
            known = ", ".join(sorted(next(iter(self.results_.values()))))
            raise ConfigError(f"compare_models: no metric {metric!r}; use one of {known}")
        ranked = sorted(
            self.results_.items(),
            key=lambda kv: kv[1][metric],
            reverse=metric_direction(metric) == "maximize",
        )
        return [
            {"rank": i + 1, "model": name, metric: values[metric], **values}
            for i, (name, values) in enumerate(ranked)
        ]
