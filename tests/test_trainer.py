"""ModelTrainer and MultiModelTrainer on tiny arrays, with a real MLflow store."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from hpolab.errors import ConfigError
from hpolab.training.trainer import ModelTrainer, MultiModelTrainer


@pytest.fixture(scope="module")
def data() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(150, 6)).astype("float32")
    y = np.where(X[:, 0] + 0.2 * rng.normal(size=150) > 0.6, "leak", "normal")  # ~30% leak
    return {
        "Xt": X[:90],
        "yt": y[:90],
        "Xv": X[90:120],
        "yv": y[90:120],
        "Xs": X[120:],
        "ys": y[120:],
    }


def test_model_trainer_trains_evaluates_predicts_saves_and_logs(tmp_path: Path, data):
    config = {
        "hidden_layers": [16],
        "epochs": 15,
        "learning_rate": 0.01,
        "class_weight": "balanced",
    }
    trainer = ModelTrainer("mlp", config, experiment_name="manual", root=tmp_path)
    history = trainer.train(data["Xt"], data["yt"], data["Xv"], data["yv"])
    assert len(history["loss"]) >= 1 and "val_accuracy" in history
    metrics = trainer.evaluate(data["Xs"], data["ys"])
    assert metrics["accuracy"] > 0.7
    assert set(trainer.predict(data["Xs"][:5])) <= {"leak", "normal"}
    saved = trainer.save(tmp_path / "m.keras")
    reloaded = keras.saving.load_model(saved, safe_mode=True)
    assert reloaded.count_params() == trainer.model_.count_params()
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("manual")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED" and run.data.params["class_weight"] == "balanced"
    assert "val_accuracy" in run.data.metrics and "test_accuracy" in run.data.metrics
    with pytest.raises(ConfigError, match="must end in .keras"):
        trainer.save(tmp_path / "m.h5")


def test_multi_model_trainer_ranks_models(data):
    multi = MultiModelTrainer()
    multi.add_model("small", "mlp", {"hidden_layers": [4], "epochs": 3})
    multi.add_model("wider", "mlp", {"hidden_layers": [32], "epochs": 10, "learning_rate": 0.01})
    with pytest.raises(ConfigError, match="already added"):
        multi.add_model("small", "mlp")
    multi.train_all(data["Xt"], data["yt"], data["Xv"], data["yv"])
    results = multi.evaluate_all(data["Xs"], data["ys"])
    ranking = multi.compare_models("accuracy")
    best, second = ranking
    assert ranking[best]["accuracy"] >= ranking[second]["accuracy"]
    assert set(ranking) == set(results) and ranking[best] == results[best]
    with pytest.raises(ConfigError, match="no metric 'rmse'"):
        multi.compare_models("rmse")


def test_bad_trainer_settings_are_config_errors():
    with pytest.raises(ConfigError, match="metric"):
        ModelTrainer("mlp", metric="val_acc")
    with pytest.raises(ConfigError, match="epochs"):
        ModelTrainer("mlp", {"epochs": 0})
    with pytest.raises(ConfigError, match="not trained yet"):
        ModelTrainer("mlp").predict(np.zeros((2, 3)))


def test_class_weights_from_balanced_or_labels(data):
    from hpolab.training.fit import class_weights

    ds = ModelTrainer("mlp")._dataset(data["Xt"], data["yt"], data["Xv"], data["yv"])
    leak = ds.classes.index("leak")
    n_leak = int((ds.y_train == leak).sum())
    balanced = class_weights("balanced", ds)
    assert balanced[leak] == pytest.approx(len(ds.y_train) / (2 * n_leak))
    assert class_weights({"leak": 5}, ds) == {leak: 5.0, 1 - leak: 1.0}
    with pytest.raises(ConfigError, match="unknown class 'gas'"):
        class_weights({"gas": 2}, ds)
