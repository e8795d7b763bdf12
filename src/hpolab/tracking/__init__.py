"""MLflow tracking behind a small interface; nothing else in hpolab imports mlflow."""

from hpolab.tracking.mlflow_tracker import StudyTracker, TrialRun

__all__ = ["StudyTracker", "TrialRun"]
