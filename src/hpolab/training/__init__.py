"""Training: the one training core (seeding, clean-up, compile, fit), evaluation, saving.

The design guide's names are importable from here as well::

    from hpolab.training import ModelTrainer, MultiModelTrainer, get_loss_function,
        get_learning_rate_schedule, get_optimizer, KFoldValidator,
        evaluate_with_cross_validation, GridSearchTuner, RandomSearchTuner,
        HyperparameterTuner, FocalLoss, WeightedCategoricalCrossentropy, LeakAwareLoss

They are loaded on first use; the tuners live in :mod:`hpolab.search.tuners` (they search
with Optuna, which training itself never imports).
"""

from __future__ import annotations

import importlib
from typing import Any

from hpolab.training.evaluation import evaluate_model, predict_model
from hpolab.training.fit import build_and_fit, clear_keras, fit_model, seed_everything
from hpolab.training.metrics import compute_metrics
from hpolab.training.result import TrainResult

# Name -> module of the names re-exported on first use.
_LAZY = {
    "ModelTrainer": "hpolab.training.trainer",
    "MultiModelTrainer": "hpolab.training.trainer",
    "get_loss_function": "hpolab.training.losses",
    "FocalLoss": "hpolab.training.losses",
    "WeightedCategoricalCrossentropy": "hpolab.training.losses",
    "LeakAwareLoss": "hpolab.training.losses",
    "CostSensitiveLoss": "hpolab.training.losses",
    "get_learning_rate_schedule": "hpolab.training.optimizers",
    "get_optimizer": "hpolab.training.optimizers",
    "KFoldValidator": "hpolab.training.cross_validation",
    "evaluate_with_cross_validation": "hpolab.training.cross_validation",
    "GridSearchTuner": "hpolab.search.tuners",
    "RandomSearchTuner": "hpolab.search.tuners",
    "HyperparameterTuner": "hpolab.search.tuners",
}

__all__ = [
    "TrainResult",
    "build_and_fit",
    "clear_keras",
    "compute_metrics",
    "evaluate_model",
    "fit_model",
    "predict_model",
    "seed_everything",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hpolab.training' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
