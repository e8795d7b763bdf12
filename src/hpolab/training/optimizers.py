"""Optimizers and learning-rate schedules by name, as study configs name them.

``get_learning_rate_schedule`` returns a :class:`WarmupDecaySchedule` for every kind
(constant, linear, cosine, exponential, polynomial): an optional linear warmup from
``warmup_start`` to the base rate over ``warmup_steps``, then the decay over
``decay_steps`` down to a floor. It is registered with Keras, so it is saved with the
optimizer in ``.keras`` files and loads back.
"""

from __future__ import annotations

import inspect
import math
from typing import Any

import keras
from keras import ops

from hpolab.errors import ConfigError, unknown_key

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
SCHEDULES = ("constant", "linear", "cosine", "exponential", "polynomial")
# "warmup" (linear warmup, then exponential decay by decay_rate) is the exponential kind.
SCHEDULE_NAMES = (*SCHEDULES, "warmup")
# The options each schedule uses (after aliases); any other option is an error.
_WARMUP = ("warmup_steps", "warmup_start")
_DECAY = (*_WARMUP, "decay_steps", "floor")
SCHEDULE_OPTIONS = {
    "constant": _WARMUP,
    "linear": _DECAY,
    "cosine": _DECAY,
    "polynomial": (*_DECAY, "power"),
    "exponential": (*_DECAY, "decay_rate"),
    "warmup": (*_DECAY, "decay_rate"),
}
# Other names of schedule options, as design-guide configs spell them.
_SCHEDULE_ALIASES = {
    "initial_lr": "warmup_start",
    "min_lr": "floor",
    "min_learning_rate": "floor",
}


@keras.saving.register_keras_serializable(package="hpolab")
class WarmupDecaySchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup, then a ``kind`` decay from ``base_learning_rate`` to ``floor``.

    Steps are optimizer updates (batches). After ``warmup_steps + decay_steps`` the rate
    stays at the floor (``exponential`` keeps decaying by ``decay_rate`` per
    ``decay_steps``, never below the floor).

    ``scale`` multiplies the whole schedule: reduce-on-plateau lowers it (see
    :class:`hpolab.training.callbacks.ReduceLROnPlateau`), and it is saved with the model.
    """

    def __init__(
        self,
        base_learning_rate: float,
        kind: str = "constant",
        warmup_steps: int = 0,
        decay_steps: int = 1000,
        floor: float = 0.0,
        warmup_start: float = 0.0,
        decay_rate: float = 0.5,
        power: float = 1.0,
        scale: float = 1.0,
    ) -> None:
        if kind not in SCHEDULES:
            raise ConfigError(
                f"training.lr_schedule: unknown schedule {kind!r}; use {', '.join(SCHEDULES)}"
            )
        if decay_steps < 1 or warmup_steps < 0:
            raise ConfigError("training.lr_schedule: decay_steps must be >= 1, warmup_steps >= 0")
        self.base_learning_rate = float(base_learning_rate)
        self.kind = kind
        self.warmup_steps = int(warmup_steps)
        self.decay_steps = int(decay_steps)
        self.floor = float(floor)
        self.warmup_start = float(warmup_start)
        self.decay_rate = float(decay_rate)
        self.power = float(power)
        # A variable, not a float: the training step is traced once and must see changes.
        self.scale = keras.Variable(float(scale), dtype="float32", trainable=False, name="lr_scale")

    def __call__(self, step: Any) -> Any:
        step = ops.cast(step, "float32")
        base, floor = self.base_learning_rate, self.floor
        warmup = max(self.warmup_steps, 1)
        warm = self.warmup_start + (base - self.warmup_start) * ops.minimum(step / warmup, 1.0)
        progress = ops.clip((step - self.warmup_steps) / self.decay_steps, 0.0, 1.0)
        if self.kind == "constant":
            decayed = ops.convert_to_tensor(base, "float32") + 0.0 * step
        elif self.kind == "linear":
            decayed = base - (base - floor) * progress
        elif self.kind == "cosine":
            decayed = floor + (base - floor) * 0.5 * (1.0 + ops.cos(math.pi * progress))
        elif self.kind == "polynomial":
            decayed = floor + (base - floor) * ops.power(1.0 - progress, self.power)
        else:  # exponential
            elapsed = ops.maximum(step - self.warmup_steps, 0.0) / self.decay_steps
            decayed = ops.maximum(base * ops.power(self.decay_rate, elapsed), floor)
        scale = ops.cast(self.scale, "float32")
        # A plateau-scaled rate still never decays below the floor.
        decayed = ops.maximum(decayed * scale, floor) if floor > 0 else decayed * scale
        if self.warmup_steps:
            return ops.where(step < self.warmup_steps, warm * scale, decayed)
        return decayed

    def get_config(self) -> dict[str, Any]:
        return {
            "base_learning_rate": self.base_learning_rate,
            "kind": self.kind,
            "warmup_steps": self.warmup_steps,
            "decay_steps": self.decay_steps,
            "floor": self.floor,
            "warmup_start": self.warmup_start,
            "decay_rate": self.decay_rate,
            "power": self.power,
            "scale": float(keras.ops.convert_to_numpy(self.scale)),
        }


def get_learning_rate_schedule(
    name: str, base_learning_rate: float, config: dict[str, Any] | None = None
) -> WarmupDecaySchedule:
    """The schedule ``name`` starting from ``base_learning_rate``.

    ``name``: constant, linear, cosine, exponential, polynomial, or ``warmup`` (linear
    warmup from ``initial_lr``, then exponential decay by ``decay_rate`` every
    ``decay_steps``). ``config`` keys: ``warmup_steps``, ``decay_steps`` (or
    ``total_steps``, warmup included), ``floor`` (or ``min_lr``), ``warmup_start`` (or
    ``initial_lr``), ``decay_rate`` (exponential, warmup), ``power`` (polynomial).

    Raises:
        ConfigError: an unknown name or option.
    """
    options = dict(config or {})
    for alias, key in _SCHEDULE_ALIASES.items():
        if alias in options:
            if key in options:
                raise ConfigError(f"lr_schedule_config: give {alias} or {key}, not both")
            options[key] = options.pop(alias)
    if "total_steps" in options:
        if "decay_steps" in options:
            raise ConfigError("lr_schedule_config: give total_steps or decay_steps, not both")
        total = int(options.pop("total_steps"))
        options["decay_steps"] = max(total - int(options.get("warmup_steps", 0)), 1)
    if name not in SCHEDULE_NAMES:
        raise ConfigError(
            f"training.lr_schedule: unknown schedule {name!r}; use {', '.join(SCHEDULE_NAMES)}"
        )
    for key in options:
        if key not in SCHEDULE_OPTIONS[name]:
            raise unknown_key("lr_schedule_config", key, SCHEDULE_OPTIONS[name], f"{name} option")
    kind = "exponential" if name == "warmup" else name
    try:
        return WarmupDecaySchedule(base_learning_rate, kind=kind, **options)
    except (TypeError, ValueError) as exc:  # e.g. warmup_steps: abc
        raise ConfigError(f"lr_schedule_config: {exc}") from None


_OPTIMIZER_CLASSES = {
    "adam": "Adam",
    "adamw": "AdamW",
    "sgd": "SGD",
    "rmsprop": "RMSprop",
}


def get_optimizer(
    name: str, learning_rate: float | keras.optimizers.schedules.LearningRateSchedule, **config: Any
) -> keras.optimizers.Optimizer:
    """The optimizer ``name`` (adam, adamw, sgd, rmsprop) at ``learning_rate``.

    ``config`` holds the Keras optimizer's own arguments: ``beta_1``, ``beta_2``,
    ``epsilon``, ``amsgrad`` (adam, adamw), ``weight_decay``, ``momentum`` and ``nesterov``
    (sgd), ``rho`` and ``momentum`` (rmsprop), ``clipnorm``, ``clipvalue`` (any).

    Raises:
        ConfigError: an unknown optimizer, or an argument it does not take.
    """
    if name not in _OPTIMIZER_CLASSES:
        raise ConfigError(f"optimizer: unknown optimizer {name!r}; use {', '.join(OPTIMIZERS)}")
    cls = getattr(keras.optimizers, _OPTIMIZER_CLASSES[name])
    options = {k: v for k, v in config.items() if not (k == "clipnorm" and not v)}
    _check_keys(
        "optimizer_config", options, cls, keras.optimizers.Optimizer, skip=("learning_rate",)
    )
    try:
        return cls(learning_rate=learning_rate, **options)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"optimizer_config: {name}: {exc}") from None


def accepts(optimizer: str, key: str) -> bool:
    """Whether the optimizer ``optimizer`` takes the argument ``key`` (unknown: no)."""
    if optimizer not in _OPTIMIZER_CLASSES:
        return False
    cls = getattr(keras.optimizers, _OPTIMIZER_CLASSES[optimizer])
    return key in _parameters(cls, keras.optimizers.Optimizer)


def _parameters(*classes: type) -> list[str]:
    names = [p for c in classes for p in inspect.signature(c.__init__).parameters]
    return [n for n in dict.fromkeys(names) if n not in ("self", "kwargs", "name")]


def _check_keys(field: str, options: dict[str, Any], *classes: type, skip: tuple = ()) -> None:
    """Every key of ``options`` is an argument of ``classes``; else name it, with a hint."""
    accepted = [p for p in _parameters(*classes) if p not in skip]
    for key in options:
        if key not in accepted:
            raise unknown_key(field, key, accepted, "option")
