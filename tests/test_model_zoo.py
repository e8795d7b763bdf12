"""Keras builders of the model zoo: each builds and trains on its kind of input."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
from helpers import run_cli, run_in_process

from hpolab.cli.run import main as run_main
from hpolab.errors import ConfigError
from hpolab.models import available_models, build_model, default_search_space

SHAPES = {
    "tabular": (12,),
    "windows": (32, 3),
    "images": (16, 16, 1),
    "spectrograms": (6, 9, 3),  # (frames, bins, channels)
}
CASES = [
    ("mlp", "tabular"),
    ("cnn1d", "windows"),
    ("lstm", "windows"),
    ("lstm", "tabular"),
    ("cnn2d", "images"),
    ("cnn2d", "windows"),
    ("resnet", "windows"),
    ("resnet", "images"),
    ("resnet", "tabular"),
    ("cnn1d", "spectrograms"),
    ("lstm", "spectrograms"),
    ("resnet", "spectrograms"),
    ("autoencoder", "windows"),
    ("ensemble", "windows"),
]


def test_every_model_type_is_registered_with_a_default_space():
    assert {
        "mlp",
        "cnn1d",
        "lstm",
        "cnn2d",
        "resnet",
        "autoencoder",
        "ensemble",
        "random_forest",
        "svm",
        "gradient_boosting",
    } <= set(available_models())
    for name in available_models():
        assert default_search_space(name), name


@pytest.mark.parametrize(("model_type", "kind"), CASES)
def test_builder_trains_one_epoch(model_type: str, kind: str):
    keras.backend.clear_session()
    shape = SHAPES[kind]
    X = np.random.default_rng(0).normal(size=(24, *shape)).astype("float32")
    y = (X.reshape(24, -1)[:, 0] > 0).astype(int)
    model = build_model(model_type, {}, shape, "classification", 2)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(X, y, epochs=1, batch_size=8, verbose=0)
    assert model.predict(X[:2], verbose=0).shape == (2, 2)
    regression = build_model(model_type, {}, shape, "regression", 1)
    assert regression.output_shape == (None, 1)


def test_builders_refuse_inputs_they_cannot_read():
    with pytest.raises(ConfigError, match="models.cnn2d: needs 2-D inputs"):
        build_model("cnn2d", {}, (12,), "classification", 2)
    with pytest.raises(ConfigError, match="two or more different model types"):
        build_model("ensemble", {"members": ["mlp"]}, (12,), "classification", 2)
    with pytest.raises(ConfigError, match="cannot be members"):
        build_model("ensemble", {"members": ["mlp", "svm"]}, (12,), "classification", 2)
    with pytest.raises(ConfigError, match="pooling: use avg, max"):
        build_model("cnn1d", {"pooling": "median"}, (32, 3), "classification", 2)


def test_ensemble_averages_its_members_probabilities():
    keras.backend.clear_session()
    params = {"members": ["mlp", "cnn1d"], "mlp__hidden_layers": [8], "cnn1d__filters": 4}
    model = build_model("ensemble", params, (32, 3), "classification", 3)
    X = np.random.default_rng(1).normal(size=(5, 32, 3)).astype("float32")
    members = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    assert [m.name for m in members] == ["mlp", "cnn1d"]
    assert members[0].get_layer("dense_0").units == 8
    assert members[1].get_layer("conv_0").filters == 4
    expected = np.mean([m.predict(X, verbose=0) for m in members], axis=0)
    assert np.allclose(model.predict(X, verbose=0), expected, atol=1e-6)
    assert np.allclose(model.predict(X, verbose=0).sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("model_type", ["autoencoder", "ensemble"])
def test_custom_models_round_trip_through_keras_files(tmp_path: Path, model_type: str):
    from hpolab.training.saving import load_model

    keras.backend.clear_session()
    X = np.random.default_rng(2).normal(size=(16, 10)).astype("float32")
    y = (X[:, 0] > 0).astype(int)
    model = build_model(model_type, {}, (10,), "classification", 2)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(X, y, epochs=1, verbose=0)
    path = tmp_path / f"{model_type}.keras"
    model.save(path)
    loaded = load_model(path)  # safe_mode=True
    assert np.allclose(loaded.predict(X, verbose=0), model.predict(X, verbose=0), atol=1e-6)


def test_autoencoder_adds_its_reconstruction_error_to_the_loss():
    keras.backend.clear_session()
    X = np.random.default_rng(3).normal(size=(8, 10)).astype("float32")
    model = build_model("autoencoder", {"reconstruction_weight": 2.0}, (10,), "regression", 1)
    model(X)
    (penalty,) = model.losses
    recon_model = keras.Model(model.input, model.get_layer("reconstruction").output)
    expected = 2.0 * np.mean((recon_model.predict(X, verbose=0) - X) ** 2)
    assert float(penalty) == pytest.approx(expected, rel=1e-4)


@pytest.mark.slow
def test_lstm_and_resnet_studies_run_from_the_cli(tmp_path: Path, csv_file: Path):
    run_cli(
        "--study-name",
        "zoo",
        "--data",
        str(csv_file),
        "--target",
        "label",
        "--models",
        "lstm,resnet",
        "--n-trials",
        "1",
        "--epochs",
        "1",
        "--no-plots",
        "--no-mlflow",
        "-q",
        root=tmp_path,
        check=True,
    )
    for mt in ("lstm", "resnet"):
        assert (tmp_path / "models" / "hpo_derived" / "zoo" / f"final_model_{mt}.keras").exists()
    code, _, err = run_in_process(
        run_main,
        "--study-name",
        "zoo2",
        "--data",
        "builtin:breast_cancer",
        "--models",
        "cnn2d",
        "-q",
        "--root",
        str(tmp_path),
    )
    assert code == 2 and "models.cnn2d: needs 2-D inputs" in err
    assert not (tmp_path / "hpo_studies" / "zoo2.db").exists()
