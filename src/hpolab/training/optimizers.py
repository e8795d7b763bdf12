"""Optimizers and learning-rate schedules by name, as study configs name them.

``get_learning_rate_schedule`` returns a :class:`WarmupDecaySchedule` for every kind
(constant, linear, cosine, exponential, polynomial): an optional linear warmup from
``warmup_start`` to the base rate over ``warmup_steps``, then the decay over
``decay_steps`` down to a floor. It is registered with Keras, so it is saved with the
optimizer in ``.keras`` files and loads back.
"""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

from hpolab.errors import ConfigError

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
SCHEDULES = ("constant", "linear", "cosine", "exponential", "polynomial")


@keras.saving.register_keras_serializable(package="hpolab")
class WarmupDecaySchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup, then a ``kind`` decay from ``base_learning_rate`` to ``floor``.

    Steps are optimizer updates (batches). After ``warmup_steps + decay_steps`` the rate
    stays at the floor (``exponential`` keeps decaying by ``decay_rate`` per
    ``decay_steps``, never below the floor).
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
        if self.warmup_steps == 0:
            return decayed
        return ops.where(step < self.warmup_steps, warm, decayed)

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
        }


def get_learning_rate_schedule(
    name: str, base_learning_rate: float, config: dict[str, Any] | None = None
) -> WarmupDecaySchedule:
    """The schedule ``name`` starting from ``base_learning_rate``.

    ``config`` keys: ``warmup_steps``, ``decay_steps``, ``floor`` (or ``min_learning_rate``),
    ``warmup_start``, ``decay_rate`` (exponential), ``power`` (polynomial).
    """
    options = dict(config or {})
    if "min_learning_rate" in options:
        options["floor"] = options.pop("min_learning_rate")
    try:
        return WarmupDecaySchedule(base_learning_rate, kind=name, **options)
    except TypeError as exc:
        raise ConfigError(f"training.lr_schedule: {exc}") from None


def get_optimizer(
    name: str, learning_rate: float | keras.optimizers.schedules.LearningRateSchedule, **config: Any
) -> keras.optimizers.Optimizer:
    """The optimizer ``name`` (adam, adamw, sgd, rmsprop) at ``learning_rate``.

    ``config``: ``weight_decay`` (adamw), ``momentum`` and ``nesterov`` (sgd), ``rho`` and
    ``momentum`` (rmsprop), ``clipnorm`` (any).
    """
    clip = {"clipnorm": float(config["clipnorm"])} if config.get("clipnorm") else {}
    if name == "adam":
        return keras.optimizers.Adam(learning_rate, **clip)
    if name == "adamw":
        return keras.optimizers.AdamW(
            learning_rate, weight_decay=float(config.get("weight_decay", 0.004)), **clip
        )
    if name == "sgd":
        return keras.optimizers.SGD(
            learning_rate,
            momentum=float(config.get("momentum", 0.0)),
            nesterov=bool(config.get("nesterov", False)),
            **clip,
        )
    if name == "rmsprop":
        return keras.optimizers.RMSprop(
            learning_rate,
            rho=float(config.get("rho", 0.9)),
            momentum=float(config.get("momentum", 0.0)),
            **clip,
        )
    raise ConfigError(f"optimizer: unknown optimizer {name!r}; use {', '.join(OPTIMIZERS)}")
