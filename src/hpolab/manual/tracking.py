"""The MLflow side of a manual run: one run per training run, continued by a resume."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpolab.config import TRAINING_KEYS
from hpolab.manual.context import RunContext

if TYPE_CHECKING:
    from hpolab.tracking import TrialRun


def tracking_run(
    run: RunContext, experiment: str | None, mlflow_run_id: str | None
) -> TrialRun | None:
    """The MLflow run of ``run``: the one it logged to before a stop, else a new one.

    ``None`` without an experiment (``--no-mlflow``); MLflow is imported only with one.
    """
    if not experiment:
        return None
    from hpolab.tracking import StudyTracker

    tracker = StudyTracker(run.layout.tracking_uri, run.layout.artifacts_dir, experiment)
    if mlflow_run_id:
        resumed = tracker.resume_run(mlflow_run_id)
        if resumed is not None:
            # Epochs written in batches: those a kill kept from MLflow come from the history.
            resumed.log_history(run.history)
            return resumed
    params = {
        "model_type": run.spec.model_type,
        **run.spec.params,
        **{k: run.hp[k] for k in TRAINING_KEYS if k in run.hp},
    }
    return tracker.start_run(run.run_name, params, role="manual")


def log_finished(tracking: TrialRun, files: list[Path], info: dict[str, Any]) -> None:
    """Attach the run's files and close the MLflow run as complete with its best value."""
    for path in files:
        tracking.log_artifact(path)
    tracking.end("complete", info["best_value"], attrs={"best_epoch": info["best_epoch"]})
