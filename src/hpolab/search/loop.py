"""The search loop: run trials up to the budget, recover stale ones, re-queue interrupted.

Speaks Optuna only: the objective is a callable, tracking and progress are passed in.
"""

from __future__ import annotations

import time
import warnings
from typing import TYPE_CHECKING

import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback, fail_stale_trials
from optuna.trial import TrialState

from hpolab.config import StudyConfig
from hpolab.errors import TrialFailed
from hpolab.progress import Reporter
from hpolab.search.space import SearchSpace
from hpolab.search.storage import heartbeats, take_recovered
from hpolab.tracking import StudyTracker

if TYPE_CHECKING:
    from hpolab.search.objective import Objective

_FINISHED_STATES = (TrialState.COMPLETE, TrialState.PRUNED)


def counted_trials(study: optuna.Study) -> int:
    """Trials that use up the budget: finished, running, or failed and not re-queued."""
    trials = study.get_trials(deepcopy=False)
    retried = {n for t in trials for n in t.system_attrs.get("retry_history", [])}
    return sum(
        1
        for t in trials
        if t.state in (*_FINISHED_STATES, TrialState.RUNNING)
        or (t.state == TrialState.FAIL and t.number not in retried)
    )


def search_trials(
    cfg: StudyConfig,
    study: optuna.Study,
    storage: RDBStorage,
    objective: Objective,
    space: SearchSpace,
    tracker: StudyTracker | None,
    reporter: Reporter,
) -> None:
    """Run ``objective`` until the study has its budget of trials (shared with other workers).

    Trials left running by a stopped process are settled first; stale ones are recovered
    before each round; Ctrl-C re-queues the interrupted configuration and re-raises.
    """
    mt = objective.model_type
    target = cfg.study.n_trials
    grid = isinstance(study.sampler, optuna.samplers.GridSampler)
    if grid:
        grid_total = 1
        for values in space.grid().values():
            grid_total *= len(values)
        target = min(target, grid_total)
    settle_running(study, storage, tracker, reporter)
    reporter.start(mt, target, min(counted_trials(study), target))
    deadline = time.monotonic() + cfg.study.timeout if cfg.study.timeout else None

    def on_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        _report_recovered(study, storage, tracker, reporter)
        if trial.state == TrialState.FAIL:
            reason = trial.user_attrs.get("error", "see the trial's MLflow run")
            reporter.message(f"{mt}: trial {trial.number} failed: {reason}")
        counted = counted_trials(study)
        reporter.trial_done(mt, min(counted, target), best_or_none(study))
        # Other workers sharing the storage also add trials: stop at the shared budget.
        if counted >= target and not study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            study.stop()

    reporter.trial_done(mt, min(counted_trials(study), target), best_or_none(study))
    while True:
        _recover_stale(study, storage, tracker, reporter)
        remaining = target - counted_trials(study)
        waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
        if remaining <= 0 and not waiting:
            break
        if grid and study.sampler.is_exhausted(study) and not waiting:
            break
        time_left = None if deadline is None else deadline - time.monotonic()
        if time_left is not None and time_left <= 0:
            reporter.message(f"{mt}: timeout of {cfg.study.timeout:g}s reached")
            break
        before = len(study.trials)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                study.optimize(
                    objective,
                    n_trials=max(remaining, len(waiting), 1),
                    timeout=time_left,
                    catch=(TrialFailed,),
                    callbacks=[on_trial],
                    gc_after_trial=False,
                )
        except KeyboardInterrupt:
            requeue_interrupted(study, objective, tracker)
            raise
        if len(study.trials) == before:
            break


def _recover_stale(
    study: optuna.Study, storage: RDBStorage, tracker: StudyTracker | None, reporter: Reporter
) -> None:
    """Fail trials whose worker died (no heartbeat), re-queue them, mirror it in MLflow."""
    if study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            fail_stale_trials(study)
    _report_recovered(study, storage, tracker, reporter)


def _report_recovered(
    study: optuna.Study, storage: RDBStorage, tracker: StudyTracker | None, reporter: Reporter
) -> None:
    """Report the stale trials failed and re-queued in this process (see RequeueStaleTrial).

    That includes those Optuna failed on its own when a trial started, so nothing more
    than this in-memory check is needed after each trial.
    """
    numbers = take_recovered(storage, study.study_name)
    if not numbers:
        return
    trials = study.get_trials(deepcopy=False)
    for number in numbers:
        run_id = trials[number].user_attrs.get("mlflow_run_id")
        if tracker is not None and run_id:
            tracker.mark_failed(run_id, "the worker stopped during this trial; re-queued")
    reporter.message(
        f"{study.study_name}: trial(s) {', '.join(map(str, numbers))} were left running by a "
        "stopped process; marked failed and their parameters re-queued"
    )


def _running_numbers(study: optuna.Study) -> set[int]:
    return {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}


def settle_running(
    study: optuna.Study, storage: RDBStorage, tracker: StudyTracker | None, reporter: Reporter
) -> None:
    """Before searching, tell trials of a live worker from those of a stopped process.

    A trial left running counts against the budget. Right after a crash its heartbeat is
    still fresh, so wait until each such trial either beats again (its worker is alive),
    finishes, or goes stale (it is then failed and re-queued): at most the grace period.
    """
    _recover_stale(study, storage, tracker, reporter)
    pending = _running_numbers(study)
    if not pending:
        return
    first = heartbeats(storage, study.study_name, sorted(pending))
    interval, grace = storage.get_heartbeat_interval() or 1, storage.grace_period or 0
    reporter.message(
        f"{study.study_name}: trial(s) {', '.join(map(str, sorted(pending)))} marked running; "
        f"checking whether their worker is alive (up to {grace}s)"
    )
    deadline = time.monotonic() + grace + interval
    while pending and time.monotonic() < deadline:
        time.sleep(min(1.0, interval / 2))
        _recover_stale(study, storage, tracker, reporter)
        pending &= _running_numbers(study)
        beats = heartbeats(storage, study.study_name, sorted(pending))
        pending = {n for n in pending if beats.get(n) == first.get(n)}


def requeue_interrupted(
    study: optuna.Study, objective: Objective, tracker: StudyTracker | None
) -> None:
    """After Ctrl-C, queue the interrupted configuration again so it is not lost."""
    if objective.current_trial is None:
        return
    trial = study.trials[objective.current_trial]
    if trial.state == TrialState.FAIL:
        RetryHeartbeatStaleTrialCallback()(study, trial)
        if tracker is not None and objective.current_run_id:
            tracker.mark_failed(objective.current_run_id, "interrupted; re-queued")


def best_or_none(study: optuna.Study) -> float | None:
    try:
        return float(study.best_value)
    except ValueError:
        return None
