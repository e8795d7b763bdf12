"""Retrain the best configuration of a model type and save it as the final model.

Training is asked of :mod:`hpolab.training`, saving of the final-model store; this module
only picks what to train (the trial's replayed parameters and its best epoch).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from hpolab.config import StudyConfig
from hpolab.data.dataset import Dataset
from hpolab.final_models import FinalModelRecord, FinalModelStore, Sidecar
from hpolab.models import model_file_suffix
from hpolab.models.custom import registered
from hpolab.search.space import SearchSpace
from hpolab.training.evaluation import (
    baseline_comparison,
    evaluate_model,
    rounded,
    test_split_outputs,
)
from hpolab.training.fit import build_and_fit, clear_keras, training_params
from hpolab.training.saving import library_versions, save_model

_SIDECAR_TRAINING_KEYS = ("epochs", "batch_size", "optimizer", "learning_rate", "loss")


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
    registered_version: str | None = None
    baseline: dict[str, Any] | None = None


def existing_final(
    store: FinalModelStore, study: str, model_type: str, trial_number: int
) -> FinalModelInfo | None:
    """The saved final model if it was made from ``trial_number`` and is intact."""
    record = store.find(study, model_type)
    if record is None or record.sidecar.best_trial != trial_number:
        return None
    sidecar = record.sidecar
    return FinalModelInfo(
        record.model_path,
        record.sidecar_path,
        sidecar.test_metrics,
        trial_number,
        sidecar.mlflow_run_id,
        0.0,
        reused=True,
        registered_version=(sidecar.registered_model or {}).get("version"),
        baseline=sidecar.baseline,
    )


def _builder_record(cfg: StudyConfig, model_type: str) -> dict[str, Any] | None:
    """Where a model of the user's came from (None for hpolab's own model types)."""
    user = registered(model_type)
    if user is None or cfg.models[model_type].builder is None:
        return None
    return {"source": user.source, "code_path": cfg.study.code_path}


def retrain_best(
    cfg: StudyConfig,
    model_type: str,
    study: optuna.Study,
    space: SearchSpace,
    data: Dataset,
    store: FinalModelStore,
    trial: optuna.trial.FrozenTrial | None = None,
) -> FinalModelRecord:
    """Retrain ``trial`` (default: the best) on train + validation and save it atomically.

    The epoch count is the one the trial needed (its best epoch under early stopping).
    Returns the saved record (model file and sidecar); Keras state is cleared afterwards.
    """
    trial = trial or study.best_trial
    params = space.replay(trial.params)
    data = data.for_params(params)  # the trial's own preprocessing (searched STFT settings)
    hp = training_params(params, cfg.training)
    hp["epochs"] = int(trial.user_attrs.get("best_epoch", hp["epochs"]))
    start = time.perf_counter()
    try:
        model, _ = build_and_fit(
            model_type,
            params,
            data,
            hp,
            seed=cfg.study.seed,
            monitor=cfg.study.metric,
            direction=cfg.study.resolved_direction,
            use_validation=False,
            verbose=cfg.training.verbose,
        )
        seconds = time.perf_counter() - start
        test_metrics = rounded(evaluate_model(model, data, data.X_test, data.y_test))
        sidecar = Sidecar(
            study=cfg.study.name,
            model_type=model_type,
            best_trial=trial.number,
            best_value=trial.value,
            metric=cfg.study.metric,
            direction=cfg.study.resolved_direction,
            params=params,
            training={k: hp[k] for k in _SIDECAR_TRAINING_KEYS},
            test_metrics=test_metrics,
            n_test_samples=int(len(data.X_test)),
            test_outputs=test_split_outputs(model, data),
            preprocessing=data.preprocessing(),
            data={"source": data.source, "target": data.target, "fingerprint": data.fingerprint},
            trial_mlflow_run_id=trial.user_attrs.get("mlflow_run_id"),
            retrain_seconds=round(seconds, 2),
            versions=library_versions(),
            baseline=baseline_comparison(data, test_metrics, cfg.study.metric),
            builder=_builder_record(cfg, model_type),
        )
        suffix = model_file_suffix(model_type)
        return store.write(sidecar, lambda tmp: save_model(model, tmp), suffix=suffix)
    finally:
        clear_keras()
