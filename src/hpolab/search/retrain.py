"""Retrain the best configuration of a model type and save it as the final model."""

from __future__ import annotations

import datetime as dt
import gc
import json
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import optuna

from hpolab.config import StudyConfig
from hpolab.data.dataset import Dataset
from hpolab.layout import Layout, atomic_save, atomic_write_json, file_sha256
from hpolab.models import build_model, model_file_suffix
from hpolab.search.space import SearchSpace
from hpolab.training.fit import (
    evaluate_model,
    fit_model,
    predict_model,
    save_model,
    training_params,
)


@dataclass
class FinalModelInfo:
    """Where a final model is and what it scored."""

    model_path: Path
    sidecar_path: Path
    test_metrics: dict[str, float]
    trial_number: int
    mlflow_run_id: str | None
    seconds: float
    reused: bool = False


def existing_final(
    layout: Layout, study: str, model_type: str, trial_number: int
) -> FinalModelInfo | None:
    """The saved final model if it was made from ``trial_number`` and is intact."""
    model_path = layout.final_model_path(study, model_type, model_file_suffix(model_type))
    sidecar_path = layout.final_sidecar_path(study, model_type)
    if not (model_path.is_file() and sidecar_path.is_file()):
        return None
    try:
        meta = json.loads(sidecar_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if meta.get("best_trial") != trial_number or meta.get("model_sha256") != file_sha256(
        model_path
    ):
        return None
    return FinalModelInfo(
        model_path,
        sidecar_path,
        meta.get("test_metrics", {}),
        trial_number,
        meta.get("mlflow_run_id"),
        0.0,
        reused=True,
    )


def retrain_best(
    cfg: StudyConfig,
    model_type: str,
    study: optuna.Study,
    space: SearchSpace,
    data: Dataset,
    layout: Layout,
    trial: optuna.trial.FrozenTrial | None = None,
) -> tuple[keras.Model, dict[str, Any], float]:
    """Retrain ``trial`` (default: the best) on train + validation and save it atomically.

    The epoch count is the one the trial needed (its best epoch under early stopping).
    Returns the model, its sidecar metadata (written to disk) and the training seconds.
    """
    trial = trial or study.best_trial
    params = space.replay(trial.params)
    data = data.for_params(params)  # the trial's own preprocessing (searched STFT settings)
    hp = training_params(params, cfg.training)
    hp["epochs"] = int(trial.user_attrs.get("best_epoch", hp["epochs"]))
    if cfg.study.seed is not None:
        keras.utils.set_random_seed(cfg.study.seed)
    start = time.perf_counter()
    model = build_model(model_type, params, data.input_shape, data.task, data.n_outputs)
    fit_model(
        model,
        data,
        hp,
        monitor=cfg.study.metric,
        direction=cfg.study.resolved_direction,
        use_validation=False,
        verbose=cfg.training.verbose,
    )
    seconds = time.perf_counter() - start
    test_metrics = evaluate_model(model, data, data.X_test, data.y_test)
    test_outputs = test_predictions(model, data)
    model_path = layout.final_model_path(cfg.study.name, model_type, model_file_suffix(model_type))
    atomic_save(model_path, lambda tmp: save_model(model, tmp), suffix=model_path.suffix)
    sidecar = {
        "study": cfg.study.name,
        "model_type": model_type,
        "best_trial": trial.number,
        "best_value": trial.value,
        "metric": cfg.study.metric,
        "direction": cfg.study.resolved_direction,
        "params": params,
        "training": {
            k: hp[k] for k in ("epochs", "batch_size", "optimizer", "learning_rate", "loss")
        },
        "test_metrics": {k: round(float(v), 6) for k, v in test_metrics.items()},
        "n_test_samples": int(len(data.X_test)),
        "test_outputs": test_outputs,
        "preprocessing": data.preprocessing(),
        "data": {"source": data.source, "target": data.target, "fingerprint": data.fingerprint},
        "trial_mlflow_run_id": trial.user_attrs.get("mlflow_run_id"),
        "mlflow_run_id": None,
        "model_file": model_path.name,
        "model_sha256": file_sha256(model_path),
        "retrain_seconds": round(seconds, 2),
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "versions": library_versions(),
    }
    atomic_write_json(layout.final_sidecar_path(cfg.study.name, model_type), sidecar)
    return model, sidecar, seconds


def test_predictions(model: keras.Model, data: Dataset, max_points: int = 500) -> dict[str, Any]:
    """What reports draw from the test split: a confusion matrix, or true vs predicted."""
    raw = predict_model(model, data.X_test)
    if data.task == "classification":
        from sklearn.metrics import confusion_matrix

        labels = list(range(data.n_outputs))
        matrix = confusion_matrix(data.y_test, raw.argmax(axis=1), labels=labels)
        return {"confusion_matrix": matrix.tolist(), "classes": data.classes}
    pred = raw.reshape(-1, 1)
    if data.target_scaler is not None:
        pred = data.target_scaler.inverse(pred)
    keep = slice(0, max_points)
    return {
        "y_true": [round(float(v), 6) for v in data.y_test[keep]],
        "y_pred": [round(float(v), 6) for v in pred.reshape(-1)[keep]],
    }


def release(model: keras.Model | None) -> None:
    """Drop Keras state after a model is no longer needed."""
    del model
    keras.backend.clear_session()
    gc.collect()


def library_versions() -> dict[str, str]:
    """Versions of hpolab and the libraries a saved model depends on."""
    import numpy
    import sklearn
    import tensorflow  # the Keras backend: SavedModel and TFLite exports depend on it

    import hpolab

    return {
        "hpolab": hpolab.__version__,
        "keras": keras.__version__,
        "tensorflow": tensorflow.__version__,
        "optuna": optuna.__version__,
        "numpy": numpy.__version__,
        "scikit-learn": sklearn.__version__,
        "python": platform.python_version(),
    }
