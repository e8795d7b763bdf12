"""Builder classes of hpolab.models on real Keras and scikit-learn, with tiny shapes."""

from __future__ import annotations

import subprocess
import sys

import keras
import numpy as np
import pytest
from sklearn.base import BaseEstimator, is_classifier, is_regressor

from hpolab.errors import ConfigError
from hpolab.models import (
    CNN1DBuilder,
    EnsembleModel,
    GradientBoostingModel,
    LSTMBuilder,
    MLPBuilder,
    RandomForestModel,
    ResNetBuilder,
    SVMClassifier,
    params_from_config,
)

SHAPE = (64, 3)

# The design guide's config: training settings only, in its own vocabulary.
GUIDE_CONFIG = {
    "training": {
        "loss": "focal_loss",
        "optimizer": "adam",
        "learning_rate": 0.001,
        "loss_config": {"alpha": 0.25, "gamma": 2.0},
        "epochs": 50,
        "batch_size": 32,
        "callbacks": {"early_stopping": True, "early_stopping_patience": 15},
    },
    "class_weights": {0: 1.0, 1: 1.5, 2: 1.5, 3: 1.5},
}

KERAS_CASES = [
    (MLPBuilder, {"hidden_layers": [8]}),
    (CNN1DBuilder, {"filters": 4, "n_conv_layers": 1, "dense_units": 8}),
    (LSTMBuilder, {"units": 4, "dense_units": 4}),
    (ResNetBuilder, {"filters": 4, "n_blocks": 1}),
    (EnsembleModel, {"members": ["mlp", "cnn1d"], "mlp__hidden_layers": [4], "cnn1d__filters": 4}),
]


@pytest.mark.parametrize(("cls", "params"), KERAS_CASES, ids=[c.__name__ for c, _ in KERAS_CASES])
def test_keras_builders_build_and_return_themselves(cls, params):
    builder = cls({**GUIDE_CONFIG, "model": params})
    assert builder.build(input_shape=SHAPE, n_classes=4) is builder
    model = builder.model
    assert isinstance(model, keras.Model)
    assert model.input_shape == (None, *SHAPE) and model.output_shape == (None, 4)
    assert builder.params == params
    regressor = cls({"model": params}, task="regression").build(SHAPE).model
    assert regressor.output_shape == (None, 1)


def test_guide_examples_work_as_written():
    cnn = CNN1DBuilder(GUIDE_CONFIG).build(input_shape=(32, 9), n_classes=4).model
    assert cnn.output_shape == (None, 4)
    builder = CNN1DBuilder(GUIDE_CONFIG)
    model = builder.build(input_shape=(32, 9), n_classes=4)
    assert model.model is builder.model  # build returns the builder: .model works on it
    rf = RandomForestModel(GUIDE_CONFIG).model
    svm = SVMClassifier(GUIDE_CONFIG).model
    assert is_classifier(rf) and is_classifier(svm) and not hasattr(rf, "classes_")


def test_a_built_cnn1d_trains_one_epoch():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(16, *SHAPE)).astype("float32")
    y = rng.integers(0, 3, size=16)
    model = CNN1DBuilder({"filters": 4, "n_conv_layers": 1}).build(SHAPE, n_classes=3).model
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    history = model.fit(X, y, epochs=1, batch_size=8, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert model.predict(X, verbose=0).shape == (16, 3)


@pytest.mark.parametrize(
    ("cls", "config", "attribute", "value"),
    [
        (RandomForestModel, {"random_forest": {"n_estimators": 7}}, "n_estimators", 7),
        (GradientBoostingModel, {"learning_rate": 0.2, "max_iter": 9}, "max_iter", 9),
        (SVMClassifier, {"model": {"C": 3.0}}, "C", 3.0),
    ],
)
def test_sklearn_models_are_unfitted_estimators_with_the_config_applied(
    cls, config, attribute, value
):
    model = cls({**GUIDE_CONFIG, **config}).model
    assert isinstance(model, BaseEstimator) and is_classifier(model)
    params = model.get_params()
    assert params.get(attribute, params.get(f"estimator__{attribute}")) == value


def test_sklearn_task_keyword_and_svm_is_classification_only():
    assert is_regressor(RandomForestModel(task="regression").model)
    assert is_regressor(GradientBoostingModel(task="regression").model)
    with pytest.raises(ConfigError, match="task: SVMClassifier is classification only"):
        SVMClassifier(task="regression")
    with pytest.raises(ConfigError, match="task: 'clustering' is not one of"):
        RandomForestModel(task="clustering")


def test_a_rf_model_fits_tiny_data():
    X = np.random.default_rng(1).normal(size=(20, 4))
    y = np.arange(20) % 2
    model = RandomForestModel({"n_estimators": 5, "n_jobs": 1}).model
    assert model.fit(X, y).predict(X).shape == (20,)


def test_parameter_sources_and_their_precedence():
    config = {
        "epochs": 5,  # a training key: ignored by the builder
        "filters": 8,
        "dropout": 0.1,
        "model": {"filters": 16, "kernel_size": 3},
        "cnn1d": {"filters": 32},
        "resnet": {"n_blocks": 4},  # another model type's section: skipped
        "callbacks": {"checkpoint": True},
    }
    assert params_from_config("cnn1d", config) == {"filters": 32, "kernel_size": 3, "dropout": 0.1}
    shared = {"cnn1d": {"filters": 8}, "lstm": {"units": 4}, "training": {"epochs": 3}}
    assert params_from_config("lstm", shared) == {"units": 4}
    assert params_from_config("cnn1d", shared) == {"filters": 8}
    # learning_rate is a parameter of gradient boosting, a training key elsewhere.
    assert params_from_config("gradient_boosting", {"learning_rate": 0.3}) == {"learning_rate": 0.3}
    assert params_from_config("cnn1d", {"learning_rate": 0.3}) == {}
    assert params_from_config("cnn1d", None) == {}


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"filterz": 3}, r"config: unknown key 'filterz'; did you mean 'filters'\?"),
        ({"trainig": {}}, r"config: unknown key 'trainig'; did you mean 'training'\?"),
        ({"zzz": 1}, r"config: unknown key 'zzz'; use .*filters, .*kernel_size"),
        (
            {"model": {"kernel": 3}},
            r"config.model: unknown cnn1d parameter 'kernel'.*'kernel_size'",
        ),
        ({"cnn1d": {"units": 3}}, r"config.cnn1d: unknown cnn1d parameter 'units'"),
        ({"model": [1, 2]}, r"config.model: expected a mapping"),
        ([("filters", 3)], r"config: expected a mapping"),
    ],
)
def test_unknown_keys_are_refused_with_the_key_named(config, message):
    with pytest.raises(ConfigError, match=message) as info:
        CNN1DBuilder(config)
    assert "\n" not in str(info.value)


def test_sklearn_models_refuse_unknown_keys_too():
    with pytest.raises(
        ConfigError, match=r"unknown key 'n_estimator'; did you mean 'n_estimators'"
    ):
        RandomForestModel({"n_estimator": 10})
    with pytest.raises(ConfigError, match=r"config.model: unknown svm parameter 'filters'"):
        SVMClassifier({"model": {"filters": 8}})


def test_model_before_build_and_bad_build_arguments():
    builder = CNN1DBuilder()
    with pytest.raises(ConfigError, match=r"call build\(input_shape, n_classes\) first"):
        _ = builder.model
    with pytest.raises(ConfigError, match="n_classes: a classifier needs the number of classes"):
        builder.build(SHAPE)
    with pytest.raises(ConfigError, match="n_classes: a classifier needs 2 or more"):
        builder.build(SHAPE, n_classes=1)
    with pytest.raises(ConfigError, match="n_classes: 3 differs from n_outputs 4"):
        builder.build(SHAPE, n_classes=3, n_outputs=4)
    with pytest.raises(ConfigError, match="input_shape: expected the positive sizes"):
        builder.build((64, 0), n_classes=2)
    with pytest.raises(ConfigError, match="input_shape"):
        builder.build("64", n_classes=2)
    with pytest.raises(ConfigError, match="n_outputs: a regressor here predicts one target"):
        CNN1DBuilder(task="regression").build(SHAPE, n_outputs=2)
    with pytest.raises(ConfigError, match="n_classes: only for task='classification'"):
        CNN1DBuilder(task="regression").build(SHAPE, n_classes=2)
    assert builder.build(SHAPE, n_outputs=np.int64(2)).model.output_shape == (None, 2)
    assert builder.build(np.zeros((5, *SHAPE)).shape[1:], n_classes=2).model is not None


def test_importing_hpolab_models_does_not_import_keras_or_sklearn():
    code = "import sys, hpolab.models; print('keras' in sys.modules, 'sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
