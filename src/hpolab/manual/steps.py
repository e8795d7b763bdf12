"""The train step of a manual run: open, build or resume, fit through the core, finish.

Each step is a small function over a :class:`~hpolab.manual.context.RunContext`;
:func:`train` runs them in order. Training itself is the shared core's
(:func:`hpolab.training.fit.fit_model`); the run adds its epoch hook and checkpoints.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpolab.errors import ConfigError
from hpolab.layout import Layout, RunFolder, atomic_save, atomic_write_json
from hpolab.manual.context import RunContext, RunResult
from hpolab.manual.hooks import (
    EpochRecorder,
    best_checkpoint,
    best_so_far,
    elapsed,
    rolling_checkpoint,
)
from hpolab.manual.info import model_info
from hpolab.manual.run_dir import read_history, read_state, write_config, write_state
from hpolab.manual.spec import RunSpec
from hpolab.manual.tracking import log_finished, tracking_run
from hpolab.models import build_model
from hpolab.progress import Reporter
from hpolab.reporting.run_report import build_run_report
from hpolab.training.callbacks import checkpoint_epoch, checkpoints
from hpolab.training.evaluation import evaluate_model
from hpolab.training.fit import clear_keras, fit_model, seed_everything, training_params
from hpolab.training.saving import load_model, save_model

if TYPE_CHECKING:
    from hpolab.data import Dataset


def train(
    spec: RunSpec,
    data: Dataset,
    folder: RunFolder,
    layout: Layout,
    resume: bool,
    experiment: str | None,
    reporter: Reporter,
) -> RunResult:
    """Train ``spec`` on ``data`` into ``folder`` (or continue it there) and finish the run.

    Raises:
        ConfigError: a resume of a run that is already complete.
        TrialFailed: the loss became NaN or infinite.
    """
    run = open_run(spec, data, folder, layout, resume, reporter)
    try:
        model = initial_model(run)
        mark_running(run, experiment)
        seconds = fit(run, model)
        return finish(run, model, seconds)
    finally:
        clear_keras()  # the model lives on in its files; the caller's process may go on


def open_run(
    spec: RunSpec,
    data: Dataset,
    folder: RunFolder,
    layout: Layout,
    resume: bool,
    reporter: Reporter,
) -> RunContext:
    """The run's settings and, for a resume, its last checkpoint and the history up to it."""
    reporter.message(data.summary())
    hp = training_params(spec.params, spec.cfg.training)
    run = RunContext(spec, data, folder, layout, reporter, hp)
    if not resume:
        return run
    if read_state(folder).get("status") == "complete":
        raise ConfigError(
            f"--resume: run {folder.name!r} is already complete; use --overwrite to train it again"
        )
    saved = checkpoints(folder.checkpoints)
    if saved:
        run.checkpoint = saved[-1]
        run.initial_epoch = checkpoint_epoch(saved[-1])
        run.history = read_history(folder, run.initial_epoch)
    return run


def initial_model(run: RunContext) -> Any:
    """The model to train, after seeding: built afresh, or a resume's last checkpoint."""
    seed = run.spec.cfg.study.seed
    # Same seed, same run: weights, dropout and shuffling. A resumed run reseeds per
    # epoch reached, as the generator state inside the killed process is gone.
    seed_everything(None if seed is None else seed + run.initial_epoch)
    if run.checkpoint is None:
        write_config(run.folder, run.spec)
        data = run.data
        return build_model(
            run.spec.model_type, run.spec.params, data.input_shape, data.task, data.n_outputs
        )
    model = load_model(run.checkpoint)  # optimizer state and schedule step included
    run.reporter.message(
        f"resuming from epoch {run.initial_epoch} of {run.total_epochs} ({run.checkpoint.name})"
    )
    return model


def mark_running(run: RunContext, experiment: str | None) -> None:
    """Record the run as running in ``run_state.json`` and open (or reopen) its MLflow run."""
    state = write_state(
        run.folder,
        status="running",
        run_name=run.run_name,
        model_type=run.spec.model_type,
        epochs_done=run.initial_epoch,
        total_epochs=run.total_epochs,
    )
    run.seconds_before = float(state.get("train_seconds", 0.0))
    run.tracking = tracking_run(run, experiment, state.get("mlflow_run_id"))
    if run.tracking is not None:
        write_state(run.folder, mlflow_run_id=run.tracking.run_id)


def fit(run: RunContext, model: Any) -> float:
    """Train up to the total epochs; returns the training seconds of the whole run.

    A failure closes the MLflow run as failed; an interrupt leaves it for the resume.
    """
    resume_best = best_so_far(run)
    best = best_checkpoint(run)
    start = time.perf_counter()
    try:
        fit_model(
            model,
            run.data,
            run.hp,
            monitor=run.metric,
            direction=run.direction,
            hooks=[EpochRecorder(run)],
            run_dir=run.folder.path,
            extra_callbacks=[best, rolling_checkpoint(run, start)],
            initial_epoch=run.initial_epoch,
            compile=run.checkpoint is None,  # a checkpoint brings its optimizer state
            resume_best=resume_best,
        )
    except BaseException as exc:
        if run.tracking is not None and not isinstance(exc, KeyboardInterrupt):
            run.tracking.end("failed", error=f"{type(exc).__name__}: {exc}")
        raise
    return run.seconds_before + elapsed(start)


def finish(run: RunContext, model: Any, seconds: float) -> RunResult:
    """Save and test the final model; write model_info and the report; export; close."""
    folder = run.folder
    final_path = folder.final_model(run.spec.model_type)
    atomic_save(final_path, lambda tmp: save_model(model, tmp), suffix=".keras")
    test_metrics = evaluate_model(model, run.data, run.data.X_test, run.data.y_test)
    info = model_info(run, model, seconds, test_metrics, final_path)
    atomic_write_json(folder.model_info, info)
    pages, pngs = build_run_report(folder.report, info, run.history)
    run.reporter.message(f"report: {folder.report} ({pages} pages)")
    export_dir = export_final(run, final_path)
    if run.tracking is not None:
        files = [folder.report, final_path, folder.model_info, folder.history, folder.config]
        log_finished(run.tracking, [*files, *pngs], info)
    write_state(folder, status="complete", train_seconds=round(seconds, 2))
    shown = ", ".join(f"{k} {v:.4g}" for k, v in test_metrics.items())
    run.reporter.message(f"test: {shown}; final model: {export_dir / final_path.name}")
    return RunResult(
        run.run_name, folder.path, final_path, info, folder.report, pages, run.initial_epoch
    )


def export_final(run: RunContext, final_path: Path) -> Path:
    """Copy the final model and ``model_info.json`` to ``models/manual_runs/<run>/``."""
    export_dir = run.layout.manual_model_dir(run.run_name)
    export_dir.mkdir(parents=True, exist_ok=True)
    for path in (final_path, run.folder.model_info):
        shutil.copy2(path, export_dir / path.name)
    return export_dir
