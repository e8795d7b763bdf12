"""Registry of model builders.

Importing this module does not import Keras: builders live in their own modules and are
imported when a model is built, so validating a config stays fast.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from hpolab.errors import ConfigError, unknown_key


@dataclass(frozen=True)
class ModelInfo:
    """A registered model type: where its builder is and what it searches by default."""

    name: str
    builder: str  # "module:function"
    description: str
    params: tuple[str, ...]
    default_space: dict[str, Any] = field(default_factory=dict)
    # "keras" models train epoch by epoch and save as .keras; "sklearn" baselines fit in
    # one call and save with skops.
    kind: str = "keras"

    @property
    def file_suffix(self) -> str:
        return ".keras" if self.kind == "keras" else ".skops"


_LOG_LR = {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}

_REGISTRY: dict[str, ModelInfo] = {
    "mlp": ModelInfo(
        name="mlp",
        builder="hpolab.models.keras_models:build_mlp",
        description="dense network; multichannel windows are flattened",
        params=("hidden_layers", "units", "n_layers", "activation", "dropout", "batch_norm"),
        default_space={
            "hidden_layers": {"type": "categorical", "choices": [[64], [128], [64, 32], [128, 64]]},
            "dropout": {"type": "float", "low": 0.0, "high": 0.4, "step": 0.1},
            "learning_rate": _LOG_LR,
        },
    ),
    "cnn1d": ModelInfo(
        name="cnn1d",
        builder="hpolab.models.keras_models:build_cnn1d",
        description="1-D convolutions over time; tabular inputs are read as a sequence",
        params=(
            "filters",
            "kernel_size",
            "n_conv_layers",
            "dense_units",
            "dropout",
            "activation",
            "pooling",
        ),
        default_space={
            "filters": {"type": "categorical", "choices": [16, 32, 64]},
            "kernel_size": {"type": "categorical", "choices": [3, 5, 7]},
            "n_conv_layers": {"type": "int", "low": 1, "high": 3},
            "dense_units": {"type": "categorical", "choices": [32, 64]},
            "dropout": {"type": "float", "low": 0.0, "high": 0.4, "step": 0.1},
            "learning_rate": _LOG_LR,
        },
    ),
    "lstm": ModelInfo(
        name="lstm",
        builder="hpolab.models.keras_models:build_lstm",
        description="(bi)LSTM over time; tabular inputs are read as a sequence",
        params=("units", "n_layers", "bidirectional", "dropout", "dense_units"),
        default_space={
            "units": {"type": "categorical", "choices": [16, 32, 64]},
            "n_layers": {"type": "int", "low": 1, "high": 2},
            "bidirectional": {"type": "categorical", "choices": [False, True]},
            "dropout": {"type": "float", "low": 0.0, "high": 0.3, "step": 0.1},
            "learning_rate": _LOG_LR,
        },
    ),
    "cnn2d": ModelInfo(
        name="cnn2d",
        builder="hpolab.models.keras_models:build_cnn2d",
        description="2-D convolutions over images or spectrograms (height, width[, channels])",
        params=("filters", "kernel_size", "n_conv_layers", "dense_units", "dropout", "pooling"),
        default_space={
            "filters": {"type": "categorical", "choices": [8, 16, 32]},
            "kernel_size": {"type": "categorical", "choices": [3, 5]},
            "n_conv_layers": {"type": "int", "low": 1, "high": 3},
            "dense_units": {"type": "categorical", "choices": [32, 64]},
            "dropout": {"type": "float", "low": 0.0, "high": 0.4, "step": 0.1},
            "learning_rate": _LOG_LR,
        },
    ),
    "resnet": ModelInfo(
        name="resnet",
        builder="hpolab.models.keras_models:build_resnet",
        description="residual blocks; 1-D for sequences, 2-D for (height, width, channels)",
        params=("filters", "kernel_size", "n_blocks", "dropout", "pooling"),
        default_space={
            "filters": {"type": "categorical", "choices": [16, 32]},
            "kernel_size": {"type": "categorical", "choices": [3, 5]},
            "n_blocks": {"type": "int", "low": 1, "high": 3},
            "dropout": {"type": "float", "low": 0.0, "high": 0.3, "step": 0.1},
            "learning_rate": _LOG_LR,
        },
    ),
    "autoencoder": ModelInfo(
        name="autoencoder",
        builder="hpolab.models.keras_models:build_autoencoder",
        description="dense autoencoder; the bottleneck feeds the head, reconstruction "
        "error is added to the loss",
        params=("encoding_dim", "encoder_units", "reconstruction_weight", "dropout"),
        default_space={
            "encoding_dim": {"type": "categorical", "choices": [8, 16, 32]},
            "reconstruction_weight": {"type": "float", "low": 0.1, "high": 1.0, "log": True},
            "dropout": {"type": "float", "low": 0.0, "high": 0.3, "step": 0.1},
            "learning_rate": _LOG_LR,
        },
    ),
    "ensemble": ModelInfo(
        name="ensemble",
        builder="hpolab.models.keras_models:build_ensemble",
        description="Keras members on the same input, outputs (probabilities) averaged; "
        "<member>__<param> sets a member's parameter",
        params=("members",),
        default_space={
            "members": {"type": "categorical", "choices": [["mlp", "cnn1d"]]},
            "learning_rate": _LOG_LR,
        },
    ),
    "random_forest": ModelInfo(
        name="random_forest",
        builder="hpolab.models.sklearn_models:build_random_forest",
        description="scikit-learn random forest baseline on flattened inputs",
        params=("n_estimators", "max_depth", "min_samples_leaf", "max_features", "n_jobs"),
        default_space={
            "n_estimators": {"type": "categorical", "choices": [100, 200, 400]},
            "max_depth": {"type": "categorical", "choices": [0, 8, 16]},
            "min_samples_leaf": {"type": "int", "low": 1, "high": 5},
            "max_features": {"type": "categorical", "choices": ["sqrt", "log2"]},
        },
        kind="sklearn",
    ),
    "svm": ModelInfo(
        name="svm",
        builder="hpolab.models.sklearn_models:build_svm",
        description="scikit-learn support-vector machine baseline (RBF kernel)",
        params=("C", "kernel", "gamma", "epsilon"),
        default_space={
            "C": {"type": "float", "low": 0.01, "high": 100.0, "log": True},
            "gamma": {"type": "categorical", "choices": ["scale", "auto"]},
        },
        kind="sklearn",
    ),
    "gradient_boosting": ModelInfo(
        name="gradient_boosting",
        builder="hpolab.models.sklearn_models:build_gradient_boosting",
        description="scikit-learn histogram gradient boosting baseline",
        params=("learning_rate", "max_iter", "max_depth", "min_samples_leaf", "l2_regularization"),
        default_space={
            "learning_rate": {"type": "float", "low": 0.02, "high": 0.3, "log": True},
            "max_iter": {"type": "categorical", "choices": [100, 200]},
            "max_depth": {"type": "categorical", "choices": [0, 4, 8]},
            "min_samples_leaf": {"type": "int", "low": 5, "high": 40},
        },
        kind="sklearn",
    ),
}


def available_models() -> list[str]:
    """Names of every registered model type."""
    return sorted(_REGISTRY)


def model_info(model_type: str) -> ModelInfo:
    """The registry entry of ``model_type`` (a registered builder of the user's too)."""
    from hpolab.models.custom import registered

    user = registered(model_type)
    if user is not None:
        return ModelInfo(model_type, user.source, "the user's own Keras model", ())
    try:
        return _REGISTRY[model_type]
    except KeyError:
        raise ConfigError(
            f"unknown model type {model_type!r}; available: {', '.join(available_models())}"
        ) from None


def default_search_space(model_type: str) -> dict[str, Any]:
    """The search space used when a config names ``model_type`` without one."""
    return dict(model_info(model_type).default_space)


def accepted_params(model_type: str) -> list[str]:
    """Parameter names a search space of ``model_type`` may hold (besides training keys).

    An ensemble also accepts ``<member>__<param>`` for every Keras member type.
    """
    from hpolab.models.custom import registered

    if registered(model_type) is not None:
        return []  # the user's builder takes what its space names
    info = model_info(model_type)
    names = list(info.params)
    if model_type == "ensemble":
        for member in _REGISTRY.values():
            if member.kind == "keras" and member.name != "ensemble":
                names.extend(f"{member.name}__{p}" for p in member.params)
    return names


def check_params(
    model_type: str | None,
    params: Iterable[str],
    field: str = "params",
    elsewhere: Iterable[str] = (),
) -> None:
    """Every name in ``params`` is a parameter of ``model_type`` or a training key.

    ``model_type=None`` (a model given as an object or a function) takes training keys only.
    ``elsewhere``: names the caller accepts in another place, offered as hints too.

    Raises:
        ConfigError: the first unknown name, with the closest known one.
    """
    from hpolab.config import TRAINING_KEYS

    accepted = {*(accepted_params(model_type) if model_type else ()), *TRAINING_KEYS}
    owner = model_type or "a given model (training keys only)"
    for name in params:
        if name not in accepted:
            raise unknown_key(field, name, {*accepted, *elsewhere}, f"parameter of {owner}")


def is_keras(model_type: str) -> bool:
    """Whether ``model_type`` builds a Keras model (else a scikit-learn estimator)."""
    return model_info(model_type).kind == "keras"


def model_file_suffix(model_type: str) -> str:
    """File suffix of a saved model of ``model_type``: ``.keras`` or ``.skops``."""
    return model_info(model_type).file_suffix


def build_model(
    model_type: str,
    params: dict[str, Any],
    input_shape: tuple[int, ...],
    task: str,
    n_outputs: int,
) -> Any:
    """Build an uncompiled Keras model (or an unfitted scikit-learn estimator).

    A define-by-run builder of the user's replays ``params`` (a trial's values) through
    its ``hp``: the same architecture as the trial.
    """
    from hpolab.models.custom import call, registered
    from hpolab.models.hyperparameters import HyperParameters, Replay

    user = registered(model_type)
    if user is not None:
        hp = None
        if user.define_by_run:
            where = f"{user.field} ({user.source})"
            hp = HyperParameters(
                Replay(params, where),
                input_shape=input_shape,
                n_outputs=n_outputs,
                task=task,
                builder=where,
            )
        return call(user, params, input_shape, task, n_outputs, hp=hp)
    module_name, func_name = model_info(model_type).builder.split(":")
    builder = getattr(importlib.import_module(module_name), func_name)
    return builder(params, input_shape=input_shape, task=task, n_outputs=n_outputs)
