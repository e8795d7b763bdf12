"""Exports for serving: each format is reloaded and predicts like the original."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from hpolab.errors import ConfigError
from hpolab.models import build_model
from hpolab.training.export import TOLERANCE, export_model, parse_formats, predict_export


# The autoencoder's custom layer round trip through .keras is tested with the model zoo.
@pytest.mark.parametrize(("model_type", "shape"), [("cnn1d", (32, 3))])
def test_every_format_reloads_with_matching_predictions(
    tmp_path: Path, model_type: str, shape: tuple[int, ...]
):
    keras.backend.clear_session()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(24, *shape)).astype("float32")
    y = (X.reshape(24, -1)[:, 0] > 0).astype(int)
    model = build_model(model_type, {}, shape, "classification", 2)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(X, y, epochs=1, verbose=0)
    results = export_model(model, tmp_path, "m", sample=X[:8])
    assert [r.format for r in results] == ["keras", "h5", "savedmodel", "tflite"]
    expected = model.predict(X, verbose=0)
    for result in results:
        assert result.ok, result.describe()
        assert result.path is not None and result.path.exists()
        # Checked again here on the whole batch, not only the sample export_model used.
        got = predict_export(result.path, X)
        assert np.max(np.abs(got - expected)) <= TOLERANCE[result.format], result.format
    assert not list(tmp_path.glob(".*tmp*"))


def test_a_model_tflite_cannot_run_is_skipped_with_the_reason(tmp_path: Path):
    keras.backend.clear_session()
    model = build_model("lstm", {"units": 4}, (8, 2), "classification", 2)
    (result,) = export_model(model, tmp_path, "m", ["tflite"])
    assert not result.ok and result.path is None
    assert "outside TFLite's built-ins" in (result.skipped or "")
    assert not list(tmp_path.glob("*.tflite"))


def test_formats_are_validated():
    assert parse_formats(None) == ["keras", "h5", "savedmodel", "tflite"]
    assert parse_formats("h5, saved_model,h5") == ["h5", "savedmodel"]
    with pytest.raises(ConfigError, match="unknown format 'onnx'"):
        parse_formats("onnx")
