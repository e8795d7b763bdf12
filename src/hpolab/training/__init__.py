"""Training: the one training core (seeding, clean-up, compile, fit), evaluation, saving."""

from hpolab.training.evaluation import evaluate_model, predict_model
from hpolab.training.fit import build_and_fit, clear_keras, fit_model, seed_everything
from hpolab.training.metrics import compute_metrics
from hpolab.training.result import TrainResult

__all__ = [
    "TrainResult",
    "build_and_fit",
    "clear_keras",
    "compute_metrics",
    "evaluate_model",
    "fit_model",
    "predict_model",
    "seed_everything",
]
