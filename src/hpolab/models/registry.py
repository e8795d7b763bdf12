"""Registry of model builders.

Importing this module does not import Keras: builders live in their own modules and are
imported when a model is built, so validating a config stays fast.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from hpolab.errors import ConfigError


@dataclass(frozen=True)
class ModelInfo:
    """A registered model type: where its builder is and what it searches by default."""

    name: str
    builder: str  # "module:function"
    description: str
    params: tuple[str, ...]
    default_space: dict[str, Any] = field(default_factory=dict)


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
        params=("filters", "kernel_size", "n_conv_layers", "dense_units", "dropout", "activation"),
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
        params=("filters", "kernel_size", "n_conv_layers", "dense_units", "dropout"),
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
        params=("filters", "kernel_size", "n_blocks", "dropout"),
        default_space={
            "filters": {"type": "categorical", "choices": [16, 32]},
            "kernel_size": {"type": "categorical", "choices": [3, 5]},
            "n_blocks": {"type": "int", "low": 1, "high": 3},
            "dropout": {"type": "float", "low": 0.0, "high": 0.3, "step": 0.1},
            "learning_rate": _LOG_LR,
        },
    ),
}


def available_models() -> list[str]:
    """Names of every registered model type."""
    return sorted(_REGISTRY)


def model_info(model_type: str) -> ModelInfo:
    """The registry entry of ``model_type``."""
    try:
        return _REGISTRY[model_type]
    except KeyError:
        raise ConfigError(
            f"unknown model type {model_type!r}; available: {', '.join(available_models())}"
        ) from None


def default_search_space(model_type: str) -> dict[str, Any]:
    """The search space used when a config names ``model_type`` without one."""
    return dict(model_info(model_type).default_space)


def build_model(
    model_type: str,
    params: dict[str, Any],
    input_shape: tuple[int, ...],
    task: str,
    n_outputs: int,
) -> Any:
    """Build an uncompiled Keras model of ``model_type`` from plain ``params``."""
    module_name, func_name = model_info(model_type).builder.split(":")
    builder = getattr(importlib.import_module(module_name), func_name)
    return builder(params, input_shape=input_shape, task=task, n_outputs=n_outputs)
