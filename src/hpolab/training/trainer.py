"""``ModelTrainer`` and ``MultiModelTrainer``: train known configurations from Python.

They run the same code as study trials (:func:`hpolab.training.fit.fit_model`: losses,
schedules, callbacks, early stopping) on arrays, with labels encoded and features scaled
on the training split, and log to MLflow when given an ``experiment_name``.

A config is flat (``{"epochs": 5, "loss": "focal_loss", "hidden_layers": [32]}``) or
nested as in the design guide (``{"training": {...}, "model": {...}}``); the guide's key
names (``loss_config``, ``callbacks.early_stopping_patience``, ...) are accepted too. A key
that is neither a training setting nor a parameter of the model is an error.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras
import numpy as np
from pydantic import ValidationError

from hpolab.config import (
    METRICS,
    TrainingSection,
    format_validation_error,
    metric_direction,
)
from hpolab.data.dataset import Dataset, Scaler, encode_labels, infer_task
from hpolab.errors import ConfigError, DataError
from hpolab.layout import Layout, atomic_save
from hpolab.models import build_model
from hpolab.models.builders import split_config as split_experiment_config
from hpolab.training.baselines import is_estimator
from hpolab.training.evaluation import evaluate_model, predict_model
from hpolab.training.fit import (
    clear_keras,
    compile_model,
    fit_model,
    make_optimizer,
    training_params,
)
from hpolab.training.losses import get_loss_function
from hpolab.training.saving import save_model


class ModelTrainer:
    """Train one model (a Keras model, a builder, a scikit-learn estimator or a model type).

    Args:
        model: an uncompiled ``keras.Model``; a builder of :mod:`hpolab.models` after
            ``build()`` (its ``.model``); an unfitted scikit-learn estimator; or a model
            type (``"mlp"``, ``"cnn1d"``) built from ``config`` once the data shape is known.
        config: training settings (``epochs``, ``batch_size``, ``patience``, ``loss``,
            ``loss_options``, ``optimizer``, ``optimizer_options``, ``learning_rate``,
            ``lr_schedule``, ``class_weight``, ``callbacks``...) and, for a model type, its
            parameters; flat, or nested under ``training`` / ``model`` as in the guide.
        experiment_name: log the run (parameters, per-epoch metrics, test metrics, model)
            to this MLflow experiment of the root's ``mlruns/``.
        metric: the validation metric early stopping watches (default the config's
            ``monitor``, else ``val_loss``).

    Raises:
        ConfigError: an unknown or misplaced key, or a bad value, naming it.
    """

    def __init__(
        self,
        model: Any,
        config: Mapping[str, Any] | None = None,
        experiment_name: str | None = None,
        metric: str | None = None,
        task: str | None = None,
        root: str | os.PathLike[str] | None = None,
    ) -> None:
        self.model = _unwrap(model)
        self.config = dict(config or {})
        self.training, self.params = split_config(self.config, self.model)
        monitor = self.training.monitor
        if metric and monitor and metric != monitor:
            raise ConfigError(
                f"metric: {metric!r} differs from the config's monitor {monitor!r}; give one"
            )
        field = "metric" if metric or not monitor else "training.monitor"
        metric = metric or monitor or "val_loss"
        if metric not in METRICS:
            raise ConfigError(f"{field}: unknown metric {metric!r}; use {', '.join(METRICS)}")
        _warn_unused_training(self.model, self.training, self.params)
        self.experiment_name = experiment_name
        self.metric = metric
        self.task = task
        self.layout = Layout.from_root(root)
        self.history_: dict[str, list[float]] = {}

    def compile(self) -> ModelTrainer:
        """Check the loss, optimizer and schedule now (and compile a given Keras model).

        Optional: :meth:`train` compiles with the number of steps per epoch it then knows.
        """
        hp = training_params(self.params, self.training)
        # Class labels are known at train(); an option naming a class by label waits.
        options = dict(hp.get("loss_options") or {})
        if isinstance(options.get("leak_class"), str):
            del options["leak_class"]
        hp["loss_options"] = options
        task = self.task or "classification"
        if isinstance(self.model, keras.Model):
            n_classes = int(self.model.output_shape[-1])
            compile_model(self.model, task, hp, np.arange(n_classes), steps_per_epoch=1)
        elif not is_estimator(self.model):
            make_optimizer(hp, steps_per_epoch=1)
            if hp.get("loss", "auto") != "auto":
                get_loss_function(hp["loss"], [0, 1], one_hot=task == "classification", **options)
        return self

    def train(
        self, X_train: Any, y_train: Any, X_val: Any, y_val: Any, epochs: int | None = None
    ) -> dict[str, list[float]]:
        """Fit with early stopping on ``metric``; return the per-epoch history.

        ``epochs`` overrides the config's. Files of callbacks (checkpoints, logs) go to
        :attr:`run_dir`.
        """
        self.data_ = self._dataset(X_train, y_train, X_val, y_val)
        if isinstance(self.model, str):
            n_outputs = self.data_.n_outputs
            self.model_ = build_model(
                self.model, self.params, self.data_.input_shape, self.data_.task, n_outputs
            )
        else:
            self.model_ = self.model
        hp = training_params(self.params, self.training)
        if epochs is not None:
            hp["epochs"] = int(epochs)
        direction = metric_direction(self.metric)
        run = self._start_run(hp)
        hooks = [run.log_epoch] if run is not None else []
        try:
            result = fit_model(
                self.model_,
                self.data_,
                hp,
                monitor=self.metric,
                direction=direction,
                hooks=hooks,
                run_dir=self.run_dir,
                verbose=int(hp.get("verbose", 0)),
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
        """Save the trained model atomically (``.keras``; ``.skops`` for an estimator)."""
        self._fitted()
        target = Path(path)
        suffix = ".skops" if is_estimator(self.model_) else ".keras"
        if target.suffix != suffix:
            raise ConfigError(f"save: {target.name!r} must end in {suffix}")
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_save(target, lambda tmp: save_model(self.model_, tmp), suffix=suffix)
        return target

    def save_model(self, path: str | os.PathLike[str] | None = None) -> Path:
        """Save the trained model to ``path``, by default ``model.keras`` in :attr:`run_dir`
        (``models/trainer/<name>-<time>/`` under the root); prints and returns the path."""
        suffix = ".skops" if is_estimator(self._fitted_model()) else ".keras"
        target = self.save(path if path is not None else self.run_dir / f"model{suffix}")
        print(f"saved model to {target}")
        return target

    @property
    def run_dir(self) -> Path:
        """This trainer's folder: callbacks' files and the default saved model."""
        if not hasattr(self, "_run_dir"):
            name = self.experiment_name or (
                self.model if isinstance(self.model, str) else _model_name(self.model)
            )
            safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in name) or "model"
            stamp = time.strftime("%Y%m%d-%H%M%S")
            self._run_dir = self.layout.models_dir / "trainer" / f"{safe}-{stamp}"
        return self._run_dir

    # ------------------------------------------------------------------ helpers
    def _fitted(self) -> Dataset:
        if not hasattr(self, "model_"):
            raise ConfigError("this trainer is not trained yet; call train() first")
        return self.data_

    def _fitted_model(self) -> Any:
        self._fitted()
        return self.model_

    def _targets(self, y: Any) -> np.ndarray:
        data = self.data_
        y = _labels(y) if data.task == "classification" else np.asarray(y)
        if data.task != "classification":
            return y.astype(np.float64)
        index = {label: code for code, label in enumerate(data.classes or [])}
        try:
            return np.asarray([index[v.item() if hasattr(v, "item") else v] for v in y])
        except KeyError as exc:
            raise DataError(f"y: label {exc.args[0]!r} was not seen in training") from None

    def _dataset(self, X_train: Any, y_train: Any, X_val: Any, y_val: Any) -> Dataset:
        X_train, X_val = _array(X_train), _array(X_val)
        y_train, y_val = _labels(y_train), _labels(y_val)
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
        name = self.model if isinstance(self.model, str) else _model_name(self.model)
        return tracker.start_run(f"{name}-manual", {**self.params, **hp}, role="manual")


def split_config(config: Mapping[str, Any], model: Any) -> tuple[TrainingSection, dict[str, Any]]:
    """The checked training settings and the model's parameters of a flat or nested config.

    Raises:
        ConfigError: a key that is neither (naming it), or a bad training value.
    """
    raw, params = split_experiment_config(config, model if isinstance(model, str) else None)
    try:
        return TrainingSection.model_validate(raw), params
    except ValidationError as exc:
        message = format_validation_error(exc)
        where = "training: " if message.startswith("config: ") else "training."
        raise ConfigError(where + message.removeprefix("config: ")) from None


def _warn_unused_training(model: Any, training: TrainingSection, params: dict[str, Any]) -> None:
    """A scikit-learn estimator trains in one call: say which training settings it skips."""
    if not is_estimator(model):
        return
    unused = sorted({*training.model_fields_set, *params})
    if unused:
        warnings.warn(
            f"{type(model).__name__} is a scikit-learn estimator, fit in one call: "
            f"{', '.join(unused)} do not apply to it",
            UserWarning,
            stacklevel=3,
        )


def _unwrap(model: Any) -> Any:
    """A builder of :mod:`hpolab.models` stands for the model it built."""
    if isinstance(model, (str, keras.Model)) or is_estimator(model):
        return model
    if hasattr(model, "model"):
        return model.model
    raise ConfigError(
        f"model: {type(model).__name__} is not a keras.Model, a scikit-learn estimator, "
        "a builder or a model type name"
    )


def _model_name(model: Any) -> str:
    return str(getattr(model, "name", None) or type(model).__name__.lower())


def _labels(y: Any) -> np.ndarray:
    """Targets as one value per sample: one-hot rows become class indices."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        return y.argmax(axis=1)
    return y.reshape(-1) if y.ndim == 2 else y


def _array(X: Any) -> np.ndarray:
    array = np.asarray(X, dtype=np.float32)
    if array.ndim < 2:
        raise DataError(f"X: expected shape (n_samples, ...), got {array.shape}")
    return array


class MultiModelTrainer:
    """Several trainers on the same data, ranked by a metric.

    Args:
        config: the default config of every added model (as :class:`ModelTrainer` takes).
        experiment_name: MLflow experiment of every run (none: no logging).
    """

    def __init__(
        self,
        config: Mapping[str, Any] | None = None,
        experiment_name: str | None = None,
        root: Any = None,
    ) -> None:
        if config is not None and not isinstance(config, Mapping):
            raise ConfigError(
                f"MultiModelTrainer: config must be a mapping, not {type(config).__name__}; "
                "name the experiment with experiment_name=..."
            )
        self.config = dict(config or {})
        self.experiment_name = experiment_name
        self.root = root
        self.trainers: dict[str, ModelTrainer] = {}
        self.results_: dict[str, dict[str, float]] = {}

    def add_model(
        self, name: str, model: Any, config: Mapping[str, Any] | None = None
    ) -> ModelTrainer:
        """Register ``model`` under ``name`` (unique), with ``config`` or the default one."""
        if name in self.trainers:
            raise ConfigError(f"add_model: a model named {name!r} is already added")
        chosen = self.config if config is None else config
        trainer = ModelTrainer(model, chosen, self.experiment_name, root=self.root)
        self.trainers[name] = trainer
        return trainer

    def train_all(
        self, X_train: Any, y_train: Any, X_val: Any, y_val: Any, epochs: int | None = None
    ) -> dict[str, dict[str, list[float]]]:
        """Train every added model on the same split (Keras state cleared in between).

        ``epochs`` overrides each config's; returns each model's history.
        """
        if not self.trainers:
            raise ConfigError("train_all: add a model first (add_model)")
        histories = {}
        for name, trainer in self.trainers.items():
            clear_keras()
            histories[name] = trainer.train(X_train, y_train, X_val, y_val, epochs=epochs)
        return histories

    def evaluate_all(self, X: Any, y: Any) -> dict[str, dict[str, float]]:
        """Metrics of every trained model on ``(X, y)``."""
        self.results_ = {name: t.evaluate(X, y) for name, t in self.trainers.items()}
        return self.results_

    def compare_models(self, metric: str = "accuracy") -> dict[str, dict[str, float]]:
        """Every model's metrics, ordered best first by ``metric`` (errors ascending,
        scores descending): ``list(result)[0]`` is the best model's name."""
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
        return dict(ranked)
