"""A config search space replayed on Optuna trials.

The space is written once (in the config). ``suggest`` samples it on a live trial and
``replay`` rebuilds the same parameters from a finished trial, so retraining the best
trial never re-declares the space. Categorical choices that are not scalars (layer sizes
such as ``[128, 64]``) are stored in Optuna as their JSON text and decoded back.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hpolab.config import ParamSpec
from hpolab.errors import ConfigError

_SCALARS = (str, int, float, bool, type(None))

if TYPE_CHECKING:
    import optuna


def _encode(value: Any) -> Any:
    return value if isinstance(value, _SCALARS) else json.dumps(value)


class SearchSpace:
    """Parameters of one model type, in an order where conditions come first."""

    def __init__(self, params: Mapping[str, ParamSpec]) -> None:
        self.params = dict(params)
        self.order = _topological_order(self.params)
        # Per parameter: encoded choice -> original value (only for non-scalar choices).
        self._decode: dict[str, dict[str, Any]] = {
            name: {json.dumps(c): c for c in spec.choices or [] if not isinstance(c, _SCALARS)}
            for name, spec in self.params.items()
            if spec.type == "categorical"
        }

    def is_active(self, name: str, values: Mapping[str, Any]) -> bool:
        """Whether ``name``'s condition holds for the already chosen ``values``."""
        for parent, wanted in (self.params[name].when or {}).items():
            if parent not in values:
                return False
            options = wanted if isinstance(wanted, list) else [wanted]
            if values[parent] not in options:
                return False
        return True

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """Sample every active parameter on ``trial``; fixed values are included as is."""
        values: dict[str, Any] = {}
        for name in self.order:
            if not self.is_active(name, values):
                continue
            values[name] = tidy(self._suggest_one(trial, name, self.params[name]))
        return values

    def _suggest_one(self, trial: optuna.Trial, name: str, spec: ParamSpec) -> Any:
        if spec.type == "fixed":
            return spec.value
        if spec.type == "categorical":
            raw = trial.suggest_categorical(name, [_encode(c) for c in spec.choices or []])
            return self._decode[name].get(raw, raw) if isinstance(raw, str) else raw
        assert spec.low is not None and spec.high is not None
        if spec.type == "int":
            return trial.suggest_int(
                name, int(spec.low), int(spec.high), step=int(spec.step or 1), log=spec.log
            )
        return trial.suggest_float(name, spec.low, spec.high, step=spec.step, log=spec.log)

    def replay(self, trial_params: Mapping[str, Any]) -> dict[str, Any]:
        """The parameters a finished trial trained with, decoded, fixed values included."""
        values: dict[str, Any] = {}
        for name in self.order:
            if not self.is_active(name, values):
                continue
            spec = self.params[name]
            if spec.type == "fixed":
                values[name] = spec.value
            elif name in trial_params:
                raw = trial_params[name]
                decode = self._decode.get(name, {})
                values[name] = tidy(decode.get(raw, raw) if isinstance(raw, str) else raw)
        return values

    def grid(self) -> dict[str, list[Any]]:
        """Grid values per sampled parameter, encoded for Optuna's ``GridSampler``."""
        return {
            name: [_encode(v) for v in spec.grid_values()]
            for name, spec in self.params.items()
            if spec.type != "fixed"
        }

    def grid_size(self) -> int:
        """Number of distinct configurations a grid search visits (conditions applied)."""
        return len(self.grid_points())

    def grid_points(self) -> list[dict[str, Any]]:
        """Every distinct active configuration of the grid, in a deterministic order."""
        points: list[dict[str, Any]] = [{}]
        for name in self.order:
            spec = self.params[name]
            expanded = []
            for point in points:
                if self.is_active(name, point):
                    expanded.extend({**point, name: v} for v in spec.grid_values())
                else:
                    expanded.append(point)
            points = expanded
        unique = {json.dumps(p, sort_keys=True): p for p in points}
        return list(unique.values())

    def signature(self) -> str:
        """A stable text of the space, stored with the study to detect a changed space."""
        return json.dumps(
            {n: self.params[n].model_dump(exclude_defaults=True) for n in sorted(self.params)},
            sort_keys=True,
        )


def _topological_order(params: Mapping[str, ParamSpec]) -> list[str]:
    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in order:
            return
        if name in visiting:
            raise ConfigError(f"search_space.{name}.when: conditions form a cycle")
        visiting.add(name)
        for parent in params[name].when or {}:
            visit(parent)
        visiting.discard(name)
        order.append(name)

    for name in params:
        visit(name)
    return order


def tidy(value: Any) -> Any:
    """``value`` without binary noise: a stepped float such as 0.30000000000000004
    becomes 0.3 (12 significant digits), in lists too; anything else as it is."""
    if isinstance(value, float) and math.isfinite(value):
        return float(f"{value:.12g}")
    if isinstance(value, list):
        return [tidy(v) for v in value]
    return value


def params_key(params: Mapping[str, Any]) -> str:
    """A canonical text of a parameter set, to recognise duplicates."""
    return json.dumps(dict(params), sort_keys=True, default=str)
