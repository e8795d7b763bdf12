"""Tuners in the scikit-learn style, on the same search code as studies.

``GridSearchTuner(param_grid, cv=5)``, ``RandomSearchTuner(param_distributions, n_iter,
cv=5)`` and ``HyperparameterTuner(method="bayesian", **space)`` sample a
:class:`~hpolab.search.space.SearchSpace` with the grid, random or TPE sampler of
:mod:`hpolab.search.samplers` and score each configuration by cross-validation
(:func:`hpolab.training.cross_validation.evaluate_with_cross_validation`). ``search(model,
X, y)`` takes a scikit-learn estimator (its ``set_params`` receives the parameters) or a
model type of the registry (``"mlp"``, ``"cnn1d"``: model and training parameters).

Spaces use the study-config syntax: a list is a set of choices, ``{low, high, log, step}``
a range, a scalar a fixed value.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import optuna
from pydantic import ValidationError

from hpolab.config import ParamSpec
from hpolab.errors import ConfigError, TrialFailed
from hpolab.models.registry import default_search_space
from hpolab.search.samplers import make_sampler
from hpolab.search.space import SearchSpace
from hpolab.training.baselines import with_params
from hpolab.training.cross_validation import evaluate_with_cross_validation
from hpolab.training.result import MappingResult

METHODS = {"grid": "grid", "random": "random", "bayesian": "tpe", "tpe": "tpe"}


def suggest_search_space(model_type: str) -> dict[str, Any]:
    """The default search space of a registry model type (what a study searches)."""
    return default_search_space(model_type)


@dataclass
class TuningResult(MappingResult):
    """Best parameters and score (mean over folds, higher is better) and every trial.

    Also read as a mapping: ``result["best_params"]``, ``result["best_score"]``.
    """

    mapping_keys: ClassVar[tuple[str, ...]] = ("best_params", "best_score", "results")

    best_params: dict[str, Any]
    best_score: float
    results: list[dict[str, Any]] = field(default_factory=list)


class HyperparameterTuner:
    """Search ``space`` with ``method`` (grid, random or bayesian) and cross-validation.

    Args:
        method: ``grid`` (every combination), ``random`` or ``bayesian`` (TPE).
        n_iter: configurations to try (random, bayesian; default 20).
        cv: number of folds; ``cv_method`` the splitter (default stratified k-fold for
            classification, k-fold for regression).
        scoring: ``accuracy``, ``f1_macro``, ``r2``, ``neg_rmse``, ``neg_mae`` or any
            scikit-learn scorer name (``f1_weighted``, ``roc_auc_ovr``, ...).
        space: the parameters, e.g. ``n_estimators=[50, 100]``,
            ``learning_rate={"low": 1e-4, "high": 1e-2, "log": True}``; numpy values
            (``np.logspace(-5, 2, 20)``) are taken as the Python numbers they hold.
    """

    def __init__(
        self,
        method: str = "bayesian",
        n_iter: int = 20,
        cv: int = 5,
        cv_method: str | None = None,
        scoring: str | None = None,
        random_state: int | None = 0,
        **space: Any,
    ) -> None:
        if method not in METHODS:
            raise ConfigError(f"method: {method!r} is not one of grid, random, bayesian")
        if not space:
            raise ConfigError("space: give at least one parameter to search")
        self.method = method
        self.n_iter = n_iter
        self.cv = cv
        self.cv_method = cv_method
        self.scoring = scoring
        self.random_state = random_state
        self.space = _space(space)

    def search(self, model: Any, X: Any, y: Any, groups: np.ndarray | None = None) -> TuningResult:
        """Try configurations on ``model`` and return the best (also set as attributes)."""
        try:
            sampler = make_sampler(METHODS[self.method], self.space, self.random_state)
            n_trials = self.space.grid_size() if self.method == "grid" else self.n_iter
        except ValueError as exc:  # a float range without a step cannot be a grid
            raise ConfigError(f"param_grid: {exc}") from None
        previous = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(logging.WARNING)
        try:
            study = optuna.create_study(direction="maximize", sampler=sampler)
            # A candidate whose loss diverges fails its own trial; the search goes on.
            study.optimize(
                lambda trial: self._score(trial, model, X, y, groups),
                n_trials=n_trials,
                catch=(TrialFailed,),
            )
        finally:
            optuna.logging.set_verbosity(previous)
        if not any(t.value is not None for t in study.trials):
            raise TrialFailed("every configuration failed to train; lower the learning rate")
        results = [
            {"params": t.user_attrs["params"], "score": t.value, **t.user_attrs["cv"]}
            for t in study.trials
            if t.value is not None
        ]
        best = study.best_trial
        self.study_ = study
        self.best_params_ = dict(best.user_attrs["params"])
        self.best_score_ = float(best.value)
        self.results_ = results
        return TuningResult(self.best_params_, self.best_score_, results)

    def _score(
        self, trial: optuna.Trial, model: Any, X: Any, y: Any, groups: np.ndarray | None
    ) -> float:
        params = self.space.suggest(trial)
        trial.set_user_attr("params", params)
        if isinstance(model, str):
            candidate, builder_params = model, params
        else:
            candidate, builder_params = with_params(model, params, field="space"), None
        result = evaluate_with_cross_validation(
            candidate,
            X,
            y,
            cv_method=self.cv_method,
            scoring=self.scoring,
            n_splits=self.cv,
            groups=groups,
            params=builder_params,
            random_state=self.random_state,
        )
        trial.set_user_attr("cv", {"std": result.std, "scores": result.scores})
        return result.mean


class GridSearchTuner(HyperparameterTuner):
    """Every combination of ``param_grid`` (``{name: [values]}``), scored by CV."""

    def __init__(self, param_grid: Mapping[str, Any], cv: int = 5, **options: Any) -> None:
        super().__init__(method="grid", cv=cv, **options, **dict(param_grid))


class RandomSearchTuner(HyperparameterTuner):
    """``n_iter`` random draws from ``param_distributions``, scored by CV."""

    def __init__(
        self,
        param_distributions: Mapping[str, Any],
        n_iter: int = 20,
        cv: int = 5,
        **options: Any,
    ) -> None:
        super().__init__(
            method="random", n_iter=n_iter, cv=cv, **options, **dict(param_distributions)
        )


def _space(raw: Mapping[str, Any]) -> SearchSpace:
    params: dict[str, ParamSpec] = {}
    for name, spec in raw.items():
        try:
            params[name] = ParamSpec.model_validate(_plain(spec))
        except ValidationError as exc:
            reason = exc.errors()[0]["msg"].removeprefix("Value error, ")
            raise ConfigError(f"space.{name}: {reason}") from None
    return SearchSpace(params)


def _plain(value: Any) -> Any:
    """``value`` with numpy scalars and arrays as Python values, tuples as lists.

    Specs must be JSON-serializable (they are stored with the study) and Optuna's
    categorical choices must be plain scalars; ``np.logspace`` gives ``np.float64``.
    """
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value
