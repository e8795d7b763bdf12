"""Models of your own for hpolab (see configs/own_model.yaml and the README).

``build(hp)`` declares its search space while it builds, as a KerasTuner hypermodel does:
1 to 3 dense layers, each with its own width, a dropout that is searched only when it is
used, and the learning rate (a training setting, honoured by hpolab's training).

``build_with_params`` is the other way in: its space is the config's ``search_space``.
"""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="my_models")
class Standardize(keras.layers.Layer):
    """A custom layer: registered, so final models save and load with safe_mode=True."""

    def __init__(self, scale: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale

    def call(self, inputs):
        return inputs * self.scale

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


def build(hp):
    inputs = keras.Input(shape=hp.input_shape)
    x = keras.layers.Flatten()(inputs)
    x = Standardize(scale=1.0)(x)
    for i in range(hp.Int("n_layers", 1, 3)):
        x = keras.layers.Dense(hp.Int(f"units_{i}", 32, 256, step=32), activation="relu")(x)
    if hp.Boolean("dropout"):
        x = keras.layers.Dropout(hp.Float("dropout_rate", 0.1, 0.5, step=0.1))(x)
    activation = "softmax" if hp.task == "classification" else None
    outputs = keras.layers.Dense(hp.n_outputs, activation=activation)(x)
    hp.Float("learning_rate", 1e-4, 1e-2, log=True)  # read by hpolab's training
    return keras.Model(inputs, outputs)


def build_with_params(params, input_shape, n_outputs, task):
    inputs = keras.Input(shape=input_shape)
    x = keras.layers.Flatten()(inputs)
    for units in params.get("widths", [64]):
        x = keras.layers.Dense(units, activation="relu")(x)
    activation = "softmax" if task == "classification" else None
    return keras.Model(inputs, keras.layers.Dense(n_outputs, activation=activation)(x))
