"""Regression tests of the training pipeline: settings that crashed or were silently ignored."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
import yaml
from helpers import run_cli, small_config, write_csv

import hpolab
from hpolab.errors import ConfigError
from hpolab.training import (
    FocalLoss,
    LeakAwareLoss,
    ModelTrainer,
    MultiModelTrainer,
    WeightedCategoricalCrossentropy,
    get_learning_rate_schedule,
    get_loss_function,
    get_optimizer,
)
from hpolab.training.callbacks import build_callbacks
from hpolab.training.fit import compile_model, fit_arrays


def _tiny_classifier(n_classes: int = 4, n_features: int = 8) -> keras.Model:
    return keras.Sequential(
        [keras.Input((n_features,)), keras.layers.Dense(n_classes, activation="softmax")]
    )


def _arrays(n: int = 64, n_classes: int = 4, n_features: int = 8, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_features)).astype("float32")
    return X, X[:, :n_classes].argmax(axis=1)


# ------------------------------------------------------------------ bug 1: plateau + schedule
def test_reduce_lr_on_plateau_scales_a_schedule_and_the_scale_is_saved(tmp_path: Path):
    X, y = _arrays()
    model = _tiny_classifier()
    hp = {"lr_schedule": "exponential", "epochs": 5, "learning_rate": 0.01}
    compile_model(model, "classification", hp, labels=y, steps_per_epoch=2)
    # min_delta 10: no epoch counts as an improvement after the first, so the plateau
    # lowers the rate again and again.
    plateau = {"reduce_lr_on_plateau": {"factor": 0.5, "patience": 1, "min_delta": 10.0}}
    callbacks = build_callbacks(plateau, None, monitor="val_loss", direction="minimize")
    history, _ = fit_arrays(
        model, X, y, epochs=5, batch_size=32, validation=(X, y), callbacks=callbacks
    )
    scale = float(model.optimizer._learning_rate.scale.numpy())
    unscaled = get_learning_rate_schedule("exponential", 0.01, {"decay_steps": 10})
    # The rate in effect at the end of each epoch over the schedule's own value there:
    # 1 at first, then halved at each plateau; the schedule's shape is kept.
    ratios = [
        rate / float(unscaled(2 * (epoch + 1)))
        for epoch, rate in enumerate(history["learning_rate"])
    ]
    assert ratios[0] == pytest.approx(1.0, rel=1e-4)
    halvings = [np.log2(r) for r in ratios]
    assert halvings == pytest.approx(np.round(halvings), abs=1e-3)
    assert ratios == sorted(ratios, reverse=True) and ratios[-1] <= 0.25
    assert scale <= ratios[-1] + 1e-6
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", safe_mode=True)
    assert float(loaded.optimizer._learning_rate.scale.numpy()) == pytest.approx(scale)


def test_a_study_with_a_schedule_and_reduce_lr_on_plateau_completes(tmp_path: Path):
    config = small_config(tmp_path / "c.yaml", write_csv(tmp_path / "d.csv"), name="plateau")
    raw = yaml.safe_load(config.read_text())
    raw["study"]["n_trials"] = 1
    raw["training"].update(lr_schedule="cosine", warmup_epochs=1)
    raw["training"]["callbacks"] = {"reduce_lr_on_plateau": {"patience": 1}}
    config.write_text(yaml.safe_dump(raw))
    proc = run_cli("--config", str(config), "--no-mlflow", root=tmp_path)
    assert proc.returncode == 0, proc.stderr


# ------------------------------------------------------------------ bug 2: dict class weights
def test_weighted_cross_entropy_takes_weights_by_class_index():
    assert WeightedCategoricalCrossentropy({0: 1.0, 1: 1.5}).class_weights == [1.0, 1.5]
    # YAML / JSON keys are strings; classes left out weigh 1.0.
    loss = get_loss_function(
        "weighted_categorical_crossentropy", n_classes=4, class_weights={"1": 3.0, "3": 0.5}
    )
    assert loss.class_weights == [1.0, 3.0, 1.0, 0.5]
    probs = np.array([[0.7, 0.1, 0.1, 0.1], [0.1, 0.7, 0.1, 0.1]], dtype="float32")
    per_sample = loss.call(np.array([0, 1]), probs).numpy()
    assert per_sample == pytest.approx([-np.log(0.7), -3.0 * np.log(0.7)], rel=1e-5)
    with pytest.raises(ConfigError, match="unknown class 'leak'; use class indices"):
        WeightedCategoricalCrossentropy({"leak": 2.0})
    with pytest.raises(ConfigError, match="unknown class 5; use class indices 0..1"):
        get_loss_function("weighted_crossentropy", n_classes=2, class_weights={5: 1.0})


def test_loss_options_class_weights_mapping_reaches_the_loss():
    X, y = _arrays()
    model = _tiny_classifier()
    hp = {"loss": "weighted_categorical_crossentropy", "loss_options": {"class_weights": {0: 2.0}}}
    compile_model(model, "classification", hp, labels=y, steps_per_epoch=2)
    assert model.loss.class_weights == [2.0, 1.0, 1.0, 1.0]


# ------------------------------------------------------------------ bug 3: one-hot losses
@pytest.mark.parametrize("loss", ["categorical_crossentropy", "categorical_hinge"])
def test_one_hot_keras_losses_train_on_class_indices(loss: str):
    X, y = _arrays()
    model = _tiny_classifier()
    compile_model(model, "classification", {"loss": loss}, labels=y, steps_per_epoch=2)
    history, _ = fit_arrays(model, X, y, epochs=2, batch_size=32, validation=(X, y))
    assert all(np.isfinite(history["val_loss"]))


def test_categorical_crossentropy_equals_its_sparse_form():
    X, y = _arrays()
    model = _tiny_classifier()
    compile_model(model, "classification", {"loss": "categorical_crossentropy"}, labels=y)
    sparse = keras.losses.SparseCategoricalCrossentropy()(y, model(X))
    dense = keras.losses.CategoricalCrossentropy()(keras.utils.to_categorical(y, 4), model(X))
    assert float(sparse) == pytest.approx(float(dense), rel=1e-5)


# ------------------------------------------------------------------ bug 4: leak_aware_loss
def test_leak_aware_loss_is_the_cost_sensitive_loss_with_the_leak_class_by_label(tmp_path):
    loss = get_loss_function(
        "leak_aware_loss", classes=["leak", "no_leak"], leak_penalty=2.0, non_leak_penalty=1.0
    )
    assert isinstance(loss, LeakAwareLoss) and loss.positive_class == 0
    assert loss.cost_matrix(2).tolist() == [[0.0, 2.0], [1.0, 0.0]]
    assert get_loss_function("leak_aware_loss", classes=[0, 1, 2]).positive_class == 1
    with pytest.raises(ConfigError, match="leak_class: unknown class 'pipe'"):
        get_loss_function("leak_aware_loss", classes=["leak", "ok"], leak_class="pipe")
    with pytest.raises(ConfigError, match="did you mean 'leak_penalty'"):
        get_loss_function("leak_aware_loss", leak_penalti=3)


@pytest.mark.slow
def test_a_leak_aware_study_runs_and_an_unknown_loss_stores_nothing(tmp_path: Path):
    data = write_csv(tmp_path / "d.csv", labels=("leak", "normal"))
    config = small_config(tmp_path / "c.yaml", data, name="leaky")
    raw = yaml.safe_load(config.read_text())
    raw["study"]["n_trials"] = 1
    raw["training"].update(loss="leak_aware_loss", loss_config={"leak_penalty": 3.0})
    config.write_text(yaml.safe_dump(raw))
    result = hpolab.run_study(config, root=tmp_path, quiet=True, track=False)
    final = hpolab.load_final_model("leaky", "mlp", root=tmp_path)
    assert isinstance(final.model.loss, LeakAwareLoss)
    assert final.model.loss.miss_cost == 3.0 and final.model.loss.positive_class == 0
    assert result.models["mlp"].best_value is not None

    raw["study"]["name"] = "typo"
    raw["training"]["loss"] = "leak_awre_loss"
    config.write_text(yaml.safe_dump(raw))
    proc = run_cli("--config", str(config), "--no-mlflow", root=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error: training.loss: unknown loss 'leak_awre_loss'")
    assert "Traceback" not in proc.stderr
    assert not list((tmp_path / "hpo_studies").glob("typo*"))


# ------------------------------------------------------------------ bug 5: nothing ignored
def test_model_trainer_honours_the_nested_config_and_refuses_unknown_keys(tmp_path: Path):
    X, y = _arrays(n=96)
    config = {"training": {"epochs": 2, "patience": 5, "loss": "focal_loss"}}
    trainer = ModelTrainer(_tiny_classifier(), config, root=tmp_path)
    history = trainer.train(X[:64], y[:64], X[64:], y[64:])
    assert len(history["loss"]) == 2 and isinstance(trainer.model_.loss, FocalLoss)
    with pytest.raises(ConfigError, match="config: unknown key 'epoch'; did you mean 'epochs'"):
        ModelTrainer("mlp", {"epoch": 2})
    with pytest.raises(ConfigError, match="training.epoch"):
        ModelTrainer("mlp", {"training": {"epoch": 2}})
    with pytest.raises(ConfigError, match="hidden_layers"):
        ModelTrainer(_tiny_classifier(), {"hidden_layers": [8]})  # not a given model's key
    with pytest.raises(ConfigError, match="loss_config and loss_options"):
        ModelTrainer(
            "mlp", {"training": {"loss_config": {"gamma": 1}, "loss_options": {"gamma": 2}}}
        )


def test_get_optimizer_passes_its_arguments_and_names_unknown_ones():
    optimizer = get_optimizer("adam", 1e-3, beta_1=0.8, beta_2=0.99, epsilon=1e-6)
    assert (optimizer.beta_1, optimizer.beta_2, optimizer.epsilon) == (0.8, 0.99, 1e-6)
    assert get_optimizer("sgd", 0.1, momentum=0.9, nesterov=True).nesterov is True
    with pytest.raises(ConfigError, match="unknown option 'beta1'; did you mean 'beta_1'"):
        get_optimizer("adam", 1e-3, beta1=0.8)
    with pytest.raises(ConfigError, match="unknown option 'rho'"):
        get_optimizer("adam", 1e-3, rho=0.8)
    schedule = get_learning_rate_schedule("warmup", 1e-3, {"decay_rate": 0.9, "decay_steps": 10})
    assert schedule.decay_rate == 0.9
    with pytest.raises(ConfigError, match="unknown cosine option 'decay'"):
        get_learning_rate_schedule("cosine", 1e-3, {"decay": 0.9})


def test_multi_model_trainer_takes_the_config_first():
    config = {"training": {"epochs": 1}}
    multi = MultiModelTrainer(config)
    assert multi.config == config and multi.experiment_name is None
    trainer = multi.add_model("net", "mlp")
    assert trainer.training.epochs == 1
    with pytest.raises(ConfigError, match="config must be a mapping"):
        MultiModelTrainer("my_experiment")


def test_study_config_refuses_misplaced_guide_keys():
    with pytest.raises(
        ConfigError, match="reduce_lr_on_plateau: unknown setting 'factr'; did you mean 'factor'"
    ):
        hpolab.load_config({"training": {"callbacks": {"reduce_lr_on_plateau": {"factr": 0.5}}}})
    with pytest.raises(ConfigError, match="set reduce_lr_on_plateau: true"):
        hpolab.load_config({"training": {"callbacks": {"reduce_lr_factor": 0.5}}})
    with pytest.raises(ConfigError, match="differs from study.metric"):
        hpolab.load_config(
            {
                "study": {"metric": "val_accuracy"},
                "training": {"callbacks": {"early_stopping_monitor": "val_loss"}},
            }
        )


# ------------------------------------------------------------------ bad values: one error line
@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: get_loss_function("weighted_crossentropy"), "needs class_weights"),
        (lambda: get_loss_function("focal_loss", gamma="abc"), "training.loss_options: focal"),
        (
            lambda: get_learning_rate_schedule("cosine", 1e-3, {"decay_rate": 0.5}),
            "unknown cosine option 'decay_rate'",
        ),
        (
            lambda: get_learning_rate_schedule("warmup", 1e-3, {"warmup_steps": "abc"}),
            "lr_schedule_config",
        ),
        (
            lambda: hpolab.load_config(
                {"training": {"callbacks": {"reduce_lr_on_plateau": {"factor": 2}}}}
            ),
            "reduce_lr_on_plateau: factor",
        ),
        (
            lambda: hpolab.load_config({"training": {"callbacks": {"checkpoint": "best.keras"}}}),
            "checkpoint must be true or false",
        ),
        (
            lambda: hpolab.load_config(
                {
                    "training": {"optimizer": "sgd", "optimizer_options": {"momentum": 0.5}},
                    "models": {"mlp": {"search_space": {"momentum": [0.1, 0.9]}}},
                }
            ),
            "'momentum' is searched and set in training.optimizer_options",
        ),
    ],
)
def test_bad_training_values_are_one_config_error(call, message):
    with pytest.raises(ConfigError, match=message) as info:
        call()
    assert "\n" not in str(info.value)


def test_class_weight_keys_are_all_labels_or_all_indices():
    from hpolab.training.losses import class_indices, weight_list

    assert class_indices([0, 1], [1, 2]) == {0: 0, 1: 1}  # 0 is no label: indices
    assert class_indices([1, 2], [1, 2]) == {1: 0, 2: 1}  # every key a label: labels
    assert weight_list({"leak": 3.0}, 2, ["leak", "normal"]) == [3.0, 1.0]
    with pytest.raises(ConfigError, match="unknown class 'pipe'"):
        class_indices(["pipe"], ["leak", "normal"])


def test_a_loss_or_metric_that_does_not_fit_the_labels_stops_the_study_before_storage(
    tmp_path: Path,
):
    config = small_config(tmp_path / "c.yaml", write_csv(tmp_path / "d.csv"), name="metric")
    raw = yaml.safe_load(config.read_text())
    raw["training"]["metrics"] = ["precision"]  # needs one-hot or binary targets
    config.write_text(yaml.safe_dump(raw))
    proc = run_cli("--config", str(config), "--no-mlflow", root=tmp_path)
    assert proc.returncode == 2 and proc.stderr.startswith("error: training: loss"), proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not list((tmp_path / "hpo_studies").glob("metric*"))


@pytest.mark.parametrize("loss", ["binary_crossentropy", "hinge", "poisson"])
def test_more_one_hot_keras_losses_train_on_class_indices(loss: str):
    X, y = _arrays()
    model = _tiny_classifier()
    compile_model(model, "classification", {"loss": loss}, labels=y, steps_per_epoch=2)
    history, _ = fit_arrays(model, X, y, epochs=1, batch_size=32, validation=(X, y))
    assert np.isfinite(history["val_loss"][0])


def test_model_trainer_compile_monitor_and_estimators(tmp_path: Path):
    from sklearn.ensemble import RandomForestClassifier

    leak = {"training": {"loss": "leak_aware_loss", "loss_config": {"leak_class": "leak"}}}
    ModelTrainer(_tiny_classifier(2), leak, root=tmp_path).compile()  # label known at train
    with pytest.raises(ConfigError, match="optimizer_config: unknown option 'beta_9'"):
        ModelTrainer("mlp", {"training": {"optimizer_config": {"beta_9": 1}}}).compile()
    with pytest.raises(ConfigError, match="differs from the config's monitor"):
        ModelTrainer("mlp", {"training": {"monitor": "val_loss"}}, metric="val_accuracy")
    with pytest.raises(ConfigError, match="training.monitor: unknown metric 'val_acc'"):
        ModelTrainer("mlp", {"training": {"callbacks": {"early_stopping_monitor": "val_acc"}}})
    with pytest.warns(UserWarning, match="epochs, loss do not apply"):
        ModelTrainer(RandomForestClassifier(), {"training": {"epochs": 3, "loss": "focal"}})


def test_cross_validation_params_train_like_a_trial():
    from hpolab.training import evaluate_with_cross_validation

    X, y = _arrays(n=60)
    result = evaluate_with_cross_validation(
        "mlp", X, y, n_splits=2, params={"epochs": 1, "loss": "focal_loss", "momentum": 0.5}
    )
    assert len(result["scores"]) == 2
    with pytest.raises(ConfigError, match="unknown loss 'no_such_loss'"):
        evaluate_with_cross_validation("mlp", X, y, n_splits=2, params={"loss": "no_such_loss"})
    with pytest.raises(ConfigError, match="params.patience"):
        evaluate_with_cross_validation("mlp", X, y, n_splits=2, params={"patience": 1})
