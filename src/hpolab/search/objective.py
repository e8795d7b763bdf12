"""The objective: sample a configuration, train it, report, record it everywhere."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna

from hpolab.config import StudyConfig
from hpolab.data.dataset import Dataset
from hpolab.errors import TrialFailed
from hpolab.models import is_keras
from hpolab.search.space import SearchSpace, params_key
from hpolab.search.workers import WORKER
from hpolab.tracking import StudyTracker
from hpolab.training.cross_validation import fold_datasets
from hpolab.training.evaluation import rounded
from hpolab.training.fit import build_and_fit, clear_keras, seed_everything, training_params
from hpolab.training.result import TrainResult


class PruningHook:
    """Epoch hook reporting the objective metric to a trial and asking the pruner.

    Returning ``True`` stops Keras cleanly; the objective then raises ``TrialPruned``.
    """

    def __init__(self, trial: optuna.Trial, metric: str) -> None:
        self.trial = trial
        self.metric = metric
        self.pruned_at: int | None = None
        self.last_value: float | None = None

    def __call__(self, epoch: int, logs: dict[str, float]) -> bool:
        value = logs.get(self.metric)
        if value is None or value != value:  # missing or NaN: nothing to report
            return False
        self.last_value = value
        self.trial.report(value, step=epoch)
        if self.trial.should_prune():
            self.pruned_at = epoch
            return True
        return False


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

    def __call__(self, trial: optuna.Trial) -> float:
        self.current_trial = trial.number
        self.trials_run += 1
        if self.worker is not None:
            trial.set_user_attr(WORKER, self.worker)
        params = self.space.suggest(trial)
        duplicate = self._duplicate_value(trial, params)
        if duplicate is not None:
            return duplicate
        data = self.data.for_params(params)
        _record_preprocessing(trial, data)
        hp = training_params(params, self.cfg.training)
        run = None
        if self.tracker is not None and self.parent_run_id is not None:
            run = self.tracker.start_trial(
                self.parent_run_id, self.model_type, trial.number, params, self.worker
            )
            self.current_run_id = run.run_id
            trial.set_user_attr("mlflow_run_id", run.run_id)
        pruning = PruningHook(trial, self.cfg.study.metric)
        start = time.perf_counter()
        try:
            if self.cfg.data.cv is not None:
                result = self._cross_validate(trial, params, hp, data, pruning, run)
            else:
                # A baseline fits in one call: nothing to prune part-way.
                hooks = [self._timed(pruning)] if is_keras(self.model_type) else []
                if run is not None:
                    hooks.append(self._timed(run.log_epoch))
                run_dir = self.trial_dir(trial.number) if self.trial_dir else None
                result = self._fit(trial.number, params, hp, data, hooks, run_dir)
        except TrialFailed as exc:
            trial.set_user_attr("error", str(exc))
            if run is not None:
                run.end("failed", error=str(exc))
            raise
        except optuna.TrialPruned:
            if run is not None:
                run.end("pruned", pruning.last_value, attrs={"pruned_at_fold": pruning.pruned_at})
            raise
        except BaseException as exc:
            if not isinstance(exc, (KeyboardInterrupt, SystemExit)):
                # The configuration failed (not the worker): it counts toward the budget.
                trial.set_user_attr("error", f"{type(exc).__name__}: {exc}"[:2000])
            if run is not None:
                run.end("failed", error=f"{type(exc).__name__}: {exc}")
            raise
        finally:
            self.fit_seconds.append(time.perf_counter() - start)
            clear_keras()
        attrs = {
            "best_epoch": result.best_epoch,
            "epochs_run": result.epochs_run,
            "fit_seconds": round(result.seconds, 3),
        }
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        if pruning.pruned_at is not None:
            if run is not None:
                run.end("pruned", pruning.last_value, attrs={"pruned_at_epoch": pruning.pruned_at})
            raise optuna.TrialPruned(f"pruned at epoch {pruning.pruned_at}")
        trial.set_user_attr("val_metrics", rounded(result.best_metrics))
        if run is not None:
            run.end("complete", result.best_value)
        return result.best_value

    def _fit(
        self,
        number: int,
        params: dict[str, Any],
        hp: dict[str, Any],
        data: Dataset,
        hooks: list[Any],
        run_dir: Path | None = None,
        seeded: bool = True,
    ) -> TrainResult:
        """Seed, build the model of ``params`` and train it on ``data``.

        Each trial (``number``) gets its own seed, so trials differ but repeat exactly;
        the folds of a cross-validated trial (``seeded=False``) continue the generator
        their trial seeded.
        """
        _, result = build_and_fit(
            self.model_type,
            params,
            data,
            hp,
            seed=self._trial_seed(number) if seeded else None,
            monitor=self.cfg.study.metric,
            direction=self.cfg.study.resolved_direction,
            hooks=hooks,
            verbose=self.cfg.training.verbose,
            run_dir=run_dir,
        )
        return result

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
        seed_everything(self._trial_seed(trial.number))
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


def _record_preprocessing(trial: optuna.Trial, data: Dataset) -> None:
    """How this trial's inputs were obtained: computed, from the disk cache or memory."""
    done = data.info.get("preprocessing")
    if done:
        trial.set_user_attr("preprocess_source", done["source"])
        trial.set_user_attr("preprocess_seconds", done["seconds"])
