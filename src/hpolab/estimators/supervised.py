"""Supervised cached estimators: ``KerasEstimator`` (any model-zoo builder) and
``ResidualRegressor`` (a regressor on an autoencoder's latent features and residuals)."""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Literal

import keras
import numpy as np
from keras import layers
from sklearn.metrics import accuracy_score, r2_score

from hpolab.config import TASKS
from hpolab.data.dataset import Scaler, encode_labels, infer_task
from hpolab.errors import ConfigError, DataError
from hpolab.estimators.autoencoder import Autoencoder
from hpolab.estimators.base import CachedEstimator, PreparedData, as_2d_float
from hpolab.estimators.values import space_examples
from hpolab.models.registry import (
    accepted_params,
    available_models,
    build_model,
    default_search_space,
    is_keras,
)
from hpolab.training.metrics import compute_metrics


class _Supervised(CachedEstimator):
    """Shared target handling: label encoding or target scaling, metrics, predict, score."""

    NEEDS_TARGET: ClassVar[bool] = True

    def _targets(
        self, y_train: np.ndarray, y_val: np.ndarray, task: str
    ) -> tuple[np.ndarray, np.ndarray, dict[str, Scaler], dict[str, Any]]:
        if task == "classification":
            codes, classes = encode_labels(np.concatenate([y_train, y_val]))
            state = {"task": task, "classes": classes}
            return codes[: len(y_train)], codes[len(y_train) :], {}, state
        try:
            y_train_f = np.asarray(y_train, dtype=np.float64)
            y_val_f = np.asarray(y_val, dtype=np.float64)
        except ValueError:
            raise DataError(
                "y_train: non-numeric targets cannot be regressed; set task='classification'"
            ) from None
        scaler = Scaler.fit(y_train_f[:, None])
        return (
            scaler.transform(y_train_f[:, None]).reshape(-1),
            scaler.transform(y_val_f[:, None]).reshape(-1),
            {"y": scaler},
            {"task": task},
        )

    def _loss(self, data: PreparedData) -> str:
        return (
            "sparse_categorical_crossentropy" if data.state["task"] == "classification" else "mse"
        )

    def _head(self, x: Any, data: PreparedData) -> Any:
        if data.state["task"] == "classification":
            return layers.Dense(len(data.state["classes"]), activation="softmax", name="output")(x)
        return layers.Dense(1, name="output")(x)

    def _val_metrics(self, model: keras.Model, data: PreparedData) -> dict[str, float]:
        raw = model.predict(data.x_val, batch_size=1024, verbose=0)
        task = data.state["task"]
        y_true = data.y_val if task == "classification" else data.y_val_raw
        found = compute_metrics(task, y_true, raw, data.scalers.get("y"))
        return {f"val_{k}": v for k, v in found.items()}

    @abstractmethod
    def _features(self, X: Any) -> np.ndarray:
        """The network's inputs for raw ``X`` (scaled, or derived from another model)."""

    def _raw(self, X: Any) -> np.ndarray:
        self._check_fitted()
        return np.asarray(self.model_.predict(self._features(X), batch_size=1024, verbose=0))

    def predict(self, X: Any) -> np.ndarray:
        """Class labels (classification) or target values in original units (regression)."""
        raw = self._raw(X)
        if self.state_["task"] == "classification":
            return np.asarray(self.state_["classes"])[raw.argmax(axis=1)]
        return self.scalers_["y"].inverse(raw.reshape(-1, 1)).reshape(-1)

    def score(self, X: Any, y: Any) -> float:
        """Accuracy (classification) or R² (regression), as scikit-learn estimators do."""
        pred = self.predict(X)
        if self.state_["task"] == "classification":
            return float(accuracy_score(np.asarray(y), pred))
        return float(r2_score(np.asarray(y, dtype=np.float64), pred))


class KerasEstimator(_Supervised):
    """Any Keras builder of the model zoo (``mlp``, ``cnn1d``, ...) as a cached estimator.

    Grid keys are the builder's parameters (see ``hpolab.models``) and the training keys
    (``epochs``, ``batch_size``, ``learning_rate``, ``patience``, ...).
    """

    DEFAULT_CONFIG: ClassVar[dict[str, Any]] = {
        "learning_rate": 1e-3,
        "epochs": 40,
        "batch_size": 32,
        "patience": 5,
    }
    DEFAULT_PARAM_GRID: ClassVar[dict[str, list[Any]]] = {"learning_rate": [1e-3, 3e-3]}

    def __init__(
        self,
        model_type: str = "mlp",
        task: str | None = None,
        pretrained_model: CachedEstimator | None = None,
        model_dir: str | Path | None = None,
        cache_prefix: str | None = None,
        verbose: int = 0,
        metric: str | None = None,
        on_mismatch: Literal["retrain", "error"] = "retrain",
        validation_fraction: float = 0.2,
        random_state: int = 0,
    ) -> None:
        super().__init__(
            pretrained_model=pretrained_model,
            model_dir=model_dir,
            cache_prefix=cache_prefix,
            verbose=verbose,
            metric=metric,
            on_mismatch=on_mismatch,
            validation_fraction=validation_fraction,
            random_state=random_state,
        )
        self.model_type = model_type
        self.task = task

    def _config_keys(self) -> set[str]:
        # accepted_params: an ensemble also takes <member>__<param> keys.
        return super()._config_keys() | set(accepted_params(self.model_type))

    def _type_defaults(self) -> dict[str, tuple[Any, str]]:
        # The builder's parameters have no defaults here; the types of its default search
        # space stand in (filters 16 -> an int), named "e.g." in messages.
        examples = space_examples(default_search_space(self.model_type))
        if self.model_type == "ensemble":
            for member in available_models():
                if is_keras(member) and member != "ensemble":
                    member_space = space_examples(default_search_space(member))
                    examples.update((f"{member}__{k}", v) for k, v in member_space.items())
        return {**{k: (v, "e.g.") for k, v in examples.items()}, **super()._type_defaults()}

    def _signature(self, grid: dict[str, list[Any]]) -> str:
        return f"{self.model_type}|{self.task}|{super()._signature(grid)}"

    def _fingerprint_extra(self, y_train: np.ndarray | None) -> str:
        return self._task(y_train)

    def _task(self, y_train: np.ndarray | None) -> str:
        if self.task is not None and self.task not in TASKS:
            raise ConfigError(f"task: {self.task!r} is not one of {', '.join(TASKS)}")
        return self.task or infer_task(np.asarray(y_train))

    def _prepare(
        self,
        X_train: np.ndarray,
        X_val: np.ndarray,
        y_train: np.ndarray | None,
        y_val: np.ndarray | None,
    ) -> PreparedData:
        assert y_train is not None and y_val is not None
        task = self._task(y_train)
        y_fit, y_val_fit, scalers, state = self._targets(y_train, y_val, task)
        x_scaler = Scaler.fit(X_train)
        state["input_shape"] = list(X_train.shape[1:])
        return PreparedData(
            x_train=x_scaler.transform(X_train),
            y_train=y_fit,
            x_val=x_scaler.transform(X_val),
            y_val=y_val_fit,
            scalers={"x": x_scaler, **scalers},
            state=state,
            y_val_raw=np.asarray(y_val) if task == "regression" else None,
        )

    def _build(self, config: dict[str, Any], data: PreparedData) -> keras.Model:
        state = data.state
        n_outputs = len(state["classes"]) if state["task"] == "classification" else 1
        return build_model(
            self.model_type, config, tuple(state["input_shape"]), state["task"], n_outputs
        )

    def _features(self, X: Any) -> np.ndarray:
        array = as_2d_float(X, "X")
        if list(array.shape[1:]) != list(self.state_["input_shape"]):
            raise DataError(
                f"X: samples of shape {array.shape[1:]}, but the model was fit on "
                f"{tuple(self.state_['input_shape'])}"
            )
        return self.scalers_["x"].transform(array)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (classification only)."""
        if self.state_.get("task") != "classification":
            raise AttributeError("predict_proba is only available for classification")
        return self._raw(X)


class ResidualRegressor(_Supervised):
    """Regressor on what a fitted :class:`Autoencoder` sees in ``X``.

    Its inputs are the autoencoder's latent features concatenated with the reconstruction
    residual (standardized input minus reconstruction), so both the normal structure of
    ``X`` and its deviation from it can predict the target. ``pretrained_model`` must be a
    fitted ``Autoencoder``; a cache made on another autoencoder is not reused.
    """

    DEFAULT_CONFIG: ClassVar[dict[str, Any]] = {
        "hidden_layers": (64, 32),
        "activation": "relu",
        "dropout": 0.0,
        "learning_rate": 1e-3,
        "epochs": 60,
        "batch_size": 32,
        "patience": 8,
    }
    DEFAULT_PARAM_GRID: ClassVar[dict[str, list[Any]]] = {
        "hidden_layers": [(32,), (64, 32)],
        "learning_rate": [1e-3, 3e-3],
    }

    def _fingerprint_extra(self, y_train: np.ndarray | None) -> str:
        # Features come from the autoencoder: other weights, other data.
        return self._autoencoder().model_file_digest()

    def _autoencoder(self) -> Autoencoder:
        ae = self.pretrained_model
        if not isinstance(ae, Autoencoder) or not hasattr(ae, "model_"):
            raise ConfigError(
                "pretrained_model: ResidualRegressor needs a fitted Autoencoder, e.g. "
                "ResidualRegressor(pretrained_model=Autoencoder().fit(X_train, X_val))"
            )
        return ae

    def _prepare(
        self,
        X_train: np.ndarray,
        X_val: np.ndarray,
        y_train: np.ndarray | None,
        y_val: np.ndarray | None,
    ) -> PreparedData:
        assert y_train is not None and y_val is not None
        ae = self._autoencoder()
        y_fit, y_val_fit, scalers, state = self._targets(y_train, y_val, "regression")
        f_train, f_val = self._ae_features(ae, X_train), self._ae_features(ae, X_val)
        f_scaler = Scaler.fit(f_train)
        return PreparedData(
            x_train=f_scaler.transform(f_train),
            y_train=y_fit,
            x_val=f_scaler.transform(f_val),
            y_val=y_val_fit,
            scalers={"features": f_scaler, **scalers},
            state={**state, "n_features": int(f_train.shape[1])},
            y_val_raw=np.asarray(y_val, dtype=np.float64),
        )

    @staticmethod
    def _ae_features(ae: Autoencoder, X: np.ndarray) -> np.ndarray:
        return np.concatenate([ae.encode(X), ae.residual(X)], axis=1)

    def _build(self, config: dict[str, Any], data: PreparedData) -> keras.Model:
        hidden = config["hidden_layers"]
        hidden = list(hidden) if isinstance(hidden, (list, tuple)) else [hidden]
        inputs = keras.Input(shape=(data.x_train.shape[1],), name="features")
        x = inputs
        for i, units in enumerate(hidden):
            x = layers.Dense(
                int(units), activation=config.get("activation", "relu"), name=f"dense_{i}"
            )(x)
            if float(config.get("dropout", 0.0)) > 0:
                x = layers.Dropout(float(config["dropout"]))(x)
        return keras.Model(inputs, self._head(x, data), name="residual_regressor")

    def _features(self, X: Any) -> np.ndarray:
        return self.scalers_["features"].transform(self._ae_features(self._autoencoder(), X))
