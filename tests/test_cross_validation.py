"""Cross-validation: folds are disjoint, cover the data and keep class shares; any
scikit-learn scorer scores estimators and Keras models alike; results read as mappings."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import is_classifier
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import Ridge
from sklearn.metrics import get_scorer
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.utils.validation import check_is_fitted

from hpolab.errors import ConfigError
from hpolab.training.cross_validation import (
    KFoldValidator,
    _KerasClassifierView,
    cv_splits,
    evaluate_with_cross_validation,
)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4)).astype("float32")
    y = np.array([0] * 45 + [1] * 15)  # 3:1 imbalance
    X[y == 1, 0] += 2.5
    return X, y


@pytest.fixture(scope="module")
def four_classes() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(60, 8)).astype("float32")
    y = np.repeat(np.arange(4), 15)
    X[np.arange(60), y] += 1.5  # each class shifts its own feature
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


def test_kfold_validator_gives_stratified_reproducible_splits(four_classes):
    X, y = four_classes
    splits = KFoldValidator(n_splits=5).get_splits(X, y)
    assert len(splits) == 5
    for train_idx, test_idx in splits:
        assert len(train_idx) == 48 and not set(train_idx) & set(test_idx)
        assert np.bincount(y[test_idx]).tolist() == [3, 3, 3, 3]
    again = KFoldValidator(n_splits=5).get_splits(X, y)
    assert all((a[1] == b[1]).all() for a, b in zip(splits, again, strict=True))
    ordered = KFoldValidator(n_splits=3, cv_method="kfold", shuffle=False).get_splits(X)
    assert [test.tolist() for _, test in ordered] == [list(range(i, i + 20)) for i in (0, 20, 40)]
    assert len(KFoldValidator(cv_method="leave_one_out").get_splits(X[:6])) == 6


def test_kfold_validator_errors_name_the_argument(four_classes):
    X, _ = four_classes
    with pytest.raises(ConfigError, match="y: stratified_kfold .* pass y or use cv_method='kfold'"):
        KFoldValidator(n_splits=5).get_splits(X)
    with pytest.raises(ConfigError, match="cv_method: unknown method 'kfolds'"):
        KFoldValidator(cv_method="kfolds")
    with pytest.raises(ConfigError, match="n_splits: at least 2 folds"):
        KFoldValidator(n_splits=1)


def test_sklearn_scorer_matches_cross_val_score_on_the_same_folds(four_classes):
    X, y = four_classes
    forest = RandomForestClassifier(n_estimators=20, random_state=0)
    ours = evaluate_with_cross_validation(
        forest, X, y, cv_method="stratified_kfold", n_splits=5, scoring="f1_weighted"
    )
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    # Trees do not care about the per-fold standardization: the scores are identical.
    expected = cross_val_score(forest, X, y, cv=folds, scoring="f1_weighted")
    assert ours.scores == pytest.approx(expected.tolist())
    assert ours.scoring == "f1_weighted"


def test_sklearn_loss_scorers_are_negated_like_the_builtin_ones(data):
    X, _ = data
    target = X[:, 0] * 2 + X[:, 1]
    sklearn_mae = evaluate_with_cross_validation(
        Ridge(), X, target, n_splits=3, scoring="neg_mean_absolute_error"
    )
    builtin_mae = evaluate_with_cross_validation(Ridge(), X, target, n_splits=3, scoring="neg_mae")
    assert sklearn_mae.scores == pytest.approx(builtin_mae.scores)
    assert sklearn_mae.mean < 0  # higher is better


def test_probability_scorer_on_a_keras_model_type(four_classes):
    X, y = four_classes
    result = evaluate_with_cross_validation(
        "mlp",
        X,
        y,
        n_splits=3,
        scoring="roc_auc_ovr",
        params={"hidden_layers": [8], "epochs": 2, "learning_rate": 0.01},
    )
    assert len(result.scores) == 3 and all(0.0 <= s <= 1.0 for s in result.scores)


class _CountingModel:
    """Stands in for a fitted Keras classifier: float32 softmax rows, counted calls."""

    calls = 0

    def predict(self, X: np.ndarray, **_: object) -> np.ndarray:
        self.calls += 1
        proba = np.full((len(X), 3), 0.2, dtype=np.float32)
        proba[np.arange(len(X)), np.arange(len(X)) % 3] = 0.6
        return proba


def test_keras_view_is_a_fitted_classifier_that_predicts_once_per_input():
    view = _KerasClassifierView()
    view.classes_, view.model_ = np.array(["a", "b", "c"]), _CountingModel()
    X, y = np.zeros((9, 2), dtype="float32"), np.array(["a", "b", "c"] * 3)
    assert is_classifier(view)
    check_is_fitted(view)
    for name in ("accuracy", "roc_auc_ovr", "neg_log_loss"):
        assert get_scorer(name)(view, X, y) == pytest.approx(np.log(0.6) if "log" in name else 1)
    assert view.model_.calls == 1


def test_unknown_and_inapplicable_scorers_are_config_errors(four_classes):
    X, y = four_classes
    forest = RandomForestClassifier(n_estimators=5)
    with pytest.raises(
        ConfigError, match=r"'f1_weigted'; did you mean f1_weighted.*get_scorer_names"
    ):
        evaluate_with_cross_validation(forest, X, y, scoring="f1_weigted")
    with pytest.raises(ConfigError, match="'neg_mean_squared_error' does not apply to classif"):
        evaluate_with_cross_validation(forest, X, y, scoring="neg_mean_squared_error")
    with pytest.raises(ConfigError, match="'roc_auc_ovr' does not apply to regression"):
        evaluate_with_cross_validation(Ridge(), X, X[:, 0], scoring="roc_auc_ovr")
    with pytest.raises(ConfigError, match="scoring: 'f1' cannot score this model and data"):
        evaluate_with_cross_validation(forest, X, y, n_splits=3, scoring="f1")  # binary only


def test_cv_result_reads_as_a_mapping(four_classes):
    X, y = four_classes
    result = evaluate_with_cross_validation(
        RandomForestClassifier(n_estimators=5, random_state=0), X, y, n_splits=3
    )
    assert result["mean"] == result.mean and result["std"] == result.std
    assert result["scores"] is result.scores and result.get("cv_method") == "stratified_kfold"
    assert list(result) == ["scoring", "cv_method", "mean", "std", "scores", "fold_seconds"]
    assert "mean" in result and "best_score" not in result and result.get("nope", 1) == 1
    assert dict(result) == result.as_dict() and dict(result)["mean"] == result.mean
    with pytest.raises(KeyError, match="CVResult has no key 'means'; known keys: scoring, "):
        result["means"]


def test_a_parameter_the_model_does_not_take_is_named():
    X = np.random.default_rng(0).normal(size=(40, 4)).astype("float32")
    y = np.arange(40) % 2
    with pytest.raises(
        ConfigError, match="unknown parameter of mlp 'epoch'; did you mean 'epochs'"
    ):
        evaluate_with_cross_validation("mlp", X, y, params={"epoch": 2})
