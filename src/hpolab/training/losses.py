"""Losses for imbalanced and cost-sensitive classification, usable in study configs.

Every loss accepts sparse labels (class indices, shape ``(n,)`` or ``(n, 1)``) and one-hot
labels (shape ``(n, n_classes)``), takes probabilities (softmax outputs) unless
``from_logits=True``, and is registered with Keras so a model saved as ``.keras`` loads
back with it (``safe_mode=True``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from hpolab.errors import ConfigError

_EPS = 1e-7
_PACKAGE = "hpolab"


def balanced_class_weights(
    labels: Sequence[int] | np.ndarray, n_classes: int | None = None
) -> list[float]:
    """``n_samples / (n_classes * count(class))`` per class, as scikit-learn's "balanced".

    A class absent from ``labels`` gets weight 1.0 rather than infinity.
    """
    y = np.asarray(labels).reshape(-1).astype(int)
    k = int(n_classes or (y.max() + 1))
    counts = np.bincount(y, minlength=k).astype(float)
    weights = np.where(counts > 0, len(y) / (k * np.maximum(counts, 1.0)), 1.0)
    return [float(w) for w in weights]


def _one_hot(y_true: Any, y_pred: Any) -> Any:
    """``y_true`` as one-hot float labels shaped like ``y_pred``."""
    n_classes = y_pred.shape[-1]
    if len(y_true.shape) == len(y_pred.shape) and y_true.shape[-1] == n_classes and n_classes != 1:
        return ops.cast(y_true, y_pred.dtype)
    indices = ops.cast(ops.reshape(y_true, (-1,)), "int32")
    return ops.one_hot(indices, n_classes, dtype=y_pred.dtype)


def _probabilities(y_pred: Any, from_logits: bool) -> Any:
    probs = ops.softmax(y_pred, axis=-1) if from_logits else y_pred
    return ops.clip(probs, _EPS, 1.0 - _EPS)


class _HpolabLoss(keras.losses.Loss):
    """Common constructor and config of hpolab's losses."""

    def __init__(self, from_logits: bool = False, name: str | None = None, **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.from_logits = from_logits

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "from_logits": self.from_logits}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class FocalLoss(_HpolabLoss):
    """Focal loss ``-alpha_c (1 - p_c)^gamma log p_c`` (Lin et al., 2017).

    ``gamma`` down-weights easy examples (``gamma=0`` is cross-entropy); ``alpha`` is one
    weight for every class, or a list with one weight per class.
    """

    def __init__(
        self,
        alpha: float | Sequence[float] | None = None,
        gamma: float = 2.0,
        from_logits: bool = False,
        name: str = "focal_loss",
        **kwargs: Any,
    ) -> None:
        super().__init__(from_logits=from_logits, name=name, **kwargs)
        self.alpha = list(alpha) if isinstance(alpha, (list, tuple)) else alpha
        self.gamma = float(gamma)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        probs = _probabilities(y_pred, self.from_logits)
        onehot = _one_hot(y_true, probs)
        ce = -onehot * ops.log(probs)
        weight = ops.power(1.0 - probs, self.gamma)
        if self.alpha is not None:
            weight = weight * ops.convert_to_tensor(self.alpha, dtype=probs.dtype)
        return ops.sum(weight * ce, axis=-1)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "alpha": self.alpha, "gamma": self.gamma}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class WeightedCategoricalCrossentropy(_HpolabLoss):
    """Cross-entropy with one weight per class: ``-w_c log p_c`` for the true class ``c``."""

    def __init__(
        self,
        class_weights: Sequence[float],
        from_logits: bool = False,
        name: str = "weighted_categorical_crossentropy",
        **kwargs: Any,
    ) -> None:
        super().__init__(from_logits=from_logits, name=name, **kwargs)
        self.class_weights = [float(w) for w in class_weights]

    def call(self, y_true: Any, y_pred: Any) -> Any:
        probs = _probabilities(y_pred, self.from_logits)
        onehot = _one_hot(y_true, probs)
        weights = ops.convert_to_tensor(self.class_weights, dtype=probs.dtype)
        return -ops.sum(onehot * weights * ops.log(probs), axis=-1)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "class_weights": self.class_weights}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class CostSensitiveLoss(_HpolabLoss):
    """Cross-entropy plus the expected cost of the prediction under a cost matrix.

    Missing the ``positive_class`` (e.g. a leak) costs ``miss_cost``; a false alarm (another
    class predicted as positive) costs ``false_alarm_cost``; other confusions cost 1.
    Loss per sample: ``-log p_true + sum_c cost[true, c] * p_c``.
    """

    def __init__(
        self,
        positive_class: int = 1,
        miss_cost: float = 5.0,
        false_alarm_cost: float = 1.0,
        from_logits: bool = False,
        name: str = "cost_sensitive_loss",
        **kwargs: Any,
    ) -> None:
        super().__init__(from_logits=from_logits, name=name, **kwargs)
        self.positive_class = int(positive_class)
        self.miss_cost = float(miss_cost)
        self.false_alarm_cost = float(false_alarm_cost)

    def cost_matrix(self, n_classes: int) -> np.ndarray:
        """``cost[true, predicted]``: zero on the diagonal."""
        cost = np.ones((n_classes, n_classes), dtype="float32")
        np.fill_diagonal(cost, 0.0)
        pos = self.positive_class
        cost[pos, :] = self.miss_cost
        cost[:, pos] = self.false_alarm_cost
        cost[pos, pos] = 0.0
        return cost

    def call(self, y_true: Any, y_pred: Any) -> Any:
        probs = _probabilities(y_pred, self.from_logits)
        onehot = _one_hot(y_true, probs)
        cost = ops.convert_to_tensor(self.cost_matrix(int(probs.shape[-1])), dtype=probs.dtype)
        ce = -ops.sum(onehot * ops.log(probs), axis=-1)
        expected_cost = ops.sum(ops.matmul(onehot, cost) * probs, axis=-1)
        return ce + expected_cost

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "positive_class": self.positive_class,
            "miss_cost": self.miss_cost,
            "false_alarm_cost": self.false_alarm_cost,
        }


CUSTOM_LOSSES = {
    "focal": FocalLoss,
    "focal_loss": FocalLoss,
    "weighted_categorical_crossentropy": WeightedCategoricalCrossentropy,
    "weighted_crossentropy": WeightedCategoricalCrossentropy,
    "cost_sensitive": CostSensitiveLoss,
}


def get_loss_function(
    name: str, labels: Sequence[int] | np.ndarray | None = None, **config: Any
) -> keras.losses.Loss | str:
    """The loss called ``name``: hpolab's (focal, weighted_categorical_crossentropy,
    cost_sensitive) with ``config`` as arguments, or a Keras built-in by name.

    ``class_weights="balanced"`` is computed from ``labels`` (class indices).

    Raises:
        ConfigError: an unknown name or an argument the loss does not take.
    """
    if name in CUSTOM_LOSSES:
        if config.get("class_weights") == "balanced":
            if labels is None:
                raise ConfigError(
                    "training.loss: class_weights 'balanced' needs the training labels"
                )
            config = {**config, "class_weights": balanced_class_weights(labels)}
        try:
            return CUSTOM_LOSSES[name](**config)
        except TypeError as exc:
            raise ConfigError(f"training.loss: {name}: {exc}") from None
    if config:
        raise ConfigError(f"training.loss: the Keras loss {name!r} takes no options here")
    try:
        keras.losses.get(name)
    except (ValueError, TypeError):
        known = ", ".join(sorted(set(CUSTOM_LOSSES)))
        raise ConfigError(
            f"training.loss: unknown loss {name!r}; use {known}, 'auto' or a Keras loss name"
        ) from None
    return name
