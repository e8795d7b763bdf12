"""The final model as an MLflow model: ``mlflow.pyfunc.load_model(uri).predict(raw rows)``.

The logged folder is a standard MLflow model (``MLmodel``, environment files, signature,
input example) whose python function applies what the study did to the data: raw feature
rows in (a DataFrame with the training columns, or an array of the raw input shape), the
saved scaling (and spectrogram) applied, original labels or target units out. Pass
``params={"output": "proba"}`` for class probabilities. The final model file and its
sidecar travel as the model's artifacts, and hpolab's own code travels with it, so
serving needs hpolab's dependencies but not hpolab itself.

A Keras final model also carries MLflow's ``keras`` flavor, on the same file:
``mlflow.keras.load_model(uri)`` gives the bare network, which takes standardized
features (the scaling is in the ``sidecar`` artifact) and returns class scores.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import warnings
import zipfile
from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np

# What predicting needs, of hpolab's dependencies (tracking, search and plots are not).
_SERVING_REQUIREMENTS = (
    "tensorflow-cpu",
    "keras",
    "numpy",
    "scikit-learn",
    "skops",
    "scipy",
    "pandas",
    "pydantic",
    "pyyaml",
)
OUTPUTS = ("label", "proba")
KERAS_FILE = "model.keras"


class FinalModelPyfunc(mlflow.pyfunc.PythonModel):
    """MLflow's python-function view of an hpolab final model (see the module docstring)."""

    def load_context(self, context: Any) -> None:
        from hpolab.api import FinalModel
        from hpolab.training.saving import load_model

        path = Path(context.artifacts["model"])
        metadata_ = json.loads(Path(context.artifacts["sidecar"]).read_text(encoding="utf-8"))
        self.final = FinalModel(load_model(path), metadata_, path)

    # A DataFrame is welcome too. MLflow reads the hint of model_input as the model's
    # schema; an array hint (or a DataFrame one) means "none from hints": the signature
    # logged with the model decides.
    def predict(
        self, context: Any, model_input: np.ndarray, params: dict[str, Any] | None = None
    ) -> Any:
        """Labels (or target values) for raw rows; probabilities with ``output="proba"``."""
        output = (params or {}).get("output", "label")
        if output not in OUTPUTS:
            raise ValueError(f"params.output: use one of {', '.join(OUTPUTS)}, not {output!r}")
        X = raw_features(model_input, self.final.metadata["preprocessing"])
        if output == "proba":
            return self.final.predict_proba(X)
        return self.final.predict(X)


def raw_features(model_input: Any, preprocessing: dict[str, Any]) -> np.ndarray:
    """The raw feature array of ``model_input``: a DataFrame's training columns in their
    training order, or an array (reshaped to the raw input shape when it comes flat)."""
    columns = preprocessing.get("feature_names") or []
    if hasattr(model_input, "columns") and columns and set(columns) <= set(model_input.columns):
        return np.asarray(model_input[columns], dtype=np.float32)
    X = np.asarray(model_input, dtype=np.float32)
    shape = raw_shape(preprocessing)
    if shape and X.shape[1:] != shape:
        X = X.reshape((len(X), *shape))
    return X


def raw_shape(preprocessing: dict[str, Any]) -> tuple[int, ...] | None:
    """The shape of one raw input row: a window before its spectrogram, or the model's
    input; None for a spectrogram model of a version that did not keep it."""
    if preprocessing.get("raw_input_shape"):
        return tuple(preprocessing["raw_input_shape"])
    if preprocessing.get("spectrogram"):
        return None
    return tuple(preprocessing["input_shape"]) if preprocessing.get("input_shape") else None


def save_pyfunc(folder: Path, model_path: Path, sidecar_path: Path) -> str:
    """Write the MLflow model of a final model into ``folder``; returns a digest of its
    weights (equal for a retrain that reproduces the same model)."""
    from hpolab.api import FinalModel
    from hpolab.training.saving import load_model

    sidecar = json.loads(sidecar_path.read_text(encoding="utf-8"))
    final = FinalModel(load_model(model_path), sidecar, model_path)
    example = input_example(sidecar["preprocessing"])
    signature = None
    if example is not None:
        output = final.predict(raw_features(example, sidecar["preprocessing"]))
        signature = mlflow.models.infer_signature(example, output, params={"output": "label"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MLflow's advice on type hints: the signature is given
        _save(folder, model_path, sidecar_path, signature, example)
    return weights_digest(final.model, model_path)


def _save(folder: Path, model_path: Path, sidecar_path: Path, signature: Any, example: Any) -> None:
    keras_file = model_path.suffix == ".keras"
    with tempfile.TemporaryDirectory() as staging:
        if keras_file:  # MLflow's keras flavor finds its file as <data>/model.keras
            model_path = Path(shutil.copyfile(model_path, Path(staging) / KERAS_FILE))
        mlflow.pyfunc.save_model(
            path=str(folder),
            # Logged as code (this package's pyfunc_model.py), not as a pickle.
            python_model=str(Path(__file__).with_name("pyfunc_model.py")),
            artifacts={"model": str(model_path), "sidecar": str(sidecar_path)},
            signature=signature,
            input_example=example,
            code_paths=[str(Path(__file__).resolve().parents[1])],  # the hpolab package
            pip_requirements=requirements(),
        )
    if keras_file:
        _add_keras_flavor(folder)


def _add_keras_flavor(folder: Path) -> None:
    """Declare the artifacts' ``model.keras`` as MLflow's keras flavor too (one file for
    both flavors), as ``mlflow.keras.save_model`` would have written it."""
    import keras
    from mlflow.models import Model

    mlmodel = Model.load(str(folder / "MLmodel"))
    mlmodel.add_flavor(
        "keras",
        data="artifacts",
        keras_version=keras.__version__,
        keras_backend=keras.backend.backend(),
        save_exported_model=False,
    )
    mlmodel.save(str(folder / "MLmodel"))


def input_example(preprocessing: dict[str, Any]) -> Any:
    """Two raw rows of realistic magnitude: the training mean, and half a standard
    deviation above it; for windows turned into spectrograms (their raw scale is not
    kept), silence and unit noise. None when the raw shape is unknown."""
    from hpolab.data.dataset import Scaler

    shape = raw_shape(preprocessing)
    if shape is None or not preprocessing.get("feature_scaler"):
        return None
    if preprocessing.get("spectrogram"):
        noise = np.random.default_rng(0).normal(size=shape)
        return np.stack([np.zeros(shape), noise]).astype(np.float64)
    scaler = Scaler.from_dict(preprocessing["feature_scaler"])
    rows = scaler.inverse(np.stack([np.zeros(shape), np.full(shape, 0.5)])).astype(np.float64)
    columns = preprocessing.get("feature_names") or []
    if len(shape) == 1 and len(columns) == shape[0]:
        import pandas as pd

        return pd.DataFrame(rows, columns=columns)
    return rows


def weights_digest(model: Any, path: Path) -> str:
    """SHA-256 of a Keras model's weights (its file also holds a save time), of a zipped
    model's members (skops), or of the file."""
    digest = hashlib.sha256()
    if hasattr(model, "get_weights"):
        for array in model.get_weights():
            digest.update(np.ascontiguousarray(array).tobytes())
    elif zipfile.is_zipfile(path):  # skops: the members, not the zip's time stamps
        with zipfile.ZipFile(path) as archive:
            for name in sorted(archive.namelist()):
                digest.update(name.encode())
                digest.update(archive.read(name))
    else:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def requirements() -> list[str]:
    """Pinned requirements of the serving environment (those installed here)."""
    pinned = []
    for name in _SERVING_REQUIREMENTS:
        for candidate in (name, "tensorflow") if name == "tensorflow-cpu" else (name,):
            try:
                pinned.append(f"{candidate}=={metadata.version(candidate)}")
                break
            except metadata.PackageNotFoundError:
                continue
    return pinned
