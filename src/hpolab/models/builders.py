"""Model builders as classes: one per model type, thin wrappers over the registry.

Keras models are built for a given input shape; scikit-learn baselines are built at once::

    from hpolab.models import CNN1DBuilder, RandomForestModel

    cnn = CNN1DBuilder(config).build(input_shape=(1024, 9), n_classes=4).model  # keras.Model
    rf = RandomForestModel(config).model  # unfitted scikit-learn estimator

``config`` is a whole experiment config (or ``None`` for the builder's defaults). Model
parameters are read from three places, later ones winning when a key appears twice:

1. flat top-level keys the model type accepts (``{"filters": 32}``),
2. a ``"model"`` mapping (``{"model": {"filters": 32}}``),
3. a mapping named by the model type (``{"cnn1d": {"filters": 32}}``); sections named by
   *other* model types are skipped, so one config can serve several builders.

Training settings are allowed and ignored here (they are for the trainer): the
``"training"``, ``"callbacks"`` and ``"class_weights"`` sections, and top-level training
keys (``epochs``, ``batch_size``, ``learning_rate``, ... see
:data:`hpolab.config.TRAINING_KEYS` and :class:`hpolab.config.TrainingSection`). A key that
is a model parameter of this type (``learning_rate`` of ``gradient_boosting``) is read as
one. Any other key raises :class:`~hpolab.errors.ConfigError` naming it.

Parameter names per model type: :func:`hpolab.models.registry.accepted_params`.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from hpolab.config import GUIDE_TRAINING_KEYS, TASKS, TRAINING_KEYS, TrainingSection
from hpolab.errors import ConfigError, unknown_key
from hpolab.models.registry import accepted_params, available_models, build_model

if TYPE_CHECKING:
    import keras
    from sklearn.base import BaseEstimator

_Builder = TypeVar("_Builder", bound="KerasModelBuilder")


def params_from_config(model_type: str, config: Mapping[str, Any] | None) -> dict[str, Any]:
    """The parameters of ``model_type`` in an experiment ``config`` (layout: module doc).

    Raises:
        ConfigError: ``config`` or one of its model sections is not a mapping, or a key is
            neither a parameter of ``model_type`` nor a training setting.
    """
    accepted = set(accepted_params(model_type))
    return {k: v for k, v in split_config(config, model_type)[1].items() if k in accepted}


def split_config(
    config: Mapping[str, Any] | None, model_type: str | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """An experiment ``config`` as (training settings, model parameters); layout: module doc.

    The training part is the ``"training"`` section plus top-level training settings
    (``epochs``, ``loss_config``, ``class_weights``, ``callbacks``...), for
    :class:`hpolab.config.TrainingSection` to check. The model part holds the parameters
    of ``model_type`` and training keys a search space may also vary (``momentum``). With
    ``model_type=None`` (a model already built) the ``"model"`` section is skipped: it was
    the builder's.

    Raises:
        ConfigError: a key that is none of these, named with the closest known one.
    """
    config = _mapping("config", config or {})
    training = dict(_mapping("config.training", config.get("training") or {}))
    params: dict[str, Any] = {}
    accepted = set(accepted_params(model_type)) if model_type else set()
    settings = set(TrainingSection.model_fields) | set(GUIDE_TRAINING_KEYS) | {"class_weights"}
    sections = {"training", "model", *available_models()}
    for key, value in config.items():
        if key in accepted or (key in TRAINING_KEYS and key not in settings):
            params[key] = value
        elif key in settings:
            if key in training:
                raise ConfigError(f"config.{key}: given at the top level and in training")
            training[key] = value
        elif key not in sections:
            known = accepted | settings | set(TRAINING_KEYS) | {"training", "model"}
            raise unknown_key("config", key, known)
    for section in ("model", model_type) if model_type else ():
        for key, value in _mapping(f"config.{section}", config.get(section) or {}).items():
            if key not in accepted:
                raise unknown_key(
                    f"config.{section}", key, accepted, what=f"{model_type} parameter"
                )
            params[key] = value
    return training, params


def _mapping(field: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{field}: expected a mapping, got {type(value).__name__}")
    return value


def _check_task(task: str) -> str:
    if task not in TASKS:
        raise ConfigError(f"task: {task!r} is not one of {', '.join(TASKS)}")
    return task


class KerasModelBuilder:
    """Base of the Keras builders: parameters read at construction, model made by ``build``.

    Args:
        config: experiment config holding the model parameters (see the module doc).
        task: ``"classification"`` (softmax head) or ``"regression"`` (one linear output).
    """

    MODEL_TYPE: ClassVar[str] = ""

    def __init__(
        self, config: Mapping[str, Any] | None = None, task: str = "classification"
    ) -> None:
        self.config = config
        self.task = _check_task(task)
        self.params = params_from_config(self.MODEL_TYPE, config)
        self._model: keras.Model | None = None

    def build(
        self: _Builder,
        input_shape: Sequence[int],
        n_classes: int | None = None,
        n_outputs: int | None = None,
    ) -> _Builder:
        """Build the (uncompiled) Keras model for samples of ``input_shape``; return ``self``.

        Args:
            input_shape: shape of one sample, without the batch axis, e.g. ``(1024, 9)``.
            n_classes: classes of a classifier (``n_outputs`` is an alias).
            n_outputs: outputs of the model; a regressor predicts one target.
        """
        shape = _check_input_shape(input_shape)
        outputs = _n_outputs(self.task, n_classes, n_outputs)
        self._model = build_model(self.MODEL_TYPE, self.params, shape, self.task, outputs)
        return self

    @property
    def model(self) -> keras.Model:
        """The model made by the last :meth:`build`."""
        if self._model is None:
            raise ConfigError(
                f"{type(self).__name__}.model: no model yet; call build(input_shape, n_classes) "
                "first"
            )
        return self._model

    def __repr__(self) -> str:
        return f"{type(self).__name__}(params={self.params!r}, task={self.task!r})"


def _check_input_shape(input_shape: Sequence[int]) -> tuple[int, ...]:
    """``input_shape`` as a tuple of positive ints (numpy integers accepted)."""
    problem = ConfigError(
        f"input_shape: expected the positive sizes of one sample such as (1024, 9), "
        f"got {input_shape!r}"
    )
    if isinstance(input_shape, str) or not isinstance(input_shape, Sequence) or not input_shape:
        raise problem
    try:
        sizes = tuple(operator.index(s) for s in input_shape if not isinstance(s, bool))
    except TypeError:
        raise problem from None
    if len(sizes) != len(input_shape) or min(sizes) < 1:
        raise problem
    return sizes


def _n_outputs(task: str, n_classes: int | None, n_outputs: int | None) -> int:
    """Units of the output layer, checked against the task."""
    if task == "regression":
        if n_classes is not None:
            raise ConfigError("n_classes: only for task='classification'; a regressor has none")
        if n_outputs not in (None, 1):
            raise ConfigError(
                f"n_outputs: a regressor here predicts one target, got {n_outputs}; "
                "build one model per target"
            )
        return 1
    if n_classes is not None and n_outputs is not None and n_classes != n_outputs:
        raise ConfigError(
            f"n_classes: {n_classes} differs from n_outputs {n_outputs}; give one of them"
        )
    count = n_classes if n_classes is not None else n_outputs
    if count is None:
        raise ConfigError("n_classes: a classifier needs the number of classes, e.g. n_classes=4")
    try:
        units = operator.index(count)  # numpy integers too, not 4.0 or "4"
    except TypeError:
        units = 0
    if isinstance(count, bool) or units < 2:
        raise ConfigError(f"n_classes: a classifier needs 2 or more classes, got {count!r}")
    return units


class MLPBuilder(KerasModelBuilder):
    """Dense network (``mlp``); multichannel windows are flattened."""

    MODEL_TYPE = "mlp"


class CNN1DBuilder(KerasModelBuilder):
    """1-D convolutional network (``cnn1d``) over ``(time, channels)`` windows."""

    MODEL_TYPE = "cnn1d"


class LSTMBuilder(KerasModelBuilder):
    """(Bi)LSTM network (``lstm``) over ``(time, channels)`` windows."""

    MODEL_TYPE = "lstm"


class ResNetBuilder(KerasModelBuilder):
    """Residual network (``resnet``): 1-D for sequences, 2-D for ``(h, w, channels)``."""

    MODEL_TYPE = "resnet"


class EnsembleModel(KerasModelBuilder):
    """Keras members on the same input with averaged outputs (``ensemble``).

    ``members`` lists the model types; ``<member>__<param>`` sets a member's parameter.
    """

    MODEL_TYPE = "ensemble"


class SklearnModel:
    """Base of the scikit-learn baselines: ``.model`` is an unfitted estimator.

    Args:
        config: experiment config holding the model parameters (see the module doc).
        task: ``"classification"`` or ``"regression"``.
    """

    MODEL_TYPE: ClassVar[str] = ""

    def __init__(
        self, config: Mapping[str, Any] | None = None, task: str = "classification"
    ) -> None:
        self.config = config
        self.task = _check_task(task)
        self.params = params_from_config(self.MODEL_TYPE, config)
        # Input shape and class count are found by the estimator's fit, not needed here.
        self.model: BaseEstimator = build_model(
            self.MODEL_TYPE, self.params, input_shape=(), task=self.task, n_outputs=0
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(params={self.params!r}, task={self.task!r})"


class RandomForestModel(SklearnModel):
    """Random forest baseline (``random_forest``)."""

    MODEL_TYPE = "random_forest"


class GradientBoostingModel(SklearnModel):
    """Histogram gradient boosting baseline (``gradient_boosting``)."""

    MODEL_TYPE = "gradient_boosting"


class SVMClassifier(SklearnModel):
    """Support-vector classifier with probability outputs (``svm``); classification only."""

    MODEL_TYPE = "svm"

    def __init__(
        self, config: Mapping[str, Any] | None = None, task: str = "classification"
    ) -> None:
        if task != "classification":
            raise ConfigError(
                f"task: SVMClassifier is classification only, got {task!r}; for regression "
                "use build_model('svm', params, input_shape, 'regression', 1)"
            )
        super().__init__(config, task)
