"""Saving and loading trained models, and the library versions a saved model depends on."""

from __future__ import annotations

import platform
from importlib import metadata
from pathlib import Path
from typing import Any

from hpolab.training.baselines import is_estimator, load_estimator, save_estimator
from hpolab.version import __version__


def save_model(model: Any, path: Path) -> None:
    """Save a Keras model (``.keras``) or a scikit-learn estimator (``.skops``) to ``path``."""
    if is_estimator(model):
        save_estimator(model, path)
    else:
        model.save(path)


def load_model(path: Path, trust: bool = False) -> Any:
    """Load what :func:`save_model` wrote without running code from the file: Keras
    models with ``safe_mode=True``, estimators as skops allows (``trust``: see
    :func:`hpolab.training.baselines.load_estimator`)."""
    if Path(path).suffix in (".skops", ".joblib"):
        return load_estimator(Path(path), trust=trust)
    import keras

    import hpolab.models.keras_models  # noqa: F401  (registers hpolab's custom layers)

    return keras.models.load_model(path, safe_mode=True)


def check_round_trip(model: Any, field: str) -> None:
    """Save ``model`` and load it back as final models are (``safe_mode=True``).

    Raises:
        ConfigError: naming ``field``: a custom layer, loss or activation that Keras cannot
            serialize, with how to register it.
    """
    import tempfile
    import warnings

    import keras

    from hpolab.errors import ConfigError

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "probe.keras"
        try:
            with warnings.catch_warnings():
                # The probe's optimizer state is half built; only the layers matter here.
                warnings.simplefilter("ignore")
                model.save(path)
                keras.models.load_model(path, safe_mode=True)
        except Exception as exc:  # Keras raises many types for what it cannot serialize
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:240]
            raise ConfigError(
                f"{field}: the model cannot be saved and loaded back ({first}); decorate "
                "custom layers, losses and activations with "
                "@keras.saving.register_keras_serializable() and give them get_config()"
            ) from None


def library_versions() -> dict[str, str]:
    """Versions of hpolab and the libraries a saved model depends on."""
    versions = {"hpolab": __version__}
    # tensorflow is the Keras backend: SavedModel and TFLite exports depend on it.
    for name in ("keras", "tensorflow", "optuna", "numpy", "scikit-learn"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:  # e.g. tensorflow-cpu provides tensorflow
            versions[name] = _module_version(name)
    versions["python"] = platform.python_version()
    return versions


def _module_version(name: str) -> str:
    import importlib

    module = importlib.import_module("sklearn" if name == "scikit-learn" else name)
    return str(getattr(module, "__version__", "unknown"))
