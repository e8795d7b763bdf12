"""Cross-validation: folds are disjoint, cover the data and keep class shares."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import Ridge

from hpolab.errors import ConfigError
from hpolab.training.cross_validation import cv_splits, evaluate_with_cross_validation


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4)).astype("float32")
    y = np.array([0] * 45 + [1] * 15)  # 3:1 imbalance
    X[y == 1, 0] += 2.5
    return X, y


@pytest.mark.parametrize("method", ["stratified_kfold", "kfold", "time_series", "group_kfold"])
def test_folds_are_disjoint_and_test_parts_cover_the_data(data, method):
    X, y = data
    groups = np.repeat(np.arange(12), 5)
    folds = cv_splits(X, y, method, n_splits=3, groups=groups)
    assert len(folds) == 3
    for train, test in folds:
        assert not set(train) & set(test)
        if method == "group_kfold":
            assert not set(groups[train]) & set(groups[test])
        if method == "time_series":
            assert train.max() < test.min()  # never trains on the future
    if method != "time_series":
        covered = np.sort(np.concatenate([test for _, test in folds]))
        assert covered.tolist() == list(range(len(X)))


def test_stratified_folds_keep_the_class_shares(data):
    X, y = data
    for _, test in cv_splits(X, y, "stratified_kfold", n_splits=5):
        assert np.bincount(y[test]).tolist() == [9, 3]
    loo = cv_splits(X[:10], y[:10], "leave_one_out")
    assert len(loo) == 10 and all(len(test) == 1 for _, test in loo)


def test_scores_for_sklearn_estimators_and_keras_builders(data):
    X, y = data
    forest = evaluate_with_cross_validation(
        RandomForestClassifier(n_estimators=20, random_state=0), X, y, n_splits=3
    )
    assert forest.scoring == "accuracy" and len(forest.scores) == 3 and forest.mean > 0.75
    assert forest.std == pytest.approx(np.std(forest.scores))
    mlp = evaluate_with_cross_validation(
        "mlp",
        X,
        y,
        n_splits=3,
        scoring="f1_macro",
        params={"hidden_layers": [8], "epochs": 15, "learning_rate": 0.01},
    )
    assert len(mlp.scores) == 3 and 0.0 <= mlp.mean <= 1.0
    target = X[:, 0] * 2 + X[:, 1]
    ridge = evaluate_with_cross_validation(Ridge(), X, target, cv_method="kfold", n_splits=3)
    assert ridge.scoring == "r2" and ridge.mean > 0.95


def test_bad_cv_settings_are_config_errors(data):
    X, y = data
    with pytest.raises(ConfigError, match="unknown method 'kfold3'"):
        cv_splits(X, y, "kfold3")
    with pytest.raises(ConfigError, match="group_kfold needs groups"):
        cv_splits(X, y, "group_kfold")
    with pytest.raises(ConfigError, match="'r2' does not apply to classification"):
        evaluate_with_cross_validation(RandomForestClassifier(), X, y, scoring="r2")
