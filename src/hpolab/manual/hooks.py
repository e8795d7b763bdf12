"""What a manual run adds to the training core: its epoch hook and its checkpoints."""

from __future__ import annotations

import time
from dataclasses import dataclass

import keras

from hpolab.manual.context import RunContext
from hpolab.manual.run_dir import write_history, write_state
from hpolab.training.callbacks import BestSoFar, RollingCheckpoint, keras_mode
from hpolab.training.saving import load_model

KEEP_CHECKPOINTS = 3
SHOWN_METRICS = ("loss", "val_loss")  # shown each epoch, with the run's metric


@dataclass
class EpochRecorder:
    """Epoch hook: history file, one line per epoch for the user, metrics to MLflow."""

    run: RunContext

    def __call__(self, epoch: int, logs: dict[str, float]) -> bool:
        run = self.run
        for key, value in logs.items():
            run.history.setdefault(key, []).append(value)
        write_history(run.folder, run.history)
        shown = ", ".join(
            f"{k} {v:.4g}" for k, v in logs.items() if k in (*SHOWN_METRICS, run.metric)
        )
        run.reporter.message(f"epoch {epoch}/{run.total_epochs}: {shown}")
        if run.tracking is not None:
            run.tracking.log_epoch(epoch, logs)
        return False  # never stops training


def best_checkpoint(run: RunContext) -> keras.callbacks.ModelCheckpoint:
    """``best_model.keras`` at each new best epoch; a resume must beat the best so far."""
    return keras.callbacks.ModelCheckpoint(
        run.folder.best_model,
        monitor=run.metric,
        mode=keras_mode(run.direction),
        save_best_only=True,
        initial_value_threshold=run.best_value(),
    )


def rolling_checkpoint(run: RunContext, start: float) -> RollingCheckpoint:
    """The last epochs' checkpoints; each save records the progress in ``run_state.json``.

    ``start`` is when this process began training (``time.perf_counter``).
    """
    return RollingCheckpoint(
        run.folder.checkpoints,
        KEEP_CHECKPOINTS,
        on_saved=lambda epoch: write_state(
            run.folder, epochs_done=epoch, train_seconds=run.seconds_before + elapsed(start)
        ),
    )


def best_so_far(run: RunContext) -> BestSoFar | None:
    """Early stopping's state before a stop: best value, its epoch, best_model.keras weights."""
    best = run.best_value()
    if best is None or not run.folder.best_model.is_file():
        return None
    weights = load_model(run.folder.best_model).get_weights()
    return BestSoFar(best, run.metric_values.index(best) + 1, weights)


def elapsed(start: float) -> float:
    """Seconds since ``start`` (``time.perf_counter``), to the hundredth."""
    return round(time.perf_counter() - start, 2)
