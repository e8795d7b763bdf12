"""Exhaustive grid search over plain value lists, as an Optuna study.

The cached estimators (:mod:`hpolab.estimators`) search their grids here, with the same
:class:`SearchSpace` and grid sampler as studies, so every grid point is an Optuna trial
that can be inspected afterwards (``optuna-dashboard`` on the search database, or
:func:`load_grid_trials`). A fresh search visits the points in a deterministic order:
sorted keys, product of values (trial *i* point *i*, see :class:`OrderedGridSampler`).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import optuna

from hpolab.config import ParamSpec
from hpolab.errors import ConfigError, TrialFailed
from hpolab.search.samplers import make_sampler
from hpolab.search.space import SearchSpace

# Called with (index, params) -> (objective value, extra values to record on the trial).
GridEvaluate = Callable[[int, dict[str, Any]], tuple[float, dict[str, Any]]]


@dataclass
class GridTrial:
    """One evaluated grid point, as plain data."""

    number: int
    params: dict[str, Any]
    state: str  # "complete" or "failed"
    value: float | None
    attrs: dict[str, Any] = field(default_factory=dict)


def grid_points(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of ``grid``: sorted keys, product of values."""
    keys = sorted(grid)
    return [
        dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(grid[k] for k in keys))
    ]


def grid_space(grid: Mapping[str, Sequence[Any]]) -> SearchSpace:
    """The :class:`SearchSpace` of ``grid``: one categorical parameter per key."""
    params: dict[str, ParamSpec] = {}
    for key in sorted(grid):
        values = list(grid[key])
        if not values:
            raise ConfigError(f"param_grid.{key}: the list of values is empty; give at least one")
        try:
            params[key] = ParamSpec(type="categorical", choices=values)
        except ValueError as exc:
            raise ConfigError(f"param_grid.{key}: {exc}") from None
    return SearchSpace(params)


@contextmanager
def _optuna_quiet() -> Iterator[None]:
    # Optuna logs every finished trial at INFO; callers decide what to print.
    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(previous)


def run_grid_search(
    grid: Mapping[str, Sequence[Any]],
    evaluate: GridEvaluate,
    *,
    direction: str,
    storage: str | None,
    study_name: str,
    on_trial: Callable[[GridTrial], None] | None = None,
) -> list[GridTrial]:
    """Evaluate every point of ``grid`` once, in order, as trials of a fresh Optuna study.

    A study of the same name in ``storage`` is replaced: the caller decides when a search
    must run again. A point whose ``evaluate`` raises :class:`TrialFailed` is recorded as
    failed and the search goes on; ``KeyboardInterrupt`` stops it (the trial is failed).
    """
    space = grid_space(grid)
    with _optuna_quiet():
        if storage is not None:
            with suppress(KeyError):
                optuna.delete_study(study_name=study_name, storage=storage)
        study = optuna.create_study(
            study_name=study_name,
            storage=storage,
            sampler=make_sampler("grid", space, seed=0, ordered_grid=True),
            direction=direction,
        )
        results: list[GridTrial] = []

        def objective(trial: optuna.Trial) -> float:
            params = space.suggest(trial)
            # The decoded values, so the stored trial reads back without the space.
            trial.set_user_attr("params", params)
            try:
                value, attrs = evaluate(trial.number, params)
            except TrialFailed as exc:
                trial.set_user_attr("error", str(exc))
                results.append(GridTrial(trial.number, params, "failed", None, {"error": str(exc)}))
                if on_trial:
                    on_trial(results[-1])
                raise
            for key, attr in attrs.items():
                trial.set_user_attr(key, attr)
            results.append(GridTrial(trial.number, params, "complete", value, dict(attrs)))
            if on_trial:
                on_trial(results[-1])
            return value

        study.optimize(objective, n_trials=len(grid_points(grid)), catch=(TrialFailed,))
    return results


def load_grid_trials(storage: str, study_name: str) -> list[GridTrial]:
    """The trials of a stored grid search (tuples in parameters come back as lists)."""
    with _optuna_quiet():
        study = optuna.load_study(study_name=study_name, storage=storage)
    trials = []
    for t in study.trials:
        attrs = dict(t.user_attrs)
        params = attrs.pop("params", dict(t.params))
        state = "complete" if t.state.name == "COMPLETE" else t.state.name.lower()
        trials.append(GridTrial(t.number, params, state, t.value, attrs))
    return trials
