"""Losses for imbalanced and cost-sensitive classification, usable in study configs.

Every loss accepts sparse labels (class indices, shape ``(n,)`` or ``(n, 1)``) and one-hot
labels (shape ``(n, n_classes)``), takes probabilities (softmax outputs) unless
``from_logits=True``, and is registered with Keras so a model saved as ``.keras`` loads
back with it (``safe_mode=True``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from hpolab.errors import ConfigError, unknown_key

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
    """Cross-entropy with one weight per class: ``-w_c log p_c`` for the true class ``c``.

    ``class_weights`` is a list (one weight per class, in class-index order) or a mapping
    ``{class_index: weight}``; classes a mapping leaves out weigh 1.0.
    """

    def __init__(
        self,
        class_weights: Sequence[float] | Mapping[Any, float],
        from_logits: bool = False,
        name: str = "weighted_categorical_crossentropy",
        **kwargs: Any,
    ) -> None:
        super().__init__(from_logits=from_logits, name=name, **kwargs)
        self.class_weights = weight_list(class_weights)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        probs = _probabilities(y_pred, self.from_logits)
        onehot = _one_hot(y_true, probs)
        weights = ops.convert_to_tensor(self._weights_for(probs.shape[-1]), dtype=probs.dtype)
        return -ops.sum(onehot * weights * ops.log(probs), axis=-1)

    def _weights_for(self, n_classes: int | None) -> list[float]:
        """The weights for ``n_classes`` outputs: classes not given weigh 1.0."""
        given = len(self.class_weights)
        if n_classes is None or given == n_classes:
            return self.class_weights
        if given > n_classes:
            raise ConfigError(
                f"training.loss_options.class_weights: {given} weights for a model with "
                f"{n_classes} classes; give one weight per class"
            )
        return self.class_weights + [1.0] * (n_classes - given)

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


@keras.saving.register_keras_serializable(package=_PACKAGE)
class LeakAwareLoss(CostSensitiveLoss):
    """The cost-sensitive loss named by leak: a missed leak costs ``leak_penalty``.

    ``non_leak_penalty`` is the cost of a false alarm (a non-leak sample predicted as a
    leak); ``leak_class`` is the index of the leak class (default 1).
    """

    def __init__(
        self,
        leak_penalty: float = 2.0,
        non_leak_penalty: float = 1.0,
        leak_class: int = 1,
        from_logits: bool = False,
        name: str = "leak_aware_loss",
        **kwargs: Any,
    ) -> None:
        # A saved model's config carries the parent's keys too; they are derived here.
        for derived in ("positive_class", "miss_cost", "false_alarm_cost"):
            kwargs.pop(derived, None)
        super().__init__(
            positive_class=leak_class,
            miss_cost=leak_penalty,
            false_alarm_cost=non_leak_penalty,
            from_logits=from_logits,
            name=name,
            **kwargs,
        )

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "leak_penalty": self.miss_cost,
            "non_leak_penalty": self.false_alarm_cost,
            "leak_class": self.positive_class,
        }


CUSTOM_LOSSES = {
    "focal": FocalLoss,
    "focal_loss": FocalLoss,
    "weighted_categorical_crossentropy": WeightedCategoricalCrossentropy,
    "weighted_crossentropy": WeightedCategoricalCrossentropy,
    "cost_sensitive": CostSensitiveLoss,
    "leak_aware": LeakAwareLoss,
    "leak_aware_loss": LeakAwareLoss,
}
# Keras losses that want one-hot targets, and what they become on hpolab's class indices:
# the same loss in its sparse form, or the loss applied to one-hot encoded targets.
SPARSE_FORMS = {"categorical_crossentropy": "sparse_categorical_crossentropy"}
ONE_HOT_LOSSES = (
    "categorical_focal_crossentropy",
    "categorical_hinge",
    "kl_divergence",
    "binary_crossentropy",
    "binary_focal_crossentropy",
    "hinge",
    "squared_hinge",
    "poisson",
)


def weight_list(
    weights: Sequence[float] | Mapping[Any, float],
    n_classes: int | None = None,
    classes: Sequence[Any] | None = None,
) -> list[float]:
    """Per-class weights as a list in class-index order.

    A mapping is keyed by class label or by class index (see :func:`class_indices`);
    classes it leaves out weigh 1.0. ``n_classes`` pads the list with 1.0.

    Raises:
        ConfigError: a key that is neither, or a weight that is not a number >= 0.
    """
    if isinstance(weights, str):
        raise ConfigError(
            f"class_weights: {weights!r}; use 'balanced', a list or {{class: weight}}"
        )
    if isinstance(weights, Mapping):
        index = class_indices(list(weights), classes, n_classes)
        by_index = {index[key]: _weight(value) for key, value in weights.items()}
        size = max(n_classes or 0, max(by_index, default=-1) + 1)
        return [by_index.get(i, 1.0) for i in range(size)]
    listed = [_weight(w) for w in weights]
    return listed + [1.0] * max((n_classes or 0) - len(listed), 0)


def class_indices(
    keys: Sequence[Any], classes: Sequence[Any] | None, n_classes: int | None = None
) -> dict[Any, int]:
    """The class index each key names: all keys are labels, or all are indices.

    Mixing would be ambiguous (with labels ``[1, 2]``, is ``1`` the label or the index?),
    so labels win only when every key is one; otherwise every key must be an index
    ``0 .. n_classes - 1`` (YAML and JSON keys may be strings: ``"0"``).

    Raises:
        ConfigError: a key that is neither a label nor an index.
    """
    labels = [str(c) for c in classes] if classes is not None else []
    if labels and all(str(k) in labels for k in keys):
        return {k: labels.index(str(k)) for k in keys}
    limit = n_classes if n_classes is not None else (len(labels) or None)
    found = {}
    for key in keys:
        text = str(key)
        if not text.isdigit() or (limit is not None and int(text) >= limit):
            known = f"labels {', '.join(labels)} or " if labels else ""
            span = f"0..{limit - 1}" if limit else "0, 1, ..."
            raise ConfigError(
                f"class_weights: unknown class {key!r}; use {known}class indices {span}"
            )
        found[key] = int(text)
    return found


def _weight(value: Any) -> float:
    try:
        weight = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"class_weights: {value!r} is not a number") from None
    if not np.isfinite(weight) or weight < 0:
        raise ConfigError(f"class_weights: {value!r} must be a finite number >= 0")
    return weight


@keras.saving.register_keras_serializable(package=_PACKAGE)
class OneHotTargets(keras.losses.Loss):
    """A Keras one-hot loss (``inner``, by name) applied to class-index targets."""

    def __init__(self, inner: str, name: str | None = None, **kwargs: Any) -> None:
        super().__init__(name=name or inner, **kwargs)
        self.inner = inner
        self._fn = keras.losses.get(inner)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        return self._fn(_one_hot(y_true, y_pred), y_pred)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "inner": self.inner}


def get_loss_function(
    name: str,
    labels: Sequence[int] | np.ndarray | None = None,
    n_classes: int | None = None,
    classes: Sequence[Any] | None = None,
    one_hot: bool = True,
    **config: Any,
) -> keras.losses.Loss | str:
    """The loss called ``name``: hpolab's (focal, weighted_categorical_crossentropy,
    cost_sensitive, leak_aware_loss) with ``config`` as arguments, or a Keras loss by name.

    ``class_weights="balanced"`` is computed from ``labels`` (class indices); a mapping of
    weights is keyed by class index. One-hot Keras losses (``categorical_crossentropy``)
    are returned in a form that takes class indices, which is what hpolab trains on
    (``one_hot=False``: as they are, for regression targets).
    ``classes`` (the labels, in index order) let ``leak_aware_loss`` find its leak class
    by label: ``leak_class: leak``, or by default the class labelled ``leak`` if any.

    Raises:
        ConfigError: an unknown name, or an option the loss does not take.
    """
    if name in CUSTOM_LOSSES:
        if "class_weights" in config:
            config = {
                **config,
                "class_weights": _resolve_weights(config, labels, n_classes, classes),
            }
        _check_options(name, CUSTOM_LOSSES[name], config)
        if CUSTOM_LOSSES[name] is LeakAwareLoss:
            config = {**config, "leak_class": _leak_class(config.get("leak_class"), classes)}
        if CUSTOM_LOSSES[name] is WeightedCategoricalCrossentropy and "class_weights" not in config:
            raise ConfigError(
                f"training.loss_options: {name} needs class_weights: balanced, a list or "
                "{class: weight}"
            )
        try:
            return CUSTOM_LOSSES[name](**config)
        except (TypeError, ValueError) as exc:  # e.g. gamma: abc
            raise ConfigError(f"training.loss_options: {name}: {exc}") from None
    try:
        keras.losses.get(name)
    except (ValueError, TypeError):
        known = ", ".join(sorted(set(CUSTOM_LOSSES)))
        raise ConfigError(
            f"training.loss: unknown loss {name!r}; use {known}, 'auto' or a Keras loss name"
        ) from None
    if config:
        raise ConfigError(
            f"training.loss_options: the Keras loss {name!r} takes no options; "
            f"remove {', '.join(sorted(config))}"
        )
    if one_hot and name in SPARSE_FORMS:
        return SPARSE_FORMS[name]
    if one_hot and name in ONE_HOT_LOSSES:
        return OneHotTargets(name)
    return name


def _resolve_weights(
    config: Mapping[str, Any], labels: Any, n_classes: int | None, classes: Any
) -> list[float]:
    weights = config["class_weights"]
    if weights == "balanced":
        if labels is None:
            raise ConfigError("training.loss: class_weights 'balanced' needs the training labels")
        return balanced_class_weights(labels, n_classes)
    return weight_list(weights, n_classes, classes)


def _leak_class(given: Any, classes: Sequence[Any] | None) -> int:
    """The index of the leak class: given as an index or a label, else the label ``leak``."""
    labels = [str(c) for c in classes] if classes is not None else []
    if given is None:
        return labels.index("leak") if "leak" in labels else 1
    if str(given) in labels and not isinstance(given, int):
        return labels.index(str(given))
    try:
        index = int(given)
    except (TypeError, ValueError):
        known = f"; classes are {', '.join(labels)}" if labels else ""
        raise ConfigError(
            f"training.loss_options.leak_class: unknown class {given!r}{known}"
        ) from None
    if labels and not 0 <= index < len(labels):
        raise ConfigError(f"training.loss_options.leak_class: {index} is out of range")
    return index


def _check_options(name: str, loss: type, config: Mapping[str, Any]) -> None:
    """Every option names an argument of ``loss``; the message names the one that does not."""
    import inspect

    accepted = [
        p for p in inspect.signature(loss.__init__).parameters if p not in ("self", "kwargs")
    ]
    for key in config:
        if key not in accepted:
            raise unknown_key("training.loss_options", key, accepted, f"{name} option")
