"""Model builders behind a registry: ``build(model_type, params, input_shape, task, n_outputs)``.

Builder classes (``CNN1DBuilder(config).build(input_shape, n_classes).model``,
``RandomForestModel(config).model``, ...) wrap the registry; see :mod:`hpolab.models.builders`.
Neither Keras nor scikit-learn is imported until a model is built.
"""

from hpolab.models.builders import (
    CNN1DBuilder,
    EnsembleModel,
    GradientBoostingModel,
    KerasModelBuilder,
    LSTMBuilder,
    MLPBuilder,
    RandomForestModel,
    ResNetBuilder,
    SklearnModel,
    SVMClassifier,
    params_from_config,
)
from hpolab.models.registry import (
    available_models,
    build_model,
    default_search_space,
    is_keras,
    model_file_suffix,
)

__all__ = [
    "CNN1DBuilder",
    "EnsembleModel",
    "GradientBoostingModel",
    "KerasModelBuilder",
    "LSTMBuilder",
    "MLPBuilder",
    "RandomForestModel",
    "ResNetBuilder",
    "SVMClassifier",
    "SklearnModel",
    "available_models",
    "build_model",
    "default_search_space",
    "is_keras",
    "model_file_suffix",
    "params_from_config",
]
