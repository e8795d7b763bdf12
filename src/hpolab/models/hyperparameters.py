"""Define-by-run search spaces: the ``hp`` a builder of one argument declares its space with.

``hp.Int``, ``hp.Float``, ``hp.Choice``, ``hp.Boolean`` and ``hp.Fixed`` as in KerasTuner,
backed by whatever draws the values: an Optuna trial during the search, a finished
trial's params when the final model is rebuilt (:class:`Replay`, as Optuna's
``FixedTrial``: the best trial's architecture exactly), or a probe that takes the first
value of each range (the build before the search, and the discovery of a grid). Loops and
conditions are plain Python around the calls.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from hpolab.errors import ConfigError

_SCALARS = (str, int, float, bool, type(None))


class ValueSource(Protocol):
    """What draws the values: ``optuna.Trial``, ``optuna.trial.FixedTrial``, a probe."""

    def suggest_int(self, name: str, low: int, high: int, *, step: int, log: bool) -> int: ...

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None, log: bool
    ) -> float: ...

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any: ...


def encode_choice(value: Any) -> Any:
    """A choice as Optuna stores it: scalars as they are, lists and dicts as JSON text."""
    return value if isinstance(value, _SCALARS) else json.dumps(value)


def decode_choice(value: Any) -> Any:
    """The inverse of :func:`encode_choice` (JSON text of a list or dict back to it)."""
    if isinstance(value, str) and value[:1] in "[{":
        try:
            decoded = json.loads(value)
        except ValueError:
            return value
        if isinstance(decoded, (list, dict)):
            return decoded
    return value


class HyperParameters:
    """The ``hp`` of a define-by-run builder ``build(hp) -> keras.Model``.

    Attributes:
        values: the values drawn so far, by name (``hp.Fixed`` ones included).
        domains: each declared name's range, as a search-space entry.
        input_shape: shape of one input row as the model sees it (read-only).
        n_outputs: number of classes, or 1 for regression (read-only).
        task: ``"classification"`` or ``"regression"`` (read-only).
    """

    def __init__(
        self,
        source: ValueSource,
        *,
        input_shape: Sequence[int],
        n_outputs: int,
        task: str,
        builder: str = "the builder",
    ) -> None:
        self._source = source
        self._builder = builder
        self._input_shape = tuple(int(d) for d in input_shape)
        self._n_outputs = int(n_outputs)
        self._task = task
        self.values: dict[str, Any] = {}
        self.domains: dict[str, dict[str, Any]] = {}

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self._input_shape

    @property
    def n_outputs(self) -> int:
        return self._n_outputs

    @property
    def task(self) -> str:
        return self._task

    def Int(  # noqa: N802 - KerasTuner's names
        self, name: str, low: int, high: int, step: int = 1, log: bool = False
    ) -> int:
        """An integer from ``low`` to ``high`` (inclusive), every ``step``, or log-uniform."""
        low, high, step = _whole(name, "low", low), _whole(name, "high", high), int(step)
        self._check_range(name, "Int", low, high, step, log)
        domain = {"type": "int", "low": low, "high": high, "step": step, "log": bool(log)}
        if self._known(name, domain):
            return self.values[name]
        value = self._source.suggest_int(name, low, high, step=step, log=bool(log))
        return self._keep(name, int(value))

    def Float(  # noqa: N802
        self,
        name: str,
        low: float,
        high: float,
        step: float | None = None,
        log: bool = False,
    ) -> float:
        """A float from ``low`` to ``high``, every ``step`` if given, or log-uniform."""
        low, high = float(low), float(high)
        self._check_range(name, "Float", low, high, step, log)
        domain = {"type": "float", "low": low, "high": high, "step": step, "log": bool(log)}
        if self._known(name, domain):
            return self.values[name]
        value = self._source.suggest_float(name, low, high, step=step, log=bool(log))
        return self._keep(name, float(f"{float(value):.12g}"))

    def Choice(self, name: str, values: Sequence[Any]) -> Any:  # noqa: N802
        """One of ``values`` (numbers, strings, booleans, or lists such as layer sizes)."""
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
            raise self._error(name, "Choice", "values must be a non-empty list")
        choices = list(values)
        domain = {"type": "categorical", "choices": choices}
        if self._known(name, domain):
            return self.values[name]
        raw = self._source.suggest_categorical(name, [encode_choice(c) for c in choices])
        return self._keep(name, decode_choice(raw))

    def Boolean(self, name: str) -> bool:  # noqa: N802
        """``True`` or ``False``."""
        return bool(self.Choice(name, [False, True]))

    def Fixed(self, name: str, value: Any) -> Any:  # noqa: N802
        """A value that is not searched but recorded with the others."""
        domain = {"type": "fixed", "value": value}
        if self._known(name, domain):
            return self.values[name]
        return self._keep(name, value)

    def get(self, name: str) -> Any:
        """The value already drawn for ``name``."""
        if name not in self.values:
            raise self._error(name, "get", "not declared yet")
        return self.values[name]

    def _known(self, name: str, domain: dict[str, Any]) -> bool:
        """Whether ``name`` was declared before (same range: its value is reused)."""
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{self._builder}: a hyperparameter needs a non-empty name")
        before = self.domains.get(name)
        if before is None:
            self.domains[name] = domain
            return False
        if before != domain:
            raise ConfigError(
                f"{self._builder}: hyperparameter {name!r} is declared twice with different "
                f"ranges ({_describe(before)}, then {_describe(domain)}); give each its own name"
            )
        return True

    def _keep(self, name: str, value: Any) -> Any:
        self.values[name] = value
        return value

    def _check_range(
        self, name: str, kind: str, low: float, high: float, step: float | None, log: bool
    ) -> None:
        if low > high:
            raise self._error(name, kind, f"low {low:g} is above high {high:g}")
        if step is not None and step <= 0:
            raise self._error(name, kind, f"step must be positive, not {step:g}")
        if log and (low <= 0 or (step is not None and step != 1)):
            raise self._error(name, kind, "log needs low > 0 and no step")

    def _error(self, name: str, kind: str, why: str) -> ConfigError:
        return ConfigError(f"{self._builder}: hp.{kind}({name!r}): {why}")


def _whole(name: str, field: str, value: Any) -> int:
    if isinstance(value, bool) or int(value) != value:
        raise ConfigError(f"hp.Int({name!r}): {field} must be a whole number, not {value!r}")
    return int(value)


def _describe(domain: Mapping[str, Any]) -> str:
    kind = domain["type"]
    if kind == "categorical":
        return f"one of {domain['choices']}"
    if kind == "fixed":
        return f"fixed {domain['value']!r}"
    text = f"{domain['low']:g}..{domain['high']:g}"
    if domain.get("step") not in (None, 1):
        text += f" step {domain['step']:g}"
    return text + (" log" if domain.get("log") else "")


class Probe:
    """A value source that draws nothing: the first value of each range, or the value
    ``forced`` for a name. Used to build once before the search and to discover a grid."""

    def __init__(self, forced: Mapping[str, Any] | None = None) -> None:
        self.forced = dict(forced or {})

    def suggest_int(self, name: str, low: int, high: int, *, step: int, log: bool) -> int:
        return int(self.forced.get(name, low))

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None, log: bool
    ) -> float:
        return float(self.forced.get(name, low))

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        return encode_choice(self.forced[name]) if name in self.forced else choices[0]


class Replay:
    """A value source returning a finished trial's params (decoded values) by name."""

    def __init__(self, params: Mapping[str, Any], builder: str = "the builder") -> None:
        self.params = dict(params)
        self.builder = builder

    def _get(self, name: str) -> Any:
        if name not in self.params:
            raise ConfigError(
                f"{self.builder}: declares {name!r}, which the stored trial does not have "
                f"(it has {', '.join(sorted(self.params)) or 'none'}); was the builder changed?"
            )
        return self.params[name]

    def suggest_int(self, name: str, low: int, high: int, *, step: int, log: bool) -> int:
        return int(self._get(name))

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None, log: bool
    ) -> float:
        return float(self._get(name))

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        return encode_choice(self._get(name))


def finite_values(name: str, domain: Mapping[str, Any]) -> list[Any]:
    """Every value of a finite range (a grid needs them); an error for a continuous one."""
    kind = domain["type"]
    if kind == "categorical":
        return list(domain["choices"])
    if kind == "fixed":
        return [domain["value"]]
    if kind == "int" and not domain["log"]:
        return list(range(domain["low"], domain["high"] + 1, domain["step"]))
    if kind == "float" and domain.get("step"):
        count = int(round((domain["high"] - domain["low"]) / domain["step"])) + 1
        return [float(f"{domain['low'] + i * domain['step']:.12g}") for i in range(count)]
    raise ConfigError(
        f"study.sampler: grid needs finite ranges; hyperparameter {name!r} "
        f"({_describe(domain)}) has none: give it a step, make it a Choice, or use another "
        "sampler"
    )
