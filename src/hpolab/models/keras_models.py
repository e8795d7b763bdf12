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
    """``n_conv_layers`` blocks of Conv1D + pooling, global pooling, one dense layer.

    Spectrograms ``(frames, bins, channels)`` are read as ``(frames, bins * channels)``.
    """
    filters = int(params.get("filters", 32))
    kernel_size = int(params.get("kernel_size", 5))
    n_conv = int(params.get("n_conv_layers", 2))
    dropout = float(params.get("dropout", 0.0))
    activation = params.get("activation", "relu")
    inputs = keras.Input(shape=input_shape, name="features")
    x = _as_sequence(inputs, input_shape)
    for i in range(n_conv):
        x = layers.Conv1D(
            filters * (2**i), kernel_size, padding="same", activation=activation, name=f"conv_{i}"
        )(x)
        # Pool only while the sequence is long enough to stay non-empty.
        if x.shape[1] is not None and x.shape[1] >= 4:
            x = layers.MaxPooling1D(2)(x)
    x = _global_pool(x, params)
    if dropout > 0:
        x = layers.Dropout(dropout)(x)
    x = layers.Dense(int(params.get("dense_units", 64)), activation=activation, name="dense")(x)
    return keras.Model(inputs, _head(x, task, n_outputs), name="cnn1d")


def _as_sequence(inputs: Any, input_shape: tuple[int, ...]) -> Any:
    """Inputs as a sequence ``(time, features)``.

    Tabular ``(features,)`` becomes ``(features, 1)``; a spectrogram
    ``(frames, bins, channels)`` becomes ``(frames, bins * channels)``, so 1-D models
    convolve over time with every frequency bin as a feature.
    """
    if len(input_shape) == 1:
        return layers.Reshape((input_shape[0], 1))(inputs)
    if len(input_shape) > 2:
        width = 1
        for d in input_shape[1:]:
            width *= int(d)
        return layers.Reshape((input_shape[0], width))(inputs)
    return inputs


def _global_pool(x: Any, params: dict[str, Any]) -> Any:
    """Global pooling over time (and frequency): ``pooling`` avg (default), max, or
    ``avg_time_max_freq`` (2-D inputs: mean over frames, then max over frequency bins).

    Max pooling keeps a short or narrow-band event (a leak's hiss in one frequency bin)
    that averaging over the whole window would dilute.
    """
    kind = params.get("pooling", "avg")
    two_d = len(x.shape) == 4
    if kind == "avg_time_max_freq" and two_d:
        # Spectrograms (frames, bins, ch): a stationary narrow-band sound is averaged over
        # time, where it lasts, and picked by a max over frequency, where it is narrow.
        x = layers.AveragePooling2D(pool_size=(int(x.shape[1]), 1), name="time_avg")(x)
        return layers.GlobalMaxPooling2D(name="freq_max")(x)
    if kind == "max" or kind == "avg_time_max_freq":  # 1-D: no frequency axis left
        return (layers.GlobalMaxPooling2D if two_d else layers.GlobalMaxPooling1D)()(x)
    if kind == "avg":
        return (layers.GlobalAveragePooling2D if two_d else layers.GlobalAveragePooling1D)()(x)
    raise ConfigError(f"pooling: use avg, max or avg_time_max_freq, not {kind!r}")


def _pool_size(x: Any) -> tuple[int, ...]:
    """Halve every spatial axis that is long enough, keep the others."""
    return tuple(2 if (d is not None and d >= 4) else 1 for d in x.shape[1:-1])


def build_lstm(
    params: dict[str, Any], *, input_shape: tuple[int, ...], task: str, n_outputs: int
) -> keras.Model:
    """``n_layers`` (bi)LSTM layers of ``units`` over time, then one dense layer.

    Spectrograms are read as ``(frames, bins * channels)``.
    """
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
    x = _global_pool(x, params)
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
    x = _global_pool(x, params)
    if float(params.get("dropout", 0.0)) > 0:
        x = layers.Dropout(float(params["dropout"]))(x)
    return keras.Model(inputs, _head(x, task, n_outputs), name="resnet")


@keras.saving.register_keras_serializable(package="hpolab")
class ReconstructionPenalty(layers.Layer):
    """Adds ``weight * mse(original, reconstruction)`` to the model's loss.

    Passes the bottleneck through unchanged, so the penalty layer sits on the path to the
    output and the decoder is trained along with the prediction head.
    """

    def __init__(self, weight: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.weight = float(weight)

    def call(self, inputs: list[Any]) -> Any:
        bottleneck, original, reconstruction = inputs
        error = keras.ops.mean(keras.ops.square(original - reconstruction))
        self.add_loss(self.weight * error)
        return bottleneck

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "weight": self.weight}


def build_autoencoder(
    params: dict[str, Any], *, input_shape: tuple[int, ...], task: str, n_outputs: int
) -> keras.Model:
    """Dense autoencoder whose bottleneck also feeds the prediction head.

    The decoder's reconstruction error (times ``reconstruction_weight``) is added to the
    task loss, so the bottleneck keeps what describes the input, not only what separates
    the training labels: a regulariser that helps on small, noisy data.
    """
    encoding_dim = int(params.get("encoding_dim", 16))
    widths = [int(w) for w in params.get("encoder_units", [4 * encoding_dim, 2 * encoding_dim])]
    dropout = float(params.get("dropout", 0.0))
    inputs = keras.Input(shape=input_shape, name="features")
    flat = layers.Flatten()(inputs) if len(input_shape) > 1 else inputs
    x = flat
    for i, width in enumerate(widths):
        x = layers.Dense(width, activation="relu", name=f"encoder_{i}")(x)
        if dropout > 0:
            x = layers.Dropout(dropout)(x)
    code = layers.Dense(encoding_dim, activation="relu", name="bottleneck")(x)
    y = code
    for i, width in enumerate(reversed(widths)):
        y = layers.Dense(width, activation="relu", name=f"decoder_{i}")(y)
    reconstruction = layers.Dense(flat.shape[-1], name="reconstruction")(y)
    code = ReconstructionPenalty(float(params.get("reconstruction_weight", 0.5)))(
        [code, flat, reconstruction]
    )
    return keras.Model(inputs, _head(code, task, n_outputs), name="autoencoder")


def build_ensemble(
    params: dict[str, Any], *, input_shape: tuple[int, ...], task: str, n_outputs: int
) -> keras.Model:
    """Members (Keras model types) on the same input; their outputs are averaged.

    For classification the members' softmax probabilities are averaged. ``members`` lists
    the model types (default ``[mlp, cnn1d]``); ``<member>__<param>`` sets a member's
    parameter, e.g. ``cnn1d__filters: 64``; others use their builder's defaults.
    """
    from hpolab.models.registry import build_model, model_info

    members = params.get("members", ["mlp", "cnn1d"])
    if isinstance(members, str):
        members = [m.strip() for m in members.split("+")]
    if len(members) < 2 or len(set(members)) != len(members):
        raise ConfigError(
            f"models.ensemble: members must name two or more different model types, got {members}"
        )
    for member in members:
        if member == "ensemble" or model_info(member).kind != "keras":
            raise ConfigError(
                f"models.ensemble: member {member!r} is not a Keras model type; members are "
                "trained together, so scikit-learn baselines cannot be members"
            )
    inputs = keras.Input(shape=input_shape, name="features")
    outputs = []
    for member in members:
        prefix = f"{member}__"
        member_params = {k[len(prefix) :]: v for k, v in params.items() if k.startswith(prefix)}
        sub = build_model(member, member_params, input_shape, task, n_outputs)
        outputs.append(sub(inputs))
    averaged = layers.Average(name="output")(outputs)
    return keras.Model(inputs, averaged, name="ensemble")
