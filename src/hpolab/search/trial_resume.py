"""Resume a trial, not just a study: where a trial keeps its resume point, and clean-up.

A trial stopped by a crash, a kill or Ctrl-C is failed and its parameters re-queued as a
new trial (Optuna's retry, which records the first attempt's number). Every attempt of
one configuration shares the resume point in the first attempt's trial folder, so the
retry continues from the last saved epoch (see :mod:`hpolab.training.resume`).
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable
from pathlib import Path

import optuna
from optuna.trial import TrialState

RESUME_FOLDER = "resume"


def remove_resume_point(folder: Path | None) -> None:
    """Delete ``folder`` (a finished training's resume point) and its parent if now empty."""
    if folder is None or not folder.exists():
        return
    shutil.rmtree(folder, ignore_errors=True)
    with contextlib.suppress(OSError):  # other files of the trial (callbacks' logs) stay
        folder.parent.rmdir()


def first_attempt(trial: optuna.Trial | optuna.trial.FrozenTrial) -> int:
    """Number of the trial that first ran this configuration (itself if not a retry)."""
    # A running Trial has no public reader of its system attributes (Optuna's retry
    # records the first attempt there); its cached frozen copy has them.
    frozen = getattr(trial, "_cached_frozen_trial", trial)
    first = frozen.system_attrs.get("failed_trial")
    return int(first) if first is not None else int(trial.number)


def resume_folder(trial_dir: Callable[[int], Path], trial: optuna.Trial) -> Path:
    """Folder of the resume point shared by every attempt of ``trial``'s configuration."""
    return trial_dir(first_attempt(trial)) / RESUME_FOLDER


def remove_finished(study: optuna.Study, trial_dir: Callable[[int], Path]) -> int:
    """Delete resume points no trial can use any more: their configuration finished, or
    failed for good (out of retries). Returns how many were removed."""
    live = {
        first_attempt(t)
        for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING, TrialState.RUNNING))
    }
    removed = 0
    for folder in trial_dir(0).parent.glob(f"trial_*/{RESUME_FOLDER}"):
        number = folder.parent.name.removeprefix("trial_")
        if number.isdigit() and int(number) not in live:
            remove_resume_point(folder)
            removed += 1
    return removed
