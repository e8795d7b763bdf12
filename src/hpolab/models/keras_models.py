"""Keras builders: ``mlp`` and ``cnn1d``.

Builders read only the keys they know from ``params`` and fall back to sensible defaults,
so a partial parameter set (a small search space) still builds a working model.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import layers

from hpolab.errors import ConfigError


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


def _as_sequence(inputs: Any, input_shape: tuple[int, ...]) -> Any:
    """Tabular inputs ``(features,)`` read as a sequence ``(features, 1)``."""
    return layers.Reshape((input_shape[0], 1))(inputs) if len(input_shape) == 1 else inputs


def _pool_size(x: Any) -> tuple[int, ...]:
    """Halve every spatial axis that is long enough, keep the others."""
    return tuple(2 if (d is not None and d >= 4) else 1 for d in x.shape[1:-1])


def build_lstm(
    params: dict[str, Any], *, input_shape: tuple[int, ...], task: str, n_outputs: int
) -> keras.Model:
    """``n_layers`` (bi)LSTM layers of ``units`` over time, then one dense layer."""
    if len(input_shape) > 2:
        raise ConfigError(
            f"models.lstm: needs (time, features) inputs; the data has shape {input_shape}"
        )
    units = int(params.get("units", 32))
    n_layers = int(params.get("n_layers", 1))
    dropout = float(params.get("dropout", 0.0))
    inputs = keras.Input(shape=input_shape, name="features")
    x = _as_sequence(inputs, input_shape)
    for i in range(n_layers):
        layer = layers.LSTM(units, return_sequences=i < n_layers - 1, name=f"lstm_{i}")
        x = layers.Bidirectional(layer)(x) if params.get("bidirectional", False) else layer(x)
        if dropout > 0:
            x = layers.Dropout(dropout)(x)
    x = layers.Dense(int(params.get("dense_units", 32)), activation="relu", name="dense")(x)
    return keras.Model(inputs, _head(x, task, n_outputs), name="lstm")


def build_cnn2d(
    params: dict[str, Any], *, input_shape: tuple[int, ...], task: str, n_outputs: int
) -> keras.Model:
    """2-D convolutions over images or spectrograms ``(height, width[, channels])``."""
    if len(input_shape) < 2:
        raise ConfigError(
            f"models.cnn2d: needs 2-D inputs such as spectrograms; the data has shape {input_shape}"
        )
    filters = int(params.get("filters", 16))
    kernel = int(params.get("kernel_size", 3))
    dropout = float(params.get("dropout", 0.0))
    inputs = keras.Input(shape=input_shape, name="features")
    x = layers.Reshape((*input_shape, 1))(inputs) if len(input_shape) == 2 else inputs
    for i in range(int(params.get("n_conv_layers", 2))):
        x = layers.Conv2D(
            filters * (2**i), kernel, padding="same", activation="relu", name=f"conv_{i}"
        )(x)
        x = layers.MaxPooling2D(_pool_size(x))(x)
    x = layers.GlobalAveragePooling2D()(x)
    if dropout > 0:
        x = layers.Dropout(dropout)(x)
    x = layers.Dense(int(params.get("dense_units", 64)), activation="relu", name="dense")(x)
    return keras.Model(inputs, _head(x, task, n_outputs), name="cnn2d")


def build_resnet(
    params: dict[str, Any], *, input_shape: tuple[int, ...], task: str, n_outputs: int
) -> keras.Model:
    """Residual blocks (two convolutions + skip); 1-D for sequences, 2-D for images."""
    two_d = len(input_shape) == 3
    conv = layers.Conv2D if two_d else layers.Conv1D
    pool = layers.MaxPooling2D if two_d else layers.MaxPooling1D
    global_pool = layers.GlobalAveragePooling2D if two_d else layers.GlobalAveragePooling1D
    filters = int(params.get("filters", 32))
    kernel = int(params.get("kernel_size", 3))
    inputs = keras.Input(shape=input_shape, name="features")
    x = inputs if two_d else _as_sequence(inputs, input_shape)
    x = conv(filters, kernel, padding="same", name="stem")(x)
    for i in range(int(params.get("n_blocks", 2))):
        width = filters * (2**i)
        shortcut = x if x.shape[-1] == width else conv(width, 1, name=f"proj_{i}")(x)
        y = conv(width, kernel, padding="same", name=f"block{i}_a")(x)
        y = layers.Activation("relu")(layers.BatchNormalization()(y))
        y = conv(width, kernel, padding="same", name=f"block{i}_b")(y)
        y = layers.BatchNormalization()(y)
        x = layers.Activation("relu")(layers.Add()([shortcut, y]))
        x = pool(_pool_size(x))(x)
    x = global_pool()(x)
    if float(params.get("dropout", 0.0)) > 0:
        x = layers.Dropout(float(params["dropout"]))(x)
    return keras.Model(inputs, _head(x, task, n_outputs), name="resnet")
