"""``Autoencoder``: a dense autoencoder with a cached grid search; anomaly scores."""

from __future__ import annotations

from typing import Any, ClassVar

import keras
import numpy as np
from keras import layers

from hpolab.data.dataset import Scaler
from hpolab.estimators.base import CachedEstimator, PreparedData, as_2d_float


class Autoencoder(CachedEstimator):
    """Dense autoencoder ``X -> latent -> X``, trained on standardized features.

    ``fit(X_train, X_val)`` searches ``DEFAULT_PARAM_GRID`` once and caches the best model;
    afterwards :meth:`encode` gives latent features, :meth:`reconstruct` the reconstruction
    (original units) and :meth:`reconstruction_error` a per-sample anomaly score.
    ``transform`` is ``encode``, so it works as a step of a scikit-learn ``Pipeline``.
    """

    DEFAULT_CONFIG: ClassVar[dict[str, Any]] = {
        "latent_dim": 8,
        "hidden_layers": (32,),
        "activation": "relu",
        "dropout": 0.0,
        "learning_rate": 1e-3,
        "epochs": 50,
        "batch_size": 32,
        "patience": 5,
    }
    DEFAULT_PARAM_GRID: ClassVar[dict[str, list[Any]]] = {
        "latent_dim": [4, 8],
        "hidden_layers": [(32,), (64, 32)],
    }

    def _prepare(
        self,
        X_train: np.ndarray,
        X_val: np.ndarray,
        y_train: np.ndarray | None,
        y_val: np.ndarray | None,
    ) -> PreparedData:
        X_train = X_train.reshape(len(X_train), -1)
        X_val = X_val.reshape(len(X_val), -1)
        scaler = Scaler.fit(X_train)
        x_train, x_val = scaler.transform(X_train), scaler.transform(X_val)
        return PreparedData(
            x_train=x_train,
            y_train=x_train,
            x_val=x_val,
            y_val=x_val,
            scalers={"x": scaler},
            state={"n_features": int(X_train.shape[1])},
        )

    def _build(self, config: dict[str, Any], data: PreparedData) -> keras.Model:
        n_features = data.x_train.shape[1]
        hidden = [int(u) for u in _as_list(config["hidden_layers"])]
        activation = config.get("activation", "relu")
        dropout = float(config.get("dropout", 0.0))
        inputs = keras.Input(shape=(n_features,), name="features")
        x = inputs
        for i, units in enumerate(hidden):
            x = layers.Dense(units, activation=activation, name=f"enc_{i}")(x)
            if dropout > 0:
                x = layers.Dropout(dropout)(x)
        x = layers.Dense(int(config["latent_dim"]), name="latent")(x)
        for i, units in enumerate(reversed(hidden)):
            x = layers.Dense(units, activation=activation, name=f"dec_{i}")(x)
        outputs = layers.Dense(n_features, name="reconstruction")(x)
        return keras.Model(inputs, outputs, name="autoencoder")

    def _val_metrics(self, model: keras.Model, data: PreparedData) -> dict[str, float]:
        errors = _row_mse(data.x_val, model.predict(data.x_val, batch_size=1024, verbose=0))
        return {"val_mse": float(errors.mean()), "val_error_p95": float(np.percentile(errors, 95))}

    def _restore(self, state: dict[str, Any]) -> None:
        self.encoder_ = keras.Model(
            self.model_.inputs, self.model_.get_layer("latent").output, name="encoder"
        )

    # ------------------------------------------------------------------ use
    def _scaled(self, X: Any) -> np.ndarray:
        self._check_fitted()
        array = as_2d_float(X, "X")
        array = array.reshape(len(array), -1)
        expected = self.state_["n_features"]
        if array.shape[1] != expected:
            from hpolab.errors import DataError

            raise DataError(f"X: {array.shape[1]} features, but the model was fit on {expected}")
        return self.scalers_["x"].transform(array)

    def encode(self, X: Any) -> np.ndarray:
        """Latent features of ``X``, shape ``(n_samples, latent_dim)``."""
        return np.asarray(self.encoder_.predict(self._scaled(X), batch_size=1024, verbose=0))

    transform = encode

    def reconstruct(self, X: Any) -> np.ndarray:
        """Reconstruction of ``X`` in the original units."""
        scaled = self.model_.predict(self._scaled(X), batch_size=1024, verbose=0)
        return self.scalers_["x"].inverse(scaled).astype(np.float32)

    predict = reconstruct

    def residual(self, X: Any) -> np.ndarray:
        """Standardized input minus its standardized reconstruction."""
        scaled = self._scaled(X)
        return scaled - np.asarray(self.model_.predict(scaled, batch_size=1024, verbose=0))

    def reconstruction_error(self, X: Any) -> np.ndarray:
        """Per-sample mean squared reconstruction error (standardized units): anomaly score."""
        return (self.residual(X) ** 2).mean(axis=1)

    def score(self, X: Any, y: Any = None) -> float:
        """Negative mean reconstruction error: higher is better, as scikit-learn expects."""
        return -float(self.reconstruction_error(X).mean())


def _row_mse(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return ((np.asarray(a) - np.asarray(b)) ** 2).mean(axis=1)


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]
