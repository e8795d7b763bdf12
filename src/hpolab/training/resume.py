"""Resume points: a training interrupted at any moment continues from its last saved epoch.

While a model trains, :class:`ResumeCheckpoint` keeps one rolling resume point in a folder:

====================  ==================================================================
``epoch_<n>.keras``   weights, optimizer state and the schedule's step after epoch ``n``
``state.json``        ``n``, every epoch's metrics so far, training seconds, the MLflow
                      run, and a key of the parameters and training settings
====================  ==================================================================

Each file is written atomically and ``state.json`` only after the model it names, so a
kill at any moment leaves a consistent pair. :func:`read_resume_point` gives it back only
to a training with the same key: changed parameters or settings start afresh.

Saving costs about as much as a few training steps of a small model, so by default
(``every=None``) a save happens only once training since the last one took
:data:`AUTO_FACTOR` times what a save costs: at most ~1% of the time goes to checkpoints,
and at most that much work is lost to a crash. What a save costs is measured by the first
save of a process and carried to the trainings after it: a search of short trials then
saves in its first trial only, not after the first epoch of every trial.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras

from hpolab.layout import atomic_save, atomic_write_json

STATE_FILE = "state.json"
# Train at least this many times a save's cost between two saves (auto mode).
AUTO_FACTOR = 100


@dataclass
class ResumePoint:
    """Where an interrupted training stood at its last save."""

    epoch: int  # epochs done (1-based count)
    model_path: Path
    history: dict[str, list[float]]
    seconds: float  # training seconds up to the save
    run_id: str | None  # the MLflow run it logged into


def settings_key(params: Mapping[str, Any], hp: Mapping[str, Any]) -> str:
    """A short fingerprint of a model's parameters and its training settings."""
    text = json.dumps({"params": dict(params), "training": dict(hp)}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def read_resume_point(folder: Path, key: str) -> ResumePoint | None:
    """The resume point saved in ``folder`` for settings ``key``; None if there is none,
    it is unreadable, or it belongs to other parameters or settings."""
    try:
        state = json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))
        model_path = folder / str(state["model"])
        point = ResumePoint(
            epoch=int(state["epoch"]),
            model_path=model_path,
            history={k: [_float(v) for v in vals] for k, vals in state["history"].items()},
            seconds=float(state.get("seconds", 0.0)),
            run_id=state.get("run_id"),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if state.get("key") != key or not model_path.is_file() or point.epoch < 1:
        return None
    return point


class ResumeCheckpoint(keras.callbacks.Callback):
    """Save a resume point after some epochs (see the module docstring).

    ``every``: ``None`` for the automatic rule, else a save every ``every`` epochs.
    ``start`` is the point this training resumed from (its history and seconds carry on).
    ``save_seconds`` totals the time spent saving, for the caller's accounting.
    """

    # What the last save of this process cost (seconds): the first guess of the next
    # training's automatic rule, which otherwise has to save once to find out.
    last_save_cost: float | None = None

    def __init__(
        self,
        folder: Path,
        key: str,
        every: int | None = None,
        start: ResumePoint | None = None,
        run_id: str | Callable[[], str | None] | None = None,
    ) -> None:
        """``run_id``: the MLflow run the trial logs into, or how to get it when a save
        records it (the run may still be being created)."""
        super().__init__()
        self.folder = folder
        self.key = key
        self.every = every
        self.run_id = run_id
        self.history: dict[str, list[float]] = {
            k: list(v) for k, v in (start.history if start else {}).items()
        }
        self.seconds_before = start.seconds if start else 0.0
        self.save_seconds = 0.0
        self._save_cost: float | None = None
        self._began = self._last_save = time.perf_counter()

    def on_train_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        self._began = self._last_save = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        for name, value in (logs or {}).items():
            try:
                self.history.setdefault(name, []).append(float(value))
            except (TypeError, ValueError):
                continue
        if self._due(epoch + 1):
            self.save(epoch + 1)

    def _due(self, epoch: int) -> bool:
        if self.every is not None:
            return epoch % self.every == 0
        cost = self._save_cost if self._save_cost is not None else ResumeCheckpoint.last_save_cost
        if cost is None:
            return True  # the first save measures what one costs
        return time.perf_counter() - self._last_save >= AUTO_FACTOR * cost

    def save(self, epoch: int) -> None:
        """Write the model after ``epoch`` epochs, then the state naming it."""
        began = time.perf_counter()
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"epoch_{epoch:04d}.keras"
        atomic_save(self.folder / name, lambda tmp: self.model.save(tmp), suffix=".keras")
        trained = began - self._began - self.save_seconds
        state = {
            "key": self.key,
            "epoch": epoch,
            "model": name,
            "seconds": round(self.seconds_before + trained, 3),
            "run_id": self.run_id() if callable(self.run_id) else self.run_id,
            "history": {k: _finite_or_none(v) for k, v in self.history.items()},
        }
        atomic_write_json(self.folder / STATE_FILE, state)
        for old in self.folder.glob("epoch_*.keras"):
            if old.name != name:
                old.unlink(missing_ok=True)
        self._last_save = time.perf_counter()
        self._save_cost = self._last_save - began
        ResumeCheckpoint.last_save_cost = self._save_cost
        self.save_seconds += self._save_cost


def _finite_or_none(values: list[float]) -> list[float | None]:
    """JSON has no NaN: a missing value is stored as null (read back as NaN)."""
    return [v if math.isfinite(v) else None for v in values]


def _float(value: Any) -> float:
    return math.nan if value is None else float(value)
