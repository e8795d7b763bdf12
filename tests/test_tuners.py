"""Tuners in the scikit-learn style: same search space and samplers as studies."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import Ridge
from sklearn.svm import SVC

from hpolab.errors import ConfigError
from hpolab.search.tuners import (
    GridSearchTuner,
    HyperparameterTuner,
    RandomSearchTuner,
    suggest_search_space,
)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(80, 4)).astype("float32")
    y = (X[:, 0] + 0.3 * rng.normal(size=80) > 0).astype(int)
    return X, y


@pytest.fixture(scope="module")
def four_classes() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(60, 8)).astype("float32")
    y = np.repeat(np.arange(4), 15)
    X[np.arange(60), y] += 1.5
    return X, y


def test_grid_search_tries_every_combination_and_keeps_the_best(data):
    X, y = data
    tuner = GridSearchTuner({"max_depth": [1, 3], "n_estimators": [5, 20]}, cv=3)
    result = tuner.search(RandomForestClassifier(random_state=0), X, y)
    tried = sorted((r["params"]["max_depth"], r["params"]["n_estimators"]) for r in result.results)
    assert tried == [(1, 5), (1, 20), (3, 5), (3, 20)]
    assert result.best_score == max(r["score"] for r in result.results)
    assert all(len(r["scores"]) == 3 for r in result.results)
    assert tuner.best_params_ == result.best_params and tuner.best_score_ == result.best_score


def test_random_and_bayesian_search_sample_ranges(data):
    X, y = data
    target = X[:, 0] * 2 - X[:, 1]
    random = RandomSearchTuner({"alpha": {"low": 1e-3, "high": 10.0, "log": True}}, n_iter=5, cv=3)
    found = random.search(Ridge(), X, target)
    assert len(found.results) == 5 and found.best_score > 0.9  # r2 on a linear target
    assert all(1e-3 <= r["params"]["alpha"] <= 10.0 for r in found.results)
    bayes = HyperparameterTuner(
        method="bayesian",
        n_iter=4,
        cv=2,
        hidden_layers=[[8], [16]],
        epochs=5,
        learning_rate={"low": 1e-3, "high": 3e-2, "log": True},
    )
    keras_result = bayes.search("mlp", X, y)
    assert len(keras_result.results) == 4 and 0.0 <= keras_result.best_score <= 1.0
    assert keras_result.best_params["epochs"] == 5  # a scalar is a fixed value


def test_suggested_space_is_the_study_default_and_bad_spaces_are_config_errors(data):
    X, y = data
    assert "learning_rate" in suggest_search_space("mlp")
    with pytest.raises(ConfigError, match="method: 'annealing'"):
        HyperparameterTuner(method="annealing", alpha=[1.0])
    with pytest.raises(ConfigError, match=r"space.alpha: .*low"):
        HyperparameterTuner(method="random", alpha={"low": 5.0, "high": 1.0})
    with pytest.raises(ConfigError, match="param_grid: grid search needs finite values"):
        GridSearchTuner({"alpha": {"low": 0.1, "high": 1.0}}).search(Ridge(), X, y)
    with pytest.raises(ConfigError, match="space: Invalid parameter 'depth'"):
        GridSearchTuner({"depth": [1, 2]}, cv=2).search(RandomForestClassifier(), X, y)


def test_a_diverging_candidate_fails_its_trial_and_the_search_goes_on(data):
    X, y = data
    target = X[:, 0] * 2 - X[:, 1]
    tuner = GridSearchTuner(
        {"optimizer": ["sgd"], "learning_rate": [1e-3, 1e9], "epochs": [3], "hidden_layers": [[8]]},
        cv=2,
    )
    result = tuner.search("mlp", X, target)
    assert [r["params"]["learning_rate"] for r in result.results] == [1e-3]
    assert result.best_params["learning_rate"] == 1e-3


def test_guide_examples_run_and_results_read_as_mappings(four_classes):
    X_train, y_train = four_classes
    param_grid = {"n_estimators": [5, 10], "max_depth": [2, 5]}
    tuner = GridSearchTuner(param_grid=param_grid, cv=3)
    results = tuner.search(RandomForestClassifier(random_state=0), X_train, y_train)
    assert results["best_params"] == results.best_params == tuner.best_params_
    assert results["best_score"] == results.best_score and len(results["results"]) == 4
    assert list(results) == ["best_params", "best_score", "results"]
    with pytest.raises(KeyError, match="TuningResult has no key 'best'; known keys: best_params"):
        results["best"]

    param_space = {
        "C": {"type": "float", "low": 0.001, "high": 100, "log": True},
        "gamma": {"type": "float", "low": 0.0001, "high": 10, "log": True},
    }
    bayesian_tuner = HyperparameterTuner(method="bayesian", **param_space)
    found = bayesian_tuner.search(SVC(), X_train, y_train)  # defaults: 20 draws, 5 folds
    assert set(found["best_params"]) == {"C", "gamma"} and 0.0 <= found["best_score"] <= 1.0
    assert 1e-4 <= found["best_params"]["gamma"] <= 10


def test_numpy_values_are_plain_choices(four_classes):
    X_train, y_train = four_classes
    param_dist = {
        "C": np.array([0.1, 1, 10]),
        "gamma": ["scale", "auto", *np.logspace(-5, 2, 20)],
        "max_iter": np.int64(-1),
    }
    tuner = RandomSearchTuner(param_dist, n_iter=6, cv=3, scoring="f1_weighted")
    results = tuner.search(SVC(), X_train, y_train)
    assert len(results["results"]) == 6
    for tried in results["results"]:
        assert type(tried["params"]["C"]) is float and tried["params"]["max_iter"] == -1
        gamma = tried["params"]["gamma"]
        assert gamma in ("scale", "auto") or type(gamma) is float
