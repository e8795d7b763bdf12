"""Sampler and pruner factories: config names -> Optuna objects."""

from __future__ import annotations

import importlib.util
import itertools
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import optuna

from hpolab.errors import ConfigError
from hpolab.search.space import SearchSpace


class OrderedGridSampler(optuna.samplers.GridSampler):
    """Grid sampler that visits the points in order: sorted keys, product of values.

    Optuna's grid sampler shuffles its grid (useful when a study runs fewer trials than
    points); an exhaustive search reads better, and compares between runs, in a fixed order.
    Trial *i* of a fresh study gets point *i*.
    """

    def __init__(self, search_space: Mapping[str, Sequence[Any]], seed: int | None = None) -> None:
        super().__init__(search_space, seed=seed)
        self._all_grids = list(itertools.product(*self._search_space.values()))


def make_sampler(
    name: str, space: SearchSpace, seed: int | None, *, ordered_grid: bool = False
) -> optuna.samplers.BaseSampler:
    """The Optuna sampler called ``name`` (grid, random, tpe, gp, cmaes).

    ``ordered_grid`` makes the grid sampler visit points in product order, unshuffled.
    """
    with warnings.catch_warnings():
        # TPE's multivariate/group options are marked experimental by Optuna.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if name == "grid":
            grid_class = OrderedGridSampler if ordered_grid else optuna.samplers.GridSampler
            return grid_class(space.grid(), seed=seed)
        if name == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if name == "tpe":
            return optuna.samplers.TPESampler(
                seed=seed, multivariate=True, group=True, constant_liar=True
            )
        if name == "gp":
            if importlib.util.find_spec("torch") is None:
                raise ConfigError(
                    "study.sampler: 'gp' needs PyTorch; install it with "
                    'pip install -e ".[gp]" or choose tpe'
                )
            return optuna.samplers.GPSampler(seed=seed)
        if name == "cmaes":
            if importlib.util.find_spec("cmaes") is None:
                raise ConfigError(
                    "study.sampler: 'cmaes' needs the cmaes package (pip install cmaes)"
                )
            # Categorical parameters fall back to random sampling, as CMA-ES is continuous.
            return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    raise ConfigError(
        f"study.sampler: unknown sampler {name!r}; use grid, random, tpe, gp or cmaes"
    )


def make_pruner(name: str, max_epochs: int, warmup_steps: int = 2) -> optuna.pruners.BasePruner:
    """The Optuna pruner called ``name`` (none, median, hyperband).

    Steps are epochs, or folds when a study cross-validates (``max_epochs`` = folds).
    """
    if name == "none":
        return optuna.pruners.NopPruner()
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=warmup_steps)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=1, max_resource=max(max_epochs, 3), reduction_factor=3
        )
    raise ConfigError(f"study.pruner: unknown pruner {name!r}; use none, median or hyperband")
