"""Configuration values of the cached estimators, converted to the type of their default.

``model_config={"latent_dim": "3"}`` must train, cache and compare as ``latent_dim=3``, and
``"abc"`` must be refused before anything is trained or written. Each value is converted
to the type of a reference value (the key's default): int, float, bool, str, or a list of
numbers element by element; a ``None`` reference accepts anything.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from hpolab.config import TRAINING_KEYS, TrainingSection
from hpolab.errors import ConfigError

# Optimizer options among the training keys that TrainingSection has no field for; the
# values only give their types (None there means "the optimizer's own default").
_OPTIMIZER_OPTION_TYPES: dict[str, Any] = {"momentum": 0.0, "weight_decay": 0.0, "nesterov": False}


def training_defaults() -> dict[str, Any]:
    """Default of every training key (``epochs``, ``learning_rate``, ...), for its type."""
    found = dict(_OPTIMIZER_OPTION_TYPES)
    for key in TRAINING_KEYS:
        field = TrainingSection.model_fields.get(key)
        if field is not None and field.default_factory is None:
            found[key] = field.default
    return found


def space_examples(space: Mapping[str, Any]) -> dict[str, Any]:
    """One value per parameter of a search space (registry format), for its type.

    An int or float range gives its lower bound; a categorical gives its first choice when
    all choices have the same type (mixed choices say nothing about the type).
    """
    found: dict[str, Any] = {}
    for name, spec in space.items():
        if not isinstance(spec, Mapping):
            continue
        if spec.get("type") == "int":
            found[name] = int(spec["low"])
        elif spec.get("type") == "float":
            found[name] = float(spec["low"])
        elif spec.get("type") == "categorical" and spec.get("choices"):
            choices = list(spec["choices"])
            if len({type(c) for c in choices}) == 1:
                found[name] = choices[0]
    return found


def normalize_value(value: Any, reference: Any, field: str, shown: str = "default") -> Any:
    """``value`` converted to the type of ``reference``, else a one-line ConfigError.

    Args:
        value: what the user gave.
        reference: the key's default; its type decides the conversion.
        field: the name in messages, e.g. ``model_config.latent_dim``.
        shown: how the message names ``reference`` (``default`` or ``e.g.``).
    """
    if reference is None:
        return value
    note = f"{shown} {_show(reference)}"
    if isinstance(reference, (list, tuple)):
        return _normalize_sequence(value, reference, field, note)
    return _convert(value, reference, field, note)


def _convert(value: Any, reference: Any, field: str, note: str, what: str | None = None) -> Any:
    """``value`` as the type of ``reference``; a ConfigError ``field: ... (note)`` if not."""
    kind = _kind(reference)
    if kind is None:
        return value
    name, convert = kind
    try:
        return convert(value)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"{field}: {_show(value)} is not {what or name} ({note})") from None


def _normalize_sequence(
    value: Any, reference: list[Any] | tuple[Any, ...], field: str, note: str
) -> Any:
    """A list of numbers (layer sizes) element by element; a bare number stays bare.

    The container the user gave (list or tuple) is kept: builders accept both, and the
    cache stores both as JSON lists.
    """
    element = _element_reference(reference)
    if element is None:
        return value
    if not isinstance(value, (list, tuple)):
        # Builders read a bare number as one layer, so it is converted, not refused.
        plural = "a list of integers" if isinstance(element, int) else "a list of numbers"
        return _convert(value, element, field, note, what=plural)
    converted = [_convert(v, element, f"{field}[{i}]", note) for i, v in enumerate(value)]
    return tuple(converted) if isinstance(value, tuple) else converted


def _element_reference(reference: list[Any] | tuple[Any, ...]) -> Any:
    """``0`` for a sequence of ints, ``0.0`` when floats are among the numbers, else None."""
    items = list(reference)
    if not items or not all(_is_number(v) for v in items):
        return None
    return 0 if all(isinstance(v, numbers.Integral) for v in items) else 0.0


def _kind(reference: Any) -> tuple[str, Callable[[Any], Any]] | None:
    if isinstance(reference, (bool, np.bool_)):
        return "true or false", _as_bool
    if isinstance(reference, numbers.Integral):
        return "an integer", _as_int
    if isinstance(reference, numbers.Real):
        return "a finite number", _as_float
    if isinstance(reference, str):
        return "a string", _as_str
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _as_int(value: Any) -> int:
    if isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)):
        return int(value)
    number = _as_float(value)
    if not number.is_integer():
        raise ValueError(value)
    return int(number)


def _as_float(value: Any) -> float:
    if isinstance(value, str):
        number = float(value.strip())
    elif _is_number(value):
        number = float(value)
    else:
        raise TypeError(value)
    if not math.isfinite(number):
        raise ValueError(value)
    return number


def _as_bool(value: Any) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ValueError(value)


def _as_str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(value)
    return value


def _show(value: Any) -> str:
    """``repr`` without numpy's ``np.float64(...)`` wrapping."""
    return repr(value.item() if isinstance(value, np.generic) else value)
