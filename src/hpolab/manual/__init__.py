"""Manual training runs (``train_nn_model.py`` / ``hpolab train``): one known configuration.

A run trains with the same core as study trials (:func:`hpolab.training.fit.fit_model`)
and keeps everything in ``training/runs/<run>/`` (names in :class:`hpolab.layout.RunFolder`):

``checkpoints/epoch_<n>.keras``   the last few epochs (weights + optimizer state), for resume
``best_model.keras``              the best validation epoch
``final_model_<type>.keras``      the model at the end (best weights restored)
``training_history.json``         every epoch's metrics (rewritten after each epoch)
``model_info.json``               type, params, size, data, timing, test metrics, versions
``config.yaml``                   the effective configuration
``run_state.json``                status, epochs done, MLflow run id (what a resume reads)
``console.log``                   what the run reported, and library warnings
``report.pdf`` + ``*.png``        the run report

The final model is also copied to ``models/manual_runs/<run>/`` with ``model_info.json``.

Modules: :mod:`~hpolab.manual.spec` (what to train), :mod:`~hpolab.manual.run_dir` (the
folder and its state files), :mod:`~hpolab.manual.train` (:func:`train_run`), and, imported
only when a run trains, :mod:`~hpolab.manual.steps` with its hooks, ``model_info`` and
MLflow run.
"""

from hpolab.manual.context import RunResult
from hpolab.manual.run_dir import (
    check_run_dir,
    default_run_name,
    prepare_run_dir,
    read_state,
    write_config,
    write_state,
)
from hpolab.manual.spec import RunSpec, resolve_spec, saved_spec
from hpolab.manual.train import train_run

__all__ = [
    "RunResult",
    "RunSpec",
    "check_run_dir",
    "default_run_name",
    "prepare_run_dir",
    "read_state",
    "resolve_spec",
    "saved_spec",
    "train_run",
    "write_config",
    "write_state",
]
