"""Sampler and pruner factories: config names -> Optuna objects."""

from __future__ import annotations

import importlib.util
import itertools
import math
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

import numpy as np
import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.search_space import IntersectionSearchSpace

from hpolab.errors import ConfigError
from hpolab.search.budget import TrialsRead
from hpolab.search.space import SearchSpace, tidy


class OrderedGridSampler(optuna.samplers.GridSampler):
    """Grid sampler that visits the points in order: sorted keys, product of values.

    Optuna's grid sampler shuffles its grid (useful when a study runs fewer trials than
    points); an exhaustive search reads better, and compares between runs, in a fixed order.
    Trial *i* of a fresh study gets point *i*.
    """

    def __init__(self, search_space: Mapping[str, Sequence[Any]], seed: int | None = None) -> None:
        super().__init__(search_space, seed=seed)
        self._all_grids = list(itertools.product(*self._search_space.values()))


class _Wrapping(optuna.samplers.BaseSampler):
    """A sampler that hands every call to the sampler ``inner`` names (subclasses change
    what they need)."""

    inner: optuna.samplers.BaseSampler

    def before_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self.inner.before_trial(study, trial)

    def infer_relative_search_space(
        self, study: optuna.Study, trial: optuna.trial.FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self.inner.infer_relative_search_space(study, trial)

    def sample_relative(
        self,
        study: optuna.Study,
        trial: optuna.trial.FrozenTrial,
        search_space: dict[str, BaseDistribution],
    ) -> dict[str, Any]:
        return self.inner.sample_relative(study, trial, search_space)

    def sample_independent(
        self,
        study: optuna.Study,
        trial: optuna.trial.FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self.inner.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(
        self,
        study: optuna.Study,
        trial: optuna.trial.FrozenTrial,
        state: optuna.trial.TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self.inner.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.inner.reseed_rng()


class TrialSeededSampler(_Wrapping):
    """A sampler seeded afresh for every trial from the study seed and the trial number.

    Workers sharing a study each hold a sampler; seeded alike, workers starting together
    would draw the same start-up points. Trial numbers are unique in the storage, so a
    seed derived from them differs between workers with no coordination, and one worker
    still repeats exactly (trial *n* always gets the same seed), resumed or not.
    """

    def __init__(self, factory: Callable[[int], optuna.samplers.BaseSampler], seed: int) -> None:
        self._factory = factory
        self._seed = seed
        self.inner = factory(seed)

    @property
    def current(self) -> optuna.samplers.BaseSampler:
        """The Optuna sampler of the current (or last) trial."""
        return self.inner

    def for_trial(self, number: int) -> int:
        """The seed of trial ``number``."""
        state = np.random.SeedSequence([self._seed, number]).generate_state(1)
        return int(state[0])

    def before_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        previous, self.inner = self.inner, self._factory(self.for_trial(trial.number))
        keep_search_space(previous, self.inner)
        self.inner.before_trial(study, trial)


def keep_search_space(previous: object, fresh: object) -> None:
    """Give ``fresh`` (a sampler made for the next trial) the search space ``previous``
    inferred, if both are of one kind.

    TPE and GP infer the space from every finished trial and keep it, adding only the
    trials that finished since; a sampler made afresh would read every trial again, each
    trial (milliseconds, growing with the study). What is kept depends only on the
    trials, never on the seed. The attribute is Optuna's own: an Optuna without it keeps
    nothing.
    """
    if type(previous) is not type(fresh):
        return
    for name, value in vars(previous).items():
        if isinstance(value, IntersectionSearchSpace) and isinstance(
            getattr(fresh, name, None), IntersectionSearchSpace
        ):
            setattr(fresh, name, value)


def center_of(distribution: BaseDistribution) -> Any:
    """The middle of a numeric range (in log space for a log range), on its step; None
    for a categorical parameter (its choices have no middle)."""
    if not isinstance(distribution, (FloatDistribution, IntDistribution)):
        return None
    low, high = distribution.low, distribution.high
    if distribution.log:
        middle = math.exp((math.log(low) + math.log(high)) / 2)
    else:
        middle = (low + high) / 2
    step = distribution.step
    if step is not None:
        middle = low + round((middle - low) / step) * step
    if isinstance(distribution, IntDistribution):
        return int(min(high, max(low, round(middle))))
    return float(min(high, max(low, tidy(middle))))  # 1e-3, not 0.0010000000000000002


class CenterFirstSampler(_Wrapping):
    """Trial 0 of a study tries the middle of every numeric range; any other trial, and
    trial 0's categorical parameters, are the wrapped sampler's.

    A search's first result then comes from the configuration least likely to be extreme
    (CMA-ES starts its search there too) instead of a random draw; the sampler goes on as
    usual after it. Trial numbers are unique in the storage, so exactly one trial of a
    study, whichever worker runs it, is the center. A configuration queued as trial 0
    (``enqueue_trial``) keeps its values.
    """

    def __init__(self, inner: optuna.samplers.BaseSampler) -> None:
        self.inner = inner

    def infer_relative_search_space(
        self, study: optuna.Study, trial: optuna.trial.FrozenTrial
    ) -> dict[str, BaseDistribution]:
        if trial.number == 0:
            return {}  # every parameter goes through sample_independent
        return self.inner.infer_relative_search_space(study, trial)

    def sample_relative(
        self,
        study: optuna.Study,
        trial: optuna.trial.FrozenTrial,
        search_space: dict[str, BaseDistribution],
    ) -> dict[str, Any]:
        if trial.number == 0:
            return {}  # the inner sampler was not asked for its space (TPE asserts it was)
        return self.inner.sample_relative(study, trial, search_space)

    def sample_independent(
        self,
        study: optuna.Study,
        trial: optuna.trial.FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        if trial.number == 0 and not isinstance(param_distribution, CategoricalDistribution):
            return center_of(param_distribution)
        return self.inner.sample_independent(study, trial, param_name, param_distribution)


def make_sampler(
    name: str,
    space: SearchSpace,
    seed: int | None,
    *,
    ordered_grid: bool = False,
    startup_trials: int | None = None,
    center_first: bool = False,
) -> optuna.samplers.BaseSampler:
    """The Optuna sampler called ``name`` (grid, random, tpe, gp, cmaes).

    With a seed, every sampler but grid is seeded per trial (:class:`TrialSeededSampler`),
    so parallel workers never draw the same points. ``ordered_grid`` makes the grid
    sampler visit points in product order, unshuffled. ``startup_trials``: random trials
    before tpe or gp model the space (None: Optuna's default, 10). ``center_first``: trial
    0 tries the middle of the space (:class:`CenterFirstSampler`; not for grid).
    """
    options = {"ordered_grid": ordered_grid, "startup_trials": startup_trials}
    sampler: optuna.samplers.BaseSampler
    if seed is not None and name != "grid":
        factory = partial(_plain_sampler, name, space, **options)
        factory(seed)  # fails now if the sampler cannot be made (e.g. gp without torch)
        sampler = TrialSeededSampler(factory, seed)
    else:
        sampler = _plain_sampler(name, space, seed, **options)
    if center_first and name != "grid":
        return CenterFirstSampler(sampler)
    return sampler


def _plain_sampler(
    name: str,
    space: SearchSpace,
    seed: int | None,
    *,
    ordered_grid: bool = False,
    startup_trials: int | None = None,
) -> optuna.samplers.BaseSampler:
    startup = {} if startup_trials is None else {"n_startup_trials": startup_trials}
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
                seed=seed, multivariate=True, group=True, constant_liar=True, **startup
            )
        if name == "gp":
            if importlib.util.find_spec("torch") is None:
                raise ConfigError(
                    "study.sampler: 'gp' needs PyTorch; install it with "
                    'pip install -e ".[gp]" or choose tpe'
                )
            return optuna.samplers.GPSampler(seed=seed, **startup)
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


# How long a median pruner trusts its read of the finished trials during one trial.
SNAPSHOT_SECONDS = 5.0


class MedianPruner(optuna.pruners.MedianPruner):
    """Optuna's median rule, reading the study's finished trials once per trial (at most
    every :data:`SNAPSHOT_SECONDS`) instead of at every epoch.

    Optuna's pruner reads every trial from the storage at each report, unfinished ones
    with their curves: a few milliseconds, as long as an epoch of a small model. Finished
    trials do not change, and with one worker none finishes while a trial trains, so the
    decisions are Optuna's own; workers sharing a study see each other's trials finished
    up to that long ago. A step within the warm-up is not pruned without a read at all.
    """

    def __init__(self, n_startup_trials: int, n_warmup_steps: int) -> None:
        super().__init__(n_startup_trials=n_startup_trials, n_warmup_steps=n_warmup_steps)
        self._read_for: tuple[str, int] | None = None
        self._read_at = 0.0
        self._finished: list[optuna.trial.FrozenTrial] = []
        self._offered: tuple[str, list[optuna.trial.FrozenTrial], float] | None = None

    def offer(self, study_name: str, trials: Sequence[optuna.trial.FrozenTrial]) -> None:
        """A read of the study's trials made just after a trial ended: the next trial
        decides on it instead of reading the storage again (while it is younger than
        :data:`SNAPSHOT_SECONDS`). With one worker nothing else finishes in between, so
        the decisions stay Optuna's own; the read costs as much as the trial's pruning."""
        complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
        self._offered = (study_name, complete, time.monotonic())

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        step = trial.last_step
        if step is None or step < self._n_warmup_steps:
            return False  # what Optuna's rule answers there, without reading the storage
        now = time.monotonic()
        key = (study.study_name, trial.number)
        if key != self._read_for or now - self._read_at > SNAPSHOT_SECONDS:
            self._finished, self._read_at = self._finished_trials(study, key, now)
            self._read_for = key
        return super().prune(TrialsRead(study, self._finished), trial)  # type: ignore[arg-type]

    def _finished_trials(
        self, study: optuna.Study, key: tuple[str, int], now: float
    ) -> tuple[list[optuna.trial.FrozenTrial], float]:
        """The finished trials for ``key``'s decisions and when they were read: the offered
        read if it is recent and of this study, for a trial's first decision."""
        offered, self._offered = self._offered, None
        if offered is not None:
            name, trials, read_at = offered
            if name == key[0] and key != self._read_for and now - read_at <= SNAPSHOT_SECONDS:
                return trials, read_at
        complete = (optuna.trial.TrialState.COMPLETE,)
        return study.get_trials(deepcopy=False, states=complete), now


def make_pruner(
    name: str, max_epochs: int, warmup_steps: int | None = None
) -> optuna.pruners.BasePruner:
    """The Optuna pruner called ``name`` (none, median, hyperband).

    Steps are epochs, or folds when a study cross-validates (``max_epochs`` = folds).
    ``warmup_steps``: steps before the median rule may prune (default 2); hyperband's
    minimum resource (default 1).
    """
    if name == "none":
        return optuna.pruners.NopPruner()
    if name == "median":
        warmup = 2 if warmup_steps is None else warmup_steps
        return MedianPruner(n_startup_trials=4, n_warmup_steps=warmup)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=max(1, warmup_steps or 1),
            max_resource=max(max_epochs, (warmup_steps or 1) + 2, 3),
            reduction_factor=3,
        )
    raise ConfigError(f"study.pruner: unknown pruner {name!r}; use none, median or hyperband")
