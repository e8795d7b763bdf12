"""The objective: sample a configuration, train it, report, record it everywhere."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna

from hpolab.config import StudyConfig
from hpolab.data.dataset import Dataset
from hpolab.errors import ConfigError, TrialFailed
from hpolab.interrupts import stops_delivered
from hpolab.models import is_keras
from hpolab.search.space import SearchSpace, params_key
from hpolab.search.storage import write_user_attrs
from hpolab.search.trial_resume import first_attempt, remove_resume_point, resume_folder
from hpolab.search.workers import WORKER
from hpolab.search.writes import Writes
from hpolab.tracking import StudyTracker
from hpolab.training.cross_validation import fold_datasets
from hpolab.training.evaluation import rounded
from hpolab.training.fit import (
    build_and_fit,
    clear_keras,
    fit_model,
    seed_everything,
    training_params,
)
from hpolab.training.result import TrainResult
from hpolab.training.resume import (
    ResumeCheckpoint,
    ResumePoint,
    read_resume_point,
    settings_key,
)
from hpolab.training.saving import load_model


class PruningHook:
    """Epoch hook reporting the objective metric to a trial and asking the pruner.

    Returning ``True`` stops Keras cleanly; the objective then raises ``TrialPruned``.
    """

    def __init__(self, trial: optuna.Trial, metric: str, writes: Writes | None = None) -> None:
        self.trial = trial
        self.metric = metric
        self.pruned_at: int | None = None
        self.last_value: float | None = None
        self.writes = writes

    def replay(self, history: dict[str, list[float]]) -> None:
        """Report the epochs a stopped attempt trained before its resume point, so the
        pruner sees the whole curve."""
        for epoch, value in enumerate(history.get(self.metric, []), start=1):
            if value == value:  # NaN: nothing was reported
                self._report(value, epoch)
                self.last_value = value

    def __call__(self, epoch: int, logs: dict[str, float]) -> bool:
        value = logs.get(self.metric)
        if value is None or value != value:  # missing or NaN: nothing to report
            return False
        self.last_value = value
        self._report(value, epoch)
        if self.trial.should_prune():
            self.pruned_at = epoch
            return True
        return False

    def _report(self, value: float, step: int) -> None:
        """``Trial.report``, its storage write queued on ``writes`` (one per epoch, in
        order). The pruner decides on the trial Optuna keeps in memory, which holds the
        value at once (``should_prune`` reads it there, not from the storage)."""
        frozen = getattr(self.trial, "_cached_frozen_trial", None)
        if self.writes is None or frozen is None:  # no queue, or an Optuna without it
            self.trial.report(value, step)
            return
        if step in frozen.intermediate_values:
            return  # as Trial.report: a step is reported once
        frozen.intermediate_values[step] = float(value)
        storage, trial_id = self.trial.storage, self.trial._trial_id
        self.writes.submit(storage.set_trial_intermediate_value, trial_id, step, float(value))


@dataclass
class _Resume:
    """A Keras trial's resume point: where it is saved, for which settings, how often,
    and the point a stopped attempt left (None: start afresh)."""

    folder: Path
    key: str
    every: int | None
    point: ResumePoint | None


@dataclass
class Objective:
    """Callable objective for one model type of a study."""

    cfg: StudyConfig
    model_type: str
    space: SearchSpace
    data: Dataset
    tracker: StudyTracker | None
    parent_run_id: str | None
    fit_seconds: list[float] = field(default_factory=list)
    trials_run: int = 0  # trials this process ran (other workers add their own)
    # Time inside training spent on storage (pruning reports) and tracking (epoch logs).
    hook_seconds: float = 0.0
    current_trial: int | None = None
    # Where a trial's callbacks write (checkpoints, metrics log, TensorBoard).
    trial_dir: Callable[[int], Path] | None = None
    current_run_id: str | None = None
    # Who runs the trials (host, pid, pool index): recorded on each trial and its run.
    worker: dict[str, Any] | None = None
    # Where to say that a trial resumes from a checkpoint.
    notify: Callable[[str], None] | None = None
    # Per-epoch reports and MLflow writes, off the training thread (see writes.py).
    writes: Writes = field(default_factory=Writes)

    def __call__(self, trial: optuna.Trial) -> float:
        self.current_trial = trial.number
        self.current_run_id = None
        self.trials_run += 1
        if self.worker is not None:
            trial.set_user_attr(WORKER, self.worker)
        params = self._suggest(trial)
        duplicate = self._duplicate_value(trial, params)
        if duplicate is not None:
            return duplicate
        data = self.data.for_params(params)
        _record_preprocessing(trial, data)
        hp = training_params(params, self.cfg.training)
        resume = self._resume(trial, params, hp)
        run = self._start_run(trial, params, hp, data, resume)
        pruning = PruningHook(trial, self.cfg.study.metric, self.writes)
        stops = stops_delivered()
        start = time.perf_counter()
        interrupted, ended = False, False
        try:
            if self.cfg.data.cv is not None:
                result = self._cross_validate(trial, params, hp, data, pruning, run)
            else:
                result = self._train(trial, params, hp, data, pruning, run, resume)
            ended = True
        except (TrialFailed, ConfigError) as exc:
            # ConfigError: a builder of the user's failed for these params only.
            trial.set_user_attr("error", str(exc))
            if run is not None:
                run.end("failed", error=str(exc))
            if isinstance(exc, TrialFailed):
                raise
            raise TrialFailed(str(exc)) from None
        except optuna.TrialPruned:
            if run is not None:
                run.end("pruned", pruning.last_value, attrs={"pruned_at_fold": pruning.pruned_at})
            raise
        except BaseException as exc:
            stop = isinstance(exc, (KeyboardInterrupt, SystemExit))
            interrupted = stop or stops_delivered() != stops
            if not interrupted:
                # The configuration failed (not the worker): it counts toward the budget.
                trial.set_user_attr("error", f"{type(exc).__name__}: {exc}"[:2000])
            if run is not None:
                run.end("failed", error=f"{type(exc).__name__}: {exc}")
            if not stop and interrupted:  # a stop a library turned into its own error
                raise KeyboardInterrupt from exc
            raise
        finally:
            self.fit_seconds.append(time.perf_counter() - start)
            _clear_keras(interrupted)
            if not interrupted and resume is not None:
                remove_resume_point(resume.folder)  # the retry of a stop needs it; no one else
            if not ended:  # its writes land before Optuna ends the trial; its error goes on
                self.writes.wait(raise_errors=False)
        return self._record(trial, result, pruning, run)

    def _suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """The trial's configuration; a define-by-run builder that fails for these values
        fails this trial only, with its message."""
        try:
            return self.space.suggest(trial)
        except ConfigError as exc:
            trial.set_user_attr("error", str(exc)[:2000])
            raise TrialFailed(str(exc)) from None

    def _record(
        self, trial: optuna.Trial, result: TrainResult, pruning: PruningHook, run: Any
    ) -> float:
        """Store a finished trial's outcome on it and its run; raise if it was pruned."""
        attrs = {
            "best_epoch": result.best_epoch,
            "epochs_run": result.epochs_run,
            "fit_seconds": round(result.seconds, 3),
        }
        if pruning.pruned_at is None:
            attrs["val_metrics"] = rounded(result.best_metrics)
        if run is not None:  # queued: it is written while the outcome is stored here
            if pruning.pruned_at is not None:
                at = {"pruned_at_epoch": pruning.pruned_at}
                run.end("pruned", pruning.last_value, attrs=at)
            else:
                run.end("complete", result.best_value)
        write_user_attrs(trial, attrs)  # one storage write, not one per attribute
        self.writes.wait()  # reports and run complete before Optuna records the end
        if pruning.pruned_at is not None:
            raise optuna.TrialPruned(f"pruned at epoch {pruning.pruned_at}")
        return result.best_value

    def _resume(
        self, trial: optuna.Trial, params: dict[str, Any], hp: dict[str, Any]
    ) -> _Resume | None:
        """Where this trial keeps its resume point, and the point a stopped attempt of the
        same configuration and settings left there (None: no checkpoints here)."""
        every = self.cfg.study.trial_checkpoints
        if self.trial_dir is None or every == "off" or self.cfg.data.cv is not None:
            return None
        if not is_keras(self.model_type):
            return None  # a baseline fits in one call: nothing to resume part-way
        folder = resume_folder(self.trial_dir, trial)
        key = settings_key(params, hp)
        point = read_resume_point(folder, key)
        if point is None:
            remove_resume_point(folder)  # another configuration's or settings' leftovers
        return _Resume(folder, key, None if every == "auto" else int(every), point)

    def _start_run(
        self,
        trial: optuna.Trial,
        params: dict[str, Any],
        hp: dict[str, Any],
        data: Dataset,
        resume: _Resume | None,
    ) -> Any:
        """The trial's MLflow run: the stopped attempt's run when resuming, else a new one
        with the whole effective configuration (training settings too) and the dataset."""
        if self.tracker is None or self.parent_run_id is None:
            return None
        point = resume.point if resume is not None else None
        run = None
        if point is not None and point.run_id:
            # Recorded before the run is reopened: a process killed in between leaves a
            # RUNNING run still tagged with the stopped attempt's number, found by this id.
            trial.set_user_attr("mlflow_run_id", point.run_id)
            run = self.tracker.resume_trial(point.run_id, trial.number, point.epoch, self.worker)
        if run is not None:
            self.current_run_id = run.run_id
            return run
        settings = {k: v for k, v in hp.items() if v is not None}
        run = self.tracker.start_trial(
            self.parent_run_id,
            self.model_type,
            trial.number,
            {**settings, **params},
            self.worker,
            dataset_record(data),
            writes=self.writes,
        )
        self.writes.submit(self._note_run, trial, run)  # once the queue has created it
        return run

    def _note_run(self, trial: optuna.Trial, run: Any) -> None:
        """Record the id of the trial's run, on the trial (other workers, recovery and
        ``hpolab trials`` read it) and here (a stop marks it failed)."""
        self.current_run_id = run.run_id
        trial.set_user_attr("mlflow_run_id", run.run_id)

    def _train(
        self,
        trial: optuna.Trial,
        params: dict[str, Any],
        hp: dict[str, Any],
        data: Dataset,
        pruning: PruningHook,
        run: Any,
        resume: _Resume | None,
    ) -> TrainResult:
        """Train one configuration on the validation split (a baseline in one call)."""
        # A baseline fits in one call: nothing to prune part-way.
        hooks = [self._timed(pruning)] if is_keras(self.model_type) else []
        if run is not None:
            hooks.append(self._timed(run.log_epoch))
        run_dir = self.trial_dir(trial.number) if self.trial_dir else None
        number = first_attempt(trial)
        if resume is None:
            return self._fit(number, params, hp, data, hooks, run_dir)
        point = resume.point
        model = _resumable_model(point) if point is not None else None
        if point is not None and model is not None:
            trial.set_user_attr("resumed_from_epoch", point.epoch)
            pruning.replay(point.history)
            if run is not None:  # epochs a kill kept from reaching MLflow: the curve is whole
                run.log_history(point.history)
            if self.notify is not None:
                self.notify(
                    f"{self.model_type}: trial {trial.number} continues trial {number} "
                    f"from its checkpoint after epoch {point.epoch} of {hp['epochs']}"
                )
        else:
            point = None
        saver = ResumeCheckpoint(
            resume.folder, resume.key, resume.every, point, (lambda: run.run_id) if run else None
        )
        try:
            if point is None:
                result = self._fit(number, params, hp, data, hooks, run_dir, extra=[saver])
            else:
                result = self._continue(number, point, model, hp, data, hooks, run_dir, saver)
        finally:
            self.hook_seconds += saver.save_seconds
        return result

    def _continue(
        self,
        number: int,
        point: ResumePoint,
        model: Any,
        hp: dict[str, Any],
        data: Dataset,
        hooks: list[Any],
        run_dir: Path | None,
        saver: ResumeCheckpoint,
    ) -> TrainResult:
        """Train a stopped attempt's model (loaded from its resume point) on."""
        seed = self._trial_seed(number)
        # The generators' state died with the stopped process: reseed per epoch reached.
        seed_everything(None if seed is None else seed + 1_000_003 * point.epoch)
        result = fit_model(
            model,
            data,
            hp,
            **self._fit_options(hooks, run_dir, [saver]),
            initial_epoch=point.epoch,
            compile=False,
            history_before=point.history,
        )
        result.seconds += point.seconds
        return result

    def _fit(
        self,
        number: int,
        params: dict[str, Any],
        hp: dict[str, Any],
        data: Dataset,
        hooks: list[Any],
        run_dir: Path | None = None,
        seeded: bool = True,
        extra: Sequence[Any] = (),
    ) -> TrainResult:
        """Seed, build the model of ``params`` and train it on ``data``.

        Each configuration (its first trial, ``number``) gets its own seed, so trials
        differ but repeat exactly, retries included; the folds of a cross-validated trial
        (``seeded=False``) continue the generator their trial seeded.
        """
        _, result = build_and_fit(
            self.model_type,
            params,
            data,
            hp,
            seed=self._trial_seed(number) if seeded else None,
            **self._fit_options(hooks, run_dir, extra),
        )
        return result

    def _fit_options(
        self, hooks: list[Any], run_dir: Path | None, extra: Sequence[Any]
    ) -> dict[str, Any]:
        """What every trial's training shares: the metric watched, hooks and callbacks."""
        return {
            "monitor": self.cfg.study.metric,
            "direction": self.cfg.study.resolved_direction,
            "hooks": hooks,
            "verbose": self.cfg.training.verbose,
            "run_dir": run_dir,
            "extra_callbacks": extra,
        }

    def _cross_validate(
        self,
        trial: optuna.Trial,
        params: dict[str, Any],
        hp: dict[str, Any],
        data: Dataset,
        pruning: PruningHook,
        run: Any,
    ) -> TrainResult:
        """Mean of the folds' best values; the pruner sees the running mean after each fold.

        Folds split train + validation; the test split stays untouched for the final model.
        """
        cv = self.cfg.data.cv
        assert cv is not None
        folds = fold_datasets(data, cv.method, cv.n_splits, seed=self.cfg.data.seed)
        seed_everything(self._trial_seed(first_attempt(trial)))
        values: list[float] = []
        results: list[TrainResult] = []
        for index, fold in enumerate(folds, start=1):
            result = self._fit(trial.number, params, hp, fold, [], seeded=False)
            clear_keras()
            values.append(result.best_value)
            results.append(result)
            mean = float(np.mean(values))
            if run is not None:
                self._timed(run.log_epoch)(
                    index, {"cv_fold_value": result.best_value, "cv_mean": mean}
                )
            if self._timed(pruning)(index, {self.cfg.study.metric: mean}):
                trial.set_user_attr("cv_scores", [round(v, 6) for v in values])
                raise optuna.TrialPruned(f"pruned after fold {index} of {len(folds)}")
        trial.set_user_attr("cv_scores", [round(v, 6) for v in values])
        trial.set_user_attr("cv_std", round(float(np.std(values)), 6))
        metrics = {
            key: float(np.mean([r.best_metrics[key] for r in results]))
            for key in results[0].best_metrics
            if all(key in r.best_metrics for r in results)
        }
        return TrainResult(
            history={"cv_fold_value": values},
            epochs_run=int(sum(r.epochs_run for r in results)),
            # The final model trains on all of train + val for the folds' typical length.
            best_epoch=int(np.median([r.best_epoch for r in results])),
            best_value=float(np.mean(values)),
            monitor=self.cfg.study.metric,
            seconds=float(sum(r.seconds for r in results)),
            best_metrics=metrics,
        )

    def _trial_seed(self, number: int) -> int | None:
        seed = self.cfg.study.seed
        return None if seed is None else seed + number

    def _timed(self, hook: Any) -> Any:
        def timed(epoch: int, logs: dict[str, float]) -> Any:
            start = time.perf_counter()
            try:
                return hook(epoch, logs)
            finally:
                self.hook_seconds += time.perf_counter() - start

        return timed

    def _duplicate_value(self, trial: optuna.Trial, params: dict[str, Any]) -> float | None:
        """For grid search: a configuration already evaluated is not trained again.

        Grid points that differ only in an inactive conditional parameter are the same
        model; the trial records the earlier value and points at the original. A point
        still running on another worker (two workers started a trial at the instant the
        budget was reached) is not trained twice either: this trial is pruned.
        """
        if self.cfg.study.sampler != "grid":
            return None
        key = params_key(params)
        states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.RUNNING)
        for other in trial.study.get_trials(deepcopy=False, states=states):
            if other.number == trial.number or params_key(self.space.replay(other.params)) != key:
                continue
            if other.state == optuna.trial.TrialState.RUNNING:
                if other.number < trial.number:
                    trial.set_user_attr("duplicate_of", other.number)
                    raise optuna.TrialPruned(f"grid point already running as trial {other.number}")
                continue
            if other.value is not None:
                trial.set_user_attr("duplicate_of", other.number)
                for name in ("best_epoch", "mlflow_run_id"):
                    if name in other.user_attrs:
                        trial.set_user_attr(name, other.user_attrs[name])
                return float(other.value)
        return None


def dataset_record(data: Dataset) -> dict[str, Any]:
    """What MLflow shows of a run's data: source, fingerprint, columns or shape, rows."""
    if len(data.input_shape) == 1 and len(data.feature_names) == data.input_shape[0]:
        schema: dict[str, Any] = {
            "mlflow_colspec": [{"type": "double", "name": n} for n in data.feature_names]
        }
    else:
        spec = {"dtype": "float32", "shape": [-1, *data.input_shape]}
        schema = {
            "mlflow_tensorspec": {
                "features": json.dumps([{"type": "tensor", "tensor-spec": spec}]),
                "targets": None,
            }
        }
    return {
        "name": data.source,
        "digest": data.fingerprint,
        "source": data.source,
        "schema": schema,
        "profile": {
            "task": data.task,
            "target": data.target,
            "classes": data.classes,
            "train_rows": len(data.X_train),
            "validation_rows": len(data.X_val),
            "test_rows": len(data.X_test),
        },
    }


def _resumable_model(point: ResumePoint) -> Any:
    """The model of a resume point, with its optimizer state; None if it cannot be read
    (the trial then starts afresh rather than failing its configuration)."""
    try:
        return load_model(point.model_path)
    except Exception:  # a damaged file: Keras and h5py raise many types
        return None


def _clear_keras(interrupted: bool) -> None:
    """``clear_keras`` after a trial. After a stop its failure does not replace the stop:
    a stop landing while TensorFlow traces can leave TensorFlow's graph stack nested
    (Keras's clean-up then refuses), and the worker is ending anyway."""
    try:
        clear_keras()
    except Exception:
        if not interrupted:
            raise


def _record_preprocessing(trial: optuna.Trial, data: Dataset) -> None:
    """How this trial's inputs were obtained: computed, from the disk cache or memory."""
    done = data.info.get("preprocessing")
    if done:
        trial.set_user_attr("preprocess_source", done["source"])
        trial.set_user_attr("preprocess_seconds", done["seconds"])
