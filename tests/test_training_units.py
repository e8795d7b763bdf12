"""Losses, learning-rate schedules and optimizers: numeric checks on tiny arrays."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from hpolab.errors import ConfigError
from hpolab.training.losses import (
    CostSensitiveLoss,
    FocalLoss,
    WeightedCategoricalCrossentropy,
    balanced_class_weights,
    get_loss_function,
)
from hpolab.training.optimizers import get_learning_rate_schedule, get_optimizer

PROBS = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.25, 0.5, 0.25]], dtype="float32")
SPARSE = np.array([0, 2, 0])
ONEHOT = np.eye(3, dtype="float32")[SPARSE]


def _value(loss, y_true, y_pred=PROBS) -> float:
    return float(keras.ops.convert_to_numpy(loss(y_true, y_pred)))


def test_focal_loss_at_gamma_0_is_cross_entropy_for_sparse_and_one_hot_labels():
    reference = _value(keras.losses.CategoricalCrossentropy(), ONEHOT)
    assert _value(FocalLoss(gamma=0.0), SPARSE) == pytest.approx(reference, rel=1e-5)
    assert _value(FocalLoss(gamma=0.0), ONEHOT) == pytest.approx(reference, rel=1e-5)
    assert _value(FocalLoss(gamma=0.0), SPARSE[:, None]) == pytest.approx(reference, rel=1e-5)
    # gamma > 0 down-weights confident (easy) examples: the loss is smaller.
    assert _value(FocalLoss(gamma=2.0), SPARSE) < reference
    logits = np.log(PROBS)
    assert _value(FocalLoss(gamma=0.0, from_logits=True), SPARSE, logits) == pytest.approx(
        reference, rel=1e-4
    )


def test_weighted_cross_entropy_and_balanced_weights():
    reference = _value(keras.losses.CategoricalCrossentropy(), ONEHOT)
    assert _value(WeightedCategoricalCrossentropy([1, 1, 1]), SPARSE) == pytest.approx(reference)
    assert balanced_class_weights([0, 0, 0, 1]) == pytest.approx([2 / 3, 2.0])
    doubled = _value(WeightedCategoricalCrossentropy([2, 2, 2]), ONEHOT)
    assert doubled == pytest.approx(2 * reference, rel=1e-5)
    loss = get_loss_function(
        "weighted_categorical_crossentropy", labels=[0, 0, 0, 1], class_weights="balanced"
    )
    assert loss.class_weights == pytest.approx([2 / 3, 2.0])


def test_cost_sensitive_loss_makes_a_missed_leak_cost_more_than_a_false_alarm():
    loss = CostSensitiveLoss(positive_class=1, miss_cost=10.0, false_alarm_cost=1.0)
    confident_wrong = np.array([[0.9, 0.1]], dtype="float32")  # predicts "no leak"
    missed_leak = _value(loss, np.array([1]), confident_wrong)
    false_alarm = _value(loss, np.array([0]), confident_wrong[:, ::-1].copy())
    assert missed_leak > false_alarm
    assert loss.cost_matrix(2).tolist() == [[0.0, 1.0], [10.0, 0.0]]


def test_unknown_losses_and_bad_options_are_config_errors():
    with pytest.raises(ConfigError, match="unknown loss 'focall'"):
        get_loss_function("focall")
    with pytest.raises(ConfigError, match="focal"):
        get_loss_function("focal", gama=2)
    with pytest.raises(ConfigError, match="needs the training labels"):
        get_loss_function("weighted_crossentropy", class_weights="balanced")
    assert get_loss_function("mse") == "mse"


def _at(schedule, step: int) -> float:
    return float(keras.ops.convert_to_numpy(schedule(step)))


def test_schedules_take_the_values_they_promise():
    base, floor = 0.01, 0.001
    cfg = {"warmup_steps": 10, "decay_steps": 100, "floor": floor}
    for kind in ("linear", "cosine", "polynomial", "exponential", "constant"):
        # A constant rate has no decay: decay options are refused for it.
        options = {"warmup_steps": 10} if kind == "constant" else cfg
        schedule = get_learning_rate_schedule(kind, base, options)
        assert _at(schedule, 0) == pytest.approx(0.0, abs=1e-9), kind  # warmup from 0
        assert _at(schedule, 5) == pytest.approx(base / 2, rel=1e-5), kind
        assert _at(schedule, 10) == pytest.approx(base, rel=1e-5), kind  # warmup end = base
    assert _at(get_learning_rate_schedule("linear", base, cfg), 60) == pytest.approx(
        (base + floor) / 2, rel=1e-5
    )
    assert _at(get_learning_rate_schedule("cosine", base, cfg), 110) == pytest.approx(floor)
    assert _at(get_learning_rate_schedule("cosine", base, cfg), 500) == pytest.approx(floor)
    assert _at(get_learning_rate_schedule("cosine", base, cfg), 60) == pytest.approx(
        (base + floor) / 2, rel=1e-5
    )
    poly = get_learning_rate_schedule("polynomial", base, {**cfg, "power": 2.0})
    assert _at(poly, 60) == pytest.approx(floor + (base - floor) * 0.25, rel=1e-5)
    expo = get_learning_rate_schedule("exponential", base, {"decay_steps": 100, "decay_rate": 0.5})
    assert _at(expo, 100) == pytest.approx(base / 2, rel=1e-5)
    assert _at(expo, 200) == pytest.approx(base / 4, rel=1e-5)
    assert _at(get_learning_rate_schedule("constant", base), 12345) == pytest.approx(base)
    with pytest.raises(ConfigError, match="unknown schedule 'cosin'"):
        get_learning_rate_schedule("cosin", base)


def test_optimizers_by_name():
    sgd = get_optimizer("sgd", 0.1, momentum=0.9, nesterov=True)
    assert isinstance(sgd, keras.optimizers.SGD) and sgd.nesterov and sgd.momentum == 0.9
    assert isinstance(get_optimizer("adamw", 1e-3, weight_decay=0.01), keras.optimizers.AdamW)
    assert isinstance(get_optimizer("rmsprop", 1e-3), keras.optimizers.RMSprop)
    with pytest.raises(ConfigError, match="unknown optimizer 'nadam'"):
        get_optimizer("nadam", 1e-3)


@pytest.mark.parametrize(
    "loss",
    [
        FocalLoss(alpha=[0.25, 0.75], gamma=2.0),
        WeightedCategoricalCrossentropy([1.0, 3.0]),
        CostSensitiveLoss(positive_class=1, miss_cost=5.0),
    ],
    ids=["focal", "weighted", "cost_sensitive"],
)
def test_losses_and_schedules_round_trip_through_keras_files(tmp_path, loss):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    schedule = get_learning_rate_schedule("cosine", 0.01, {"warmup_steps": 2, "decay_steps": 8})
    model.compile(optimizer=get_optimizer("adam", schedule), loss=loss)
    X = np.random.default_rng(0).normal(size=(16, 4)).astype("float32")
    y = (X[:, 0] > 0).astype(int)
    model.fit(X, y, epochs=1, batch_size=8, verbose=0)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert type(loaded.loss) is type(loss) and loaded.loss.get_config() == loss.get_config()
    restored = loaded.optimizer.learning_rate
    assert loaded.optimizer.get_config()["learning_rate"]["config"] == schedule.get_config()
    np.testing.assert_allclose(loaded.predict(X, verbose=0), model.predict(X, verbose=0))
    loaded.fit(X, y, epochs=1, batch_size=8, verbose=0)  # and it still trains
    assert restored is not None


def test_config_knows_the_same_classification_losses():
    from hpolab.config import CLASSIFICATION_LOSSES
    from hpolab.training.losses import CUSTOM_LOSSES

    assert set(CLASSIFICATION_LOSSES) == set(CUSTOM_LOSSES)


def _sklearn_metrics(y: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    from sklearn import metrics as skm

    labels = proba.argmax(axis=1)
    if proba.shape[1] == 2:
        auc = skm.roc_auc_score(y, proba[:, 1])
    else:
        p = proba / proba.sum(axis=1, keepdims=True)
        auc = skm.roc_auc_score(y, p, multi_class="ovr", labels=list(range(proba.shape[1])))
    return {
        "accuracy": skm.accuracy_score(y, labels),
        "f1_macro": skm.f1_score(y, labels, average="macro", zero_division=0),
        "auc": auc,
    }


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.UndefinedMetricWarning")
@pytest.mark.parametrize("n_classes", [2, 3, 10])
@pytest.mark.parametrize("case", ["random", "ties", "a class never predicted", "absent class"])
def test_classification_metrics_are_scikit_learns(n_classes: int, case: str) -> None:
    """Computed with NumPy every epoch; the values are scikit-learn's."""
    from hpolab.training.metrics import compute_metrics

    rng = np.random.default_rng(n_classes)
    y = rng.integers(0, n_classes, 300)
    logits = rng.normal(size=(300, n_classes)) + 1.5 * np.eye(n_classes)[y]
    if case == "ties":
        logits = np.round(logits)  # many equal scores
    if case == "a class never predicted":
        logits[:, 0] -= 100
    if case == "absent class":
        y[y == n_classes - 1] = 0
    proba = (np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)).astype(np.float32)
    ours = compute_metrics("classification", y, proba)
    expected = _sklearn_metrics(y, proba.astype(np.float64))
    for name, value in expected.items():
        if np.isnan(value):
            assert np.isnan(ours[name]), name
        else:
            assert ours[name] == pytest.approx(value, abs=1e-12), name
    assert str(compute_metrics("classification", y.astype(np.float64), proba)) == str(ours)
