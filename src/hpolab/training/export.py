"""Export a trained Keras model for serving: ``.keras``, ``.h5``, SavedModel, TFLite.

Every export is loaded back and its predictions on a sample batch are compared with the
original model's, so a format that silently changes the model is reported, not shipped.
TFLite conversion is attempted from the SavedModel; a model whose operations TFLite does
not support is skipped with the converter's reason.
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from hpolab.errors import ConfigError
from hpolab.layout import atomic_save

FORMATS = ("keras", "h5", "savedmodel", "tflite")
# Float32 round trips of the same graph agree to ~1e-7; TFLite kernels differ slightly more.
TOLERANCE = {"keras": 1e-6, "h5": 1e-6, "savedmodel": 1e-5, "tflite": 1e-4}


@dataclass
class ExportResult:
    """One exported file or folder, and how closely it reproduces the model."""

    format: str
    path: Path | None
    max_abs_diff: float | None = None
    skipped: str | None = None
    # The sidecar copied beside it (scaling, labels): the export takes standardized inputs.
    metadata: Path | None = None

    @property
    def ok(self) -> bool:
        return self.skipped is None and (
            self.max_abs_diff is not None and self.max_abs_diff <= TOLERANCE[self.format]
        )

    def describe(self) -> str:
        if self.skipped:
            return f"{self.format}: skipped ({self.skipped})"
        return (
            f"{self.format}: {self.path} (max |difference| {self.max_abs_diff:.2e}, "
            f"tolerance {TOLERANCE[self.format]:.0e})"
        )


def parse_formats(text: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """``"h5,tflite"`` or a list -> validated format names (default: all)."""
    if not text:
        return list(FORMATS)
    names = [f.strip().lower() for f in (text.split(",") if isinstance(text, str) else text)]
    names = ["savedmodel" if n in ("saved_model", "tf") else n for n in names if n]
    for name in names:
        if name not in FORMATS:
            raise ConfigError(f"--format: unknown format {name!r}; use {', '.join(FORMATS)}")
    return list(dict.fromkeys(names))


def export_model(
    model: keras.Model,
    dest: Path,
    name: str,
    formats: list[str] | tuple[str, ...] = FORMATS,
    sample: np.ndarray | None = None,
) -> list[ExportResult]:
    """Write ``model`` to ``dest`` as ``<name>.<ext>`` in each format and verify it.

    ``sample`` is the batch predictions are compared on (default: 8 random inputs of the
    model's input shape).
    """
    dest.mkdir(parents=True, exist_ok=True)
    batch = sample if sample is not None else _random_batch(model)
    expected = np.asarray(model.predict(batch, verbose=0))
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        saved_model: Path | None = None
        for fmt in formats:
            if fmt == "keras":
                path = dest / f"{name}.keras"
                atomic_save(path, lambda tmp: model.save(tmp), suffix=".keras")
            elif fmt == "h5":
                path = dest / f"{name}.h5"
                with _quiet_absl():  # Keras warns that .h5 is a legacy format; asked for
                    atomic_save(path, lambda tmp: model.save(tmp), suffix=".h5")
            elif fmt == "savedmodel":
                path = dest / f"{name}_savedmodel"
                saved_model = _export_savedmodel(model, path)
            else:
                source = saved_model or _export_savedmodel(model, Path(scratch) / "sm")
                path = dest / f"{name}.tflite"
                reason = _to_tflite(source, path)
                if reason is not None:
                    results.append(ExportResult(fmt, None, skipped=reason))
                    continue
            got = predict_export(path, batch)
            results.append(ExportResult(fmt, path, float(np.max(np.abs(got - expected)))))
    return results


def predict_export(path: Path, X: np.ndarray) -> np.ndarray:
    """Predictions of an exported model (any of the four formats) on ``X``."""
    path = Path(path)
    if path.suffix == ".keras":
        import hpolab.models.keras_models  # noqa: F401  (registers custom layers)

        loaded = keras.models.load_model(path, safe_mode=True, compile=False)
        return np.asarray(loaded.predict(X, verbose=0))
    if path.suffix == ".h5":
        import hpolab.models.keras_models  # noqa: F401
        from hpolab.training import losses  # noqa: F401  (registers custom losses)

        loaded = keras.models.load_model(path, compile=False)
        return np.asarray(loaded.predict(X, verbose=0))
    if path.suffix == ".tflite":
        return _tflite_predict(path, X)
    import tensorflow as tf

    served = tf.saved_model.load(str(path))
    return np.asarray(served.serve(tf.constant(X, dtype=tf.float32)))


def _random_batch(model: keras.Model) -> np.ndarray:
    shape = tuple(int(d) for d in model.input_shape[1:])
    return np.random.default_rng(0).normal(size=(8, *shape)).astype(np.float32)


def _export_savedmodel(model: keras.Model, path: Path) -> Path:
    # model.export writes a folder; build it aside and swap it in, so a failed export
    # never leaves half a SavedModel where a server would load it.
    tmp = path.with_name(f".{path.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.export(str(tmp), verbose=False)
    shutil.rmtree(path, ignore_errors=True)
    tmp.rename(path)
    return path


@contextmanager
def _quiet_absl() -> Iterator[None]:
    from absl import logging as absl_logging

    level = absl_logging.get_verbosity()
    absl_logging.set_verbosity(absl_logging.ERROR)
    try:
        yield
    finally:
        absl_logging.set_verbosity(level)


def _to_tflite(saved_model: Path, path: Path) -> str | None:
    """Convert with TFLite's built-in operations; the reason if the model needs others.

    Models that need TensorFlow ops inside TFLite (LSTMs, "Select TF ops") are skipped:
    the plain TFLite runtime cannot run them, so the export could not be verified.
    """
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    try:
        with _quiet_absl(), _quiet_stderr():
            content = converter.convert()
    except Exception as exc:  # the converter raises many types; the reason is what matters
        last = str(exc).strip().splitlines()[-1][:160]
        return f"needs operations outside TFLite's built-ins ({last})"
    atomic_save(path, lambda tmp: tmp.write_bytes(content), suffix=".tflite")
    return None


@contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence the converter's MLIR diagnostics (written by C++ straight to fd 2)."""
    import os
    import sys

    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _tflite_predict(path: Path, X: np.ndarray) -> np.ndarray:
    import tensorflow as tf

    # tf.lite.Interpreter announces its successor package and its CPU delegate.
    with warnings.catch_warnings(), _quiet_stderr():
        warnings.simplefilter("ignore")
        interpreter = tf.lite.Interpreter(model_path=str(path))
        interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]
    interpreter.resize_tensor_input(inp["index"], list(X.shape))
    interpreter.allocate_tensors()
    interpreter.set_tensor(inp["index"], np.asarray(X, dtype=np.float32))
    interpreter.invoke()
    return np.asarray(interpreter.get_tensor(out["index"]))


def export_summary(results: list[ExportResult]) -> dict[str, Any]:
    """JSON-ready summary: per format, the path and the verified difference."""
    return {
        r.format: {
            "path": str(r.path) if r.path else None,
            "max_abs_diff": r.max_abs_diff,
            "tolerance": TOLERANCE[r.format],
            "ok": r.ok,
            "skipped": r.skipped,
            "metadata": str(r.metadata) if r.metadata else None,
        }
        for r in results
    }
