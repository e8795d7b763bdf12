"""Keras builders: ``mlp`` and ``cnn1d``.

Builders read only the keys they know from ``params`` and fall back to sensible defaults,
so a partial parameter set (a small search space) still builds a working model.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import layers


def _head(x: Any, task: str, n_outputs: int) -> Any:
    if task == "classification":
        return layers.Dense(n_outputs, activation="softmax", name="output")(x)
    return layers.Dense(1, name="output")(x)


def build_mlp(
    params: dict[str, Any], *, input_shape: tuple[int, ...], task: str, n_outputs: int
) -> keras.Model:
    """Dense layers of ``hidden_layers`` units (or ``n_layers`` x ``units``) with dropout."""
    hidden = params.get("hidden_layers")
    if hidden is None:
        hidden = [int(params.get("units", 64))] * int(params.get("n_layers", 2))
    elif isinstance(hidden, int):
        hidden = [hidden]
    activation = params.get("activation", "relu")
    dropout = float(params.get("dropout", 0.0))
    inputs = keras.Input(shape=input_shape, name="features")
    x = layers.Flatten()(inputs) if len(input_shape) > 1 else inputs
    for i, units in enumerate(hidden):
        x = layers.Dense(int(units), activation=activation, name=f"dense_{i}")(x)
        if params.get("batch_norm", False):
            x = layers.BatchNormalization()(x)
        if dropout > 0:
            x = layers.Dropout(dropout)(x)
    return keras.Model(inputs, _head(x, task, n_outputs), name="mlp")


def build_cnn1d(
    params: dict[str, Any], *, input_shape: tuple[int, ...], task: str, n_outputs: int
) -> keras.Model:
    """``n_conv_layers`` blocks of Conv1D + pooling, global pooling, one dense layer."""
    filters = int(params.get("filters", 32))
    kernel_size = int(params.get("kernel_size", 5))
    n_conv = int(params.get("n_conv_layers", 2))
    dropout = float(params.get("dropout", 0.0))
    activation = params.get("activation", "relu")
    inputs = keras.Input(shape=input_shape, name="features")
    x = layers.Reshape((input_shape[0], 1))(inputs) if len(input_shape) == 1 else inputs
    for i in range(n_conv):
        x = layers.Conv1D(
            filters * (2**i), kernel_size, padding="same", activation=activation, name=f"conv_{i}"
        )(x)
        # Pool only while the sequence is long enough to stay non-empty.
        if x.shape[1] is not None and x.shape[1] >= 4:
            x = layers.MaxPooling1D(2)(x)
    x = layers.GlobalAveragePooling1D()(x)
    if dropout > 0:
        x = layers.Dropout(dropout)(x)
    x = layers.Dense(int(params.get("dense_units", 64)), activation=activation, name="dense")(x)
    return keras.Model(inputs, _head(x, task, n_outputs), name="cnn1d")
