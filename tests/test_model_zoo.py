"""Keras builders of the model zoo: each builds and trains on its kind of input."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
from helpers import run_cli

from hpolab.errors import ConfigError
from hpolab.models import available_models, build_model, default_search_space

SHAPES = {
    "tabular": (12,),
    "windows": (32, 3),
    "images": (16, 16, 1),
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
]


def test_every_keras_model_type_is_registered_with_a_default_space():
    assert {"mlp", "cnn1d", "lstm", "cnn2d", "resnet"} <= set(available_models())
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
    with pytest.raises(ConfigError, match="models.lstm: needs"):
        build_model("lstm", {}, (8, 8, 1), "classification", 2)


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
    bad = run_cli(
        "--study-name",
        "zoo2",
        "--data",
        "builtin:breast_cancer",
        "--models",
        "cnn2d",
        "-q",
        root=tmp_path,
    )
    assert bad.returncode == 2 and "models.cnn2d: needs 2-D inputs" in bad.stderr
    assert not (tmp_path / "hpo_studies" / "zoo2.db").exists()
