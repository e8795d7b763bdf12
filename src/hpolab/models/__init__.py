"""Model builders behind a registry: ``build(model_type, params, input_shape, task, n_outputs)``."""

from hpolab.models.registry import (
    available_models,
    build_model,
    default_search_space,
    is_keras,
    model_file_suffix,
)

__all__ = [
    "available_models",
    "build_model",
    "default_search_space",
    "is_keras",
    "model_file_suffix",
]
