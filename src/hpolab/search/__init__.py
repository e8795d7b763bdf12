"""Optuna side of hpolab: spaces, samplers, pruners, objective, study runs, retraining."""
