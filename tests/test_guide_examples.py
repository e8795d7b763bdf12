"""Every code example of the training design guide, with ``hpolab.`` in place of ``src.``.

The examples run as the guide writes them, on a tiny synthetic set (32 features, 4
classes). Where the guide leaves a name undefined (``X_train``, ``svm_model``) the
fixture defines it; where it uses a shape of its own data (``input_shape=(1024, 9)``
windows) the set's shape ``(32,)`` stands in. The guide's YAML reference loads as written.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import hpolab

pytestmark = pytest.mark.slow


@pytest.fixture
def guide_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, np.ndarray]:
    """32 features, 4 classes (imbalanced: 40/25/20/15 %), train/val/test and all."""
    monkeypatch.chdir(tmp_path)  # the trainers write models/ and mlruns/ under the root
    monkeypatch.delenv("HPOLAB_ROOT", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    rng = np.random.default_rng(0)
    n = 240
    y = rng.choice(4, size=n, p=[0.4, 0.25, 0.2, 0.15])
    centers = rng.normal(scale=1.5, size=(4, 32))
    X = (centers[y] + rng.normal(size=(n, 32))).astype("float32")
    return {
        "X": X,
        "y": y,
        "X_train": X[:144],
        "y_train": y[:144],
        "X_val": X[144:192],
        "y_val": y[144:192],
        "X_test": X[192:],
        "y_test": y[192:],
    }


def _guide_model():
    import tensorflow as tf

    # As in the guide (tf.keras, input_shape on the first layer).
    return tf.keras.Sequential(
        [
            tf.keras.layers.Dense(64, activation="relu", input_shape=(32,)),
            tf.keras.layers.Dropout(0.3),
            tf.keras.layers.Dense(32, activation="relu"),
            tf.keras.layers.Dense(4, activation="softmax"),
        ]
    )


GUIDE_CONFIG = {
    "training": {
        "loss": "focal_loss",  # or "leak_aware_loss", "weighted_categorical_crossentropy"
        "optimizer": "adam",
        "learning_rate": 0.001,
        "loss_config": {"alpha": 0.25, "gamma": 2.0},
        "epochs": 50,
        "batch_size": 32,
        "callbacks": {
            "early_stopping": True,
            "early_stopping_patience": 15,
            "model_checkpoint": True,
            "reduce_lr_on_plateau": True,
        },
    }
}


def test_example_1_basic_training_with_a_custom_loss(guide_data, tmp_path, capsys):
    from hpolab.training import FocalLoss, ModelTrainer, get_loss_function

    X_train, y_train = guide_data["X_train"], guide_data["y_train"]
    X_val, y_val = guide_data["X_val"], guide_data["y_val"]
    X_test, y_test = guide_data["X_test"], guide_data["y_test"]
    model = _guide_model()
    config = GUIDE_CONFIG

    # Train
    trainer = ModelTrainer(model, config, experiment_name="my_experiment")
    trainer.compile()
    history = trainer.train(X_train, y_train, X_val, y_val)

    # Evaluate
    results = trainer.evaluate(X_test, y_test)

    # Save
    trainer.save_model()

    assert isinstance(trainer.model_.loss, FocalLoss) and trainer.model_.loss.gamma == 2.0
    assert isinstance(get_loss_function("focal_loss", gamma=2.0), FocalLoss)
    assert 1 <= len(history["loss"]) <= 50
    assert results["accuracy"] > 0.5  # well above the 0.25 of chance on 4 classes
    saved = next((tmp_path / "models" / "trainer").glob("my_experiment-*/model.keras"))
    assert f"saved model to {saved}" in capsys.readouterr().out
    assert (saved.parent / "checkpoints" / "best.keras").is_file()  # model_checkpoint
    assert "learning_rate" in history  # reduce_lr_on_plateau watched the rate


def test_example_2_learning_rate_schedules():
    from hpolab.training import get_learning_rate_schedule, get_optimizer

    model = _guide_model()

    # Warmup schedule
    lr_schedule = get_learning_rate_schedule(
        "warmup",
        base_learning_rate=0.001,
        config={"initial_lr": 1e-4, "warmup_steps": 1000, "decay_steps": 5000, "decay_rate": 0.96},
    )

    # Cosine annealing
    cosine_schedule = get_learning_rate_schedule(
        "cosine",
        base_learning_rate=0.001,
        config={"min_lr": 1e-5, "total_steps": 10000, "warmup_steps": 500},
    )

    # Use in optimizer
    optimizer = get_optimizer("adam", learning_rate=lr_schedule)
    model.compile(optimizer=optimizer, loss="categorical_crossentropy")

    assert float(lr_schedule(0)) == pytest.approx(1e-4)
    assert float(lr_schedule(1000)) == pytest.approx(1e-3)
    assert float(lr_schedule(6000)) == pytest.approx(1e-3 * 0.96, rel=1e-5)
    assert float(cosine_schedule(500)) == pytest.approx(1e-3)
    assert float(cosine_schedule(10000)) == pytest.approx(1e-5)


def test_example_3_cross_validation(guide_data):
    from sklearn.ensemble import RandomForestClassifier

    from hpolab.training import KFoldValidator, evaluate_with_cross_validation

    X, y = guide_data["X"], guide_data["y"]

    # Manual cross-validation
    validator = KFoldValidator(n_splits=5)
    splits = validator.get_splits(X, y)

    seen = []
    for _fold, (train_idx, test_idx) in enumerate(splits):
        X_train, X_test = X[train_idx], X[test_idx]
        y_train, y_test = y[train_idx], y[test_idx]
        seen.extend(test_idx)
        assert len(X_train) + len(X_test) == len(X) and len(y_train) == len(X_train)
        assert len(y_test) == len(X_test)

    # Automatic evaluation
    model = RandomForestClassifier()
    results = evaluate_with_cross_validation(
        model, X, y, cv_method="stratified_kfold", n_splits=5, scoring="f1_weighted"
    )
    print(f"Mean F1: {results['mean']:.3f} ± {results['std']:.3f}")

    assert sorted(seen) == list(range(len(X)))  # every sample tested once
    assert 0.5 < results["mean"] <= 1.0 and len(results["scores"]) == 5


def test_example_4_hyperparameter_optimization(guide_data):
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.svm import SVC

    from hpolab.training import GridSearchTuner, HyperparameterTuner, RandomSearchTuner

    X_train, y_train = guide_data["X_train"], guide_data["y_train"]
    model = RandomForestClassifier(n_estimators=10, random_state=0)
    svm_model = SVC()

    # Grid Search (the guide's grid has 27 forests of up to 200 trees; a third of it here)
    param_grid = {"n_estimators": [5, 10, 20], "max_depth": [5, 10, 20]}
    tuner = GridSearchTuner(param_grid=param_grid, cv=5)
    results = tuner.search(model, X_train, y_train)
    print(f"Best params: {results['best_params']}")
    print(f"Best score: {results['best_score']:.3f}")
    assert set(results["best_params"]) == {"n_estimators", "max_depth"}
    assert len(results["results"]) == 9

    # Random Search (faster for large spaces)
    param_dist = {
        "C": [0.001, 0.01, 0.1, 1, 10, 100],
        "gamma": ["scale", "auto"] + list(np.logspace(-5, 2, 20)),
    }
    tuner = RandomSearchTuner(param_dist, n_iter=50, cv=5)
    results = tuner.search(svm_model, X_train, y_train)
    assert results["best_score"] > 0.5 and len(results["results"]) == 50

    # Bayesian Optimization
    param_space = {
        "C": {"type": "float", "low": 0.001, "high": 100, "log": True},
        "gamma": {"type": "float", "low": 0.0001, "high": 10, "log": True},
    }
    bayesian_tuner = HyperparameterTuner(method="bayesian", **param_space)
    bayesian_tuner.n_iter = 5
    assert bayesian_tuner.search(svm_model, X_train, y_train)["best_score"] > 0.3


def test_example_5_multi_model_training_and_comparison(guide_data):
    from hpolab.models import CNN1DBuilder, RandomForestModel, SVMClassifier
    from hpolab.training import MultiModelTrainer

    X_train, y_train = guide_data["X_train"], guide_data["y_train"]
    X_val, y_val = guide_data["X_val"], guide_data["y_val"]
    X_test, y_test = guide_data["X_test"], guide_data["y_test"]
    config = GUIDE_CONFIG

    # Create trainer
    multi_trainer = MultiModelTrainer(config)

    # Add models
    cnn = CNN1DBuilder(config).build(input_shape=(32,), n_classes=4).model
    rf = RandomForestModel(config).model
    svm = SVMClassifier(config).model

    multi_trainer.add_model("cnn", cnn, config)
    multi_trainer.add_model("rf", rf, config)
    multi_trainer.add_model("svm", svm, config)

    # Train all
    results = multi_trainer.train_all(X_train, y_train, X_val, y_val, epochs=50)

    # Evaluate all
    eval_results = multi_trainer.evaluate_all(X_test, y_test)

    # Compare
    comparison = multi_trainer.compare_models(metric="accuracy")
    print(f"Best model: {list(comparison.keys())[0]}")

    assert set(results) == set(eval_results) == {"cnn", "rf", "svm"}
    accuracies = [m["accuracy"] for m in comparison.values()]
    assert accuracies == sorted(accuracies, reverse=True)


def test_example_6_custom_loss_with_imbalanced_data(guide_data):
    from sklearn.utils.class_weight import compute_class_weight

    from hpolab.training import LeakAwareLoss, ModelTrainer, WeightedCategoricalCrossentropy

    X_train, y_train = guide_data["X_train"], guide_data["y_train"]
    X_val, y_val = guide_data["X_val"], guide_data["y_val"]
    model = _guide_model()

    # Calculate class weights from imbalanced data
    class_weights = compute_class_weight("balanced", classes=np.unique(y_train), y=y_train)
    class_weights_dict = {i: w for i, w in enumerate(class_weights)}

    # Use weighted loss
    config = {
        "training": {
            "loss": "weighted_categorical_crossentropy",
            "class_weights": class_weights_dict,  # Passed to loss function
            "optimizer": "adam",
            "learning_rate": 0.001,
            "epochs": 50,
        }
    }

    trainer = ModelTrainer(model, config)
    trainer.compile()
    trainer.train(X_train, y_train, X_val, y_val)

    loss = trainer.model_.loss
    assert isinstance(loss, WeightedCategoricalCrossentropy)
    assert loss.class_weights == pytest.approx(list(class_weights))

    # Or use leak-aware loss (penalizes leak misclassification more)
    config = {
        "training": {
            "loss": "leak_aware_loss",
            "loss_config": {
                "leak_penalty": 2.0,  # Penalize missed leaks
                "non_leak_penalty": 1.0,
            },
        }
    }
    leak_trainer = ModelTrainer(_guide_model(), config).compile()
    assert isinstance(leak_trainer.model.loss, LeakAwareLoss)
    assert leak_trainer.model.loss.miss_cost == 2.0


def test_integration_with_the_model_builders(guide_data):
    from hpolab.models import CNN1DBuilder, EnsembleModel, LSTMBuilder  # noqa: F401
    from hpolab.training import ModelTrainer

    X_train, y_train = guide_data["X_train"], guide_data["y_train"]
    X_val, y_val = guide_data["X_val"], guide_data["y_val"]
    X_test, y_test = guide_data["X_test"], guide_data["y_test"]
    config = {"training": {**GUIDE_CONFIG["training"], "epochs": 5}}

    # Build a model
    builder = CNN1DBuilder(config)
    model = builder.build(input_shape=(32,), n_classes=4)

    # Train using the training pipeline
    trainer = ModelTrainer(model, config)
    trainer.compile()
    trainer.train(X_train, y_train, X_val, y_val)

    # Evaluate
    assert "accuracy" in trainer.evaluate(X_test, y_test)


GUIDE_YAML = """
training:
  # Loss function
  loss: focal_loss  # or categorical_crossentropy, leak_aware_loss,
                    # weighted_categorical_crossentropy
  loss_config:
    alpha: 0.25
    gamma: 2.0

  # Optimizer
  optimizer: adam  # or sgd, rmsprop, adamw
  learning_rate: 0.001
  optimizer_config:
    beta_1: 0.9
    beta_2: 0.999

  # Learning rate schedule
  lr_schedule: warmup  # or constant, cosine, exponential, polynomial
  lr_schedule_config:
    warmup_steps: 1000
    decay_steps: 5000
    decay_rate: 0.96

  # Training
  epochs: 50
  batch_size: 32
  metrics: ["accuracy"]

  # Callbacks
  callbacks:
    early_stopping: true
    early_stopping_patience: 15
    early_stopping_monitor: val_loss
    model_checkpoint: true
    checkpoint_monitor: val_loss
    reduce_lr_on_plateau: true
    reduce_lr_monitor: val_loss
    reduce_lr_factor: 0.5
    reduce_lr_patience: 5
    tensorboard: false

# Class weights for imbalanced data
class_weights:
  0: 1.0
  1: 1.5
  2: 1.5
  3: 1.5
"""


def test_the_guides_yaml_reference_loads_as_written(tmp_path: Path):
    path = tmp_path / "guide.yaml"
    path.write_text(GUIDE_YAML)
    training = hpolab.load_config(path).training
    assert training.loss_options == {"alpha": 0.25, "gamma": 2.0}
    assert training.optimizer_options == {"beta_1": 0.9, "beta_2": 0.999}
    assert training.lr_schedule == "warmup"
    assert training.lr_schedule_options == {
        "warmup_steps": 1000,
        "decay_steps": 5000,
        "decay_rate": 0.96,
    }
    assert (training.patience, training.early_stopping, training.monitor) == (15, True, "val_loss")
    assert training.callbacks == {
        "checkpoint": True,
        "reduce_lr_on_plateau": {"factor": 0.5, "patience": 5},
        "tensorboard": False,
    }
    assert training.metrics == ["accuracy"]
    assert training.class_weight == {0: 1.0, 1: 1.5, 2: 1.5, 3: 1.5}


def test_the_guide_style_study_config_runs(tmp_path: Path):
    from helpers import REPO

    result = hpolab.run_study(
        REPO / "configs" / "guide_training.yaml",
        root=tmp_path,
        quiet=True,
        track=False,
        n_trials=2,
        epochs=3,
        plots=False,
        **{"data.options.n_samples": 200},
    )
    final = hpolab.load_final_model("guide_training", "cnn1d", root=tmp_path)
    assert final.model.loss.gamma == 2.0 and result.models["cnn1d"].best_value is not None
    schedule = final.model.optimizer.get_config()["learning_rate"]["config"]
    assert schedule["kind"] == "exponential" and schedule["warmup_steps"] == 24
