"""Keras callbacks switched on by config keys (``training.callbacks`` of a study).

Early stopping with best weights restored is always on (``training.patience``); the
others write into a run folder (for a study: one per trial, under
``hpo_results/<study>/trials/<model_type>/trial_<n>/``):

``checkpoint``            ``checkpoints/best.keras`` (best epoch) and ``last.keras``
``reduce_lr_on_plateau``  ``true`` or ``{factor, patience, min_lr}``
``metrics_log``           ``csv`` or ``json``: every epoch's metrics
``tensorboard``           ``tensorboard/`` event files
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras

from hpolab.config import CALLBACK_KEYS, PlateauSettings
from hpolab.errors import ConfigError
from hpolab.layout import atomic_write_json


def keras_mode(direction: str) -> str:
    """Keras' ``mode`` (``min`` / ``max``) of an Optuna-style ``direction``."""
    return "min" if direction == "minimize" else "max"


class MetricsLogger(keras.callbacks.Callback):
    """Every epoch's metrics (and learning rate) to ``metrics.csv`` or ``metrics.json``.

    The JSON file is rewritten atomically after each epoch, so a reader never sees half
    of it; the CSV file gains one line per epoch.
    """

    def __init__(self, path: Path, fmt: str = "json") -> None:
        super().__init__()
        if fmt not in ("csv", "json"):
            raise ConfigError(f"training.callbacks.metrics_log: {fmt!r}; use csv or json")
        self.path = path
        self.fmt = fmt
        self.rows: list[dict[str, float]] = []

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        row = {"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()}}
        self.rows.append(row)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.fmt == "json":
            atomic_write_json(self.path, self.rows)
            return
        columns = list(dict.fromkeys(k for r in self.rows for k in r))
        with self.path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(self.rows)


class ReduceLROnPlateau(keras.callbacks.ReduceLROnPlateau):
    """Keras' reduce-on-plateau that also works under a learning-rate schedule.

    With a constant rate it is Keras' callback. With hpolab's schedule (warmup, cosine,
    ...) the rate cannot be set, so the reduction scales the schedule instead: at each
    plateau the rate in effect becomes ``max(rate * factor, min_lr)`` and the schedule
    goes on from there with its shape kept, never below its own floor. (Keras >= 3.15:
    the reduction itself is the method overridden here.)
    """

    def _reduce_optimizer_lr(self, optimizer: Any, epoch: int, name: str = "") -> bool:
        # The schedule object is not exposed publicly; the optimizer keeps it here.
        schedule = getattr(optimizer, "_learning_rate", None)
        scale = getattr(schedule, "scale", None)
        if scale is None:
            return bool(super()._reduce_optimizer_lr(optimizer, epoch, name))
        old_lr = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
        if old_lr <= self.min_lr or old_lr <= 0:
            return False
        new_lr = max(old_lr * self.factor, self.min_lr)
        scale.assign(float(keras.ops.convert_to_numpy(scale)) * new_lr / old_lr)
        return True


def build_callbacks(
    options: Mapping[str, Any],
    run_dir: Path | None,
    *,
    monitor: str,
    direction: str,
) -> list[keras.callbacks.Callback]:
    """The callbacks ``options`` switch on, writing under ``run_dir``.

    Raises:
        ConfigError: an unknown key, or a file-writing callback without a run folder.
    """
    unknown = sorted(set(options) - set(CALLBACK_KEYS))
    if unknown:
        raise ConfigError(
            f"training.callbacks: unknown key {unknown[0]!r}; use {', '.join(CALLBACK_KEYS)}"
        )
    mode = keras_mode(direction)
    callbacks: list[keras.callbacks.Callback] = []
    plateau = options.get("reduce_lr_on_plateau")
    if plateau is not None and plateau is not False:  # {} is "on, with defaults"
        settings = PlateauSettings.model_validate(plateau if isinstance(plateau, Mapping) else {})
        callbacks.append(
            ReduceLROnPlateau(monitor=monitor, mode=mode, verbose=0, **settings.model_dump())
        )
    writing = [k for k in ("checkpoint", "metrics_log", "tensorboard") if options.get(k)]
    if writing and run_dir is None:
        raise ConfigError(f"training.callbacks.{writing[0]}: needs a run folder to write to")
    if options.get("checkpoint"):
        folder = run_dir / "checkpoints"  # type: ignore[operator]
        folder.mkdir(parents=True, exist_ok=True)
        callbacks.append(
            keras.callbacks.ModelCheckpoint(
                folder / "best.keras", monitor=monitor, mode=mode, save_best_only=True
            )
        )
        callbacks.append(keras.callbacks.ModelCheckpoint(folder / "last.keras"))
    if options.get("metrics_log"):
        fmt = str(options["metrics_log"])
        callbacks.append(MetricsLogger(run_dir / f"metrics.{fmt}", fmt))  # type: ignore[operator]
    if options.get("tensorboard"):
        callbacks.append(
            keras.callbacks.TensorBoard(log_dir=str(run_dir / "tensorboard"), write_graph=False)  # type: ignore[operator]
        )
    return callbacks


def read_metrics_log(path: Path) -> list[dict[str, float]]:
    """The rows a :class:`MetricsLogger` wrote (JSON or CSV)."""
    if path.suffix == ".json":
        return json.loads(path.read_text(encoding="utf-8"))
    with path.open(encoding="utf-8") as handle:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(handle)]


class RollingCheckpoint(keras.callbacks.Callback):
    """``epoch_<n>.keras`` after every epoch, keeping the last ``keep``; resume reads them.

    Each file holds weights, optimizer state and the schedule's step, and is written
    atomically, so a run killed mid-save still has its previous checkpoint intact.
    ``on_saved(epoch)`` is called after each save (the run records its progress there).
    """

    def __init__(self, folder: Path, keep: int = 3, on_saved: Any = None) -> None:
        super().__init__()
        if keep < 1:
            raise ConfigError("checkpoints: keep at least 1")
        self.folder = folder
        self.keep = keep
        self.on_saved = on_saved

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        from hpolab.layout import atomic_save

        self.folder.mkdir(parents=True, exist_ok=True)
        target = self.folder / f"epoch_{epoch + 1:04d}.keras"
        atomic_save(target, lambda tmp: self.model.save(tmp), suffix=".keras")
        for old in checkpoints(self.folder)[: -self.keep]:
            old.unlink(missing_ok=True)
        if self.on_saved is not None:
            self.on_saved(epoch + 1)


def checkpoints(folder: Path) -> list[Path]:
    """Epoch checkpoints of ``folder``, oldest first."""
    return sorted(folder.glob("epoch_*.keras"))


def checkpoint_epoch(path: Path) -> int:
    """The epoch number a checkpoint was saved after (1-based)."""
    return int(path.stem.removeprefix("epoch_"))


@dataclass
class BestSoFar:
    """Where early stopping stood when a run stopped: best value, its epoch and weights."""

    value: float
    epoch: int  # 1-based
    weights: list[Any]


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """Early stopping (best weights restored) that can continue a stopped run's count.

    Plain ``EarlyStopping`` starts afresh on every ``fit``: a resumed run would forget the
    best epoch before the stop, wait ``patience`` epochs more and, at the end, restore the
    best weights *since the resume*. Given ``resume`` and ``initial_epoch`` (epochs already
    done), it carries on as if training had not been interrupted.
    """

    def __init__(
        self, *args: Any, resume: BestSoFar | None = None, initial_epoch: int = 0, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.resume = resume
        self.initial_epoch = initial_epoch

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        super().on_train_begin(logs)
        if self.resume is not None:
            self.best = self.resume.value
            self.best_epoch = self.resume.epoch - 1  # Keras counts epochs from 0
            self.best_weights = self.resume.weights
            self.wait = max(self.initial_epoch - self.resume.epoch, 0)
