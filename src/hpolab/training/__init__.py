"""Training: compile, fit with early stopping and epoch hooks, evaluate, retrain."""

from hpolab.training.fit import TrainResult, evaluate_model, fit_model, predict_model
from hpolab.training.metrics import compute_metrics

__all__ = ["TrainResult", "compute_metrics", "evaluate_model", "fit_model", "predict_model"]
