"""The search loop: run trials up to the budget, recover stale ones, re-queue interrupted.

Speaks Optuna only: the objective is a callable, tracking and progress are passed in.
"""

from __future__ import annotations

import contextlib
import datetime
import gc
import os
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import optuna
from optuna.storages import (
    BaseStorage,
    RDBStorage,
    RetryHeartbeatStaleTrialCallback,
    fail_stale_trials,
)
from optuna.trial import TrialState

from hpolab.config import StudyConfig
from hpolab.errors import TrialFailed
from hpolab.interrupts import shield, stops_seen, unshielded
from hpolab.layout import process_alive
from hpolab.progress import Reporter
from hpolab.search.budget import (
    STOPPED_EARLY,
    TrialsRead,
    counted_trials,
    stagnation,
    stopped_early,
)
from hpolab.search.space import SearchSpace
from hpolab.search.storage import RequeueStaleTrial, heartbeats, take_recovered
from hpolab.search.trial_resume import remove_finished
from hpolab.search.workers import WORKER
from hpolab.tracking import StudyTracker

if TYPE_CHECKING:
    from hpolab.search.objective import Objective

BEAT = "hpolab_beat"


@dataclass(frozen=True)
class Lease:
    """Liveness of trials on a storage without heartbeats (Redis journal, gRPC proxy).

    Optuna records heartbeats only in its RDB storage. Elsewhere each running trial
    beats here instead: a trial attribute set to the wall-clock time every ``interval``
    seconds; a trial whose last beat is older than ``grace`` seconds is a dead worker's
    (on any host), and is failed and re-queued up to ``max_retries`` times.
    """

    interval: float = 10.0
    grace: float = 30.0
    max_retries: int = 3

    @classmethod
    def of(cls, cfg: StudyConfig) -> Lease:
        interval = cfg.study.heartbeat_interval
        grace = cfg.study.grace_period or 3 * interval
        return cls(interval, grace, cfg.study.max_retries)

    def expired(self, trial: optuna.trial.FrozenTrial, now: float) -> bool:
        """Whether ``trial`` has not beaten for ``grace`` seconds since it started.

        A re-queued trial carries its dead predecessor's last beat: the start of this
        attempt counts as a beat, so it is not failed before its own first one.
        """
        beat = float(trial.system_attrs.get(BEAT, 0.0))
        start = trial.datetime_start.timestamp() if trial.datetime_start else 0.0
        last = max(beat, start)
        return last > 0 and now - last > self.grace

    def keep(
        self, objective: Callable[[optuna.Trial], float], storage: BaseStorage
    ) -> Callable[[optuna.Trial], float]:
        """``objective`` with a beat every ``interval`` seconds while it runs."""

        def beating(trial: optuna.Trial) -> float:
            trial_id = trial._trial_id
            stop = threading.Event()

            def beat() -> None:
                while True:
                    try:
                        storage.set_trial_system_attr(trial_id, BEAT, time.time())
                    except optuna.exceptions.UpdateFinishedTrialError:
                        return  # the trial ended meanwhile
                    except Exception:  # noqa: S110 - a missed beat is made up next time
                        pass
                    if stop.wait(self.interval):
                        return

            thread = threading.Thread(target=beat, name="hpolab-lease", daemon=True)
            thread.start()
            try:
                return objective(trial)
            finally:
                stop.set()
                thread.join(timeout=5)

        return beating


def search_trials(
    cfg: StudyConfig,
    study: optuna.Study,
    storage: BaseStorage,
    objective: Objective,
    space: SearchSpace,
    tracker: StudyTracker | None,
    reporter: Reporter,
) -> float:
    """Run ``objective`` until the study has its budget of trials (shared with other workers).

    Trials left running by a stopped process are settled first; stale ones are recovered
    before each round; Ctrl-C re-queues the interrupted configuration and re-raises.
    Returns the seconds this process waited, past the budget, for other workers' trials.
    """
    mt = objective.model_type
    grid = isinstance(study.sampler, optuna.samplers.GridSampler)
    target = _target(cfg, space, grid)
    lease = None if _has_heartbeats(storage) else Lease.of(cfg)
    settle_running(study, storage, tracker, reporter, lease)
    _remove_finished_checkpoints(study, objective)
    _note_asked(study, objective)
    reporter.start(mt, target, min(counted_trials(study), target))
    deadline = time.monotonic() + cfg.study.timeout if cfg.study.timeout else None

    shown = {t.number for t in study.get_trials(deepcopy=False, states=_ENDED)}
    on_trial = _TrialEnded(cfg, mt, target, storage, tracker, reporter, shown)
    said = on_trial.said
    reporter.trial_done(mt, min(counted_trials(study), target), best_or_none(study))
    waited = 0.0
    stops = stops_seen()
    while True:
        _recover_stale(study, storage, tracker, reporter, lease)
        remaining = target - counted_trials(study)
        waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
        done = grid and study.sampler.is_exhausted(study) and not waiting
        time_left = None if deadline is None else deadline - time.monotonic()
        others = (study, storage, tracker, reporter, time_left, lease)  # to wait for
        if time_left is not None and time_left <= 0:
            reporter.message(f"{mt}: timeout of {cfg.study.timeout:g}s reached")
            break
        if (reason := check_stop_rule(cfg, study)) is not None:
            if reason not in said:
                reporter.message(f"{mt}: stopped early: {reason}")
            # Queued configurations stay queued: the rule says more trials would not pay.
            waited += _wait_for_others(*others, run_requeued=False)[1]
            _report_ended(study, None, shown, reporter, mt)
            break
        if done or (remaining <= 0 and not waiting):
            # The study is done only when no other worker still runs a trial: one of a
            # worker that died is recovered (re-queued) once stale, and run here.
            requeued, seconds = _wait_for_others(*others)
            waited += seconds
            if not requeued:
                _report_ended(study, None, shown, reporter, mt)  # ended while waiting
                break
            continue
        before = len(study.trials)
        try:
            with warnings.catch_warnings(), _trials_shielded(on_trial), _quick_collections():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                study.optimize(
                    # Stops reach the objective at once, and wait for Optuna's bookkeeping.
                    unshielded(objective if lease is None else lease.keep(objective, storage)),
                    n_trials=max(remaining, len(waiting), 1),
                    timeout=time_left,
                    catch=(TrialFailed,),
                    gc_after_trial=False,
                )
        except KeyboardInterrupt:
            requeue_interrupted(study, storage, objective, tracker)
            raise
        if stops_seen() != stops:  # a stop that code on the way swallowed still stops
            requeue_interrupted(study, storage, objective, tracker)
            raise KeyboardInterrupt
        if len(study.trials) == before:
            break
    _remove_finished_checkpoints(study, objective)
    return waited


_ENDED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


@dataclass
class _TrialEnded:
    """After each trial (see :func:`_trials_shielded`): report it (and those of other
    workers), then stop at the shared budget or when ``study.stop_early`` says so."""

    cfg: StudyConfig
    mt: str
    target: int
    storage: BaseStorage
    tracker: StudyTracker | None
    reporter: Reporter
    shown: set[int]  # trials already reported
    said: set[str] = field(default_factory=set)  # stop reasons already printed

    def __call__(self, study: optuna.Study, trial_id: int) -> None:
        mt, reporter = self.mt, self.reporter
        _report_recovered(study, self.storage, self.tracker, reporter)
        seen = TrialsRead(study)
        trial = seen.trial(trial_id) or study._storage.get_trial(trial_id)
        if trial.state == TrialState.FAIL:
            reason = trial.user_attrs.get("error", "see the trial's MLflow run")
            reporter.message(f"{mt}: trial {trial.number} failed: {reason}")
        offer = getattr(study.pruner, "offer", None)  # the next trial's pruning reuses it
        if offer is not None:
            offer(study.study_name, seen.get_trials())
        _report_ended(seen, trial, self.shown, reporter, mt)
        counted = counted_trials(seen)
        reporter.trial_done(mt, min(counted, self.target), best_or_none(seen))
        # Other workers sharing the storage also add trials: stop at the shared budget.
        if counted >= self.target and not seen.get_trials(states=(TrialState.WAITING,)):
            study.stop()
        elif (stop := check_stop_rule(self.cfg, study, seen)) is not None:
            self.said.add(stop)
            reporter.message(f"{mt}: stopped early: {stop}")
            study.stop()


def _target(cfg: StudyConfig, space: SearchSpace, grid: bool) -> int:
    """The trials to run: the budget, or fewer when a grid has fewer points."""
    if not grid:
        return cfg.study.n_trials
    points = 1
    for values in space.grid().values():
        points *= len(values)
    return min(cfg.study.n_trials, points)


def _report_ended(
    study: optuna.Study | TrialsRead,
    trial: optuna.trial.FrozenTrial | None,
    shown: set[int],
    reporter: Reporter,
    mt: str,
) -> None:
    """Tell the reporter of ``trial`` and of those other workers ended since the last one,
    so a log (``--workers N``, workers on other hosts) has a line for every trial."""
    finished = getattr(reporter, "trial_finished", None)  # optional for own reporters
    if finished is None:
        return
    ended = [t for t in study.get_trials(deepcopy=False, states=_ENDED) if t.number not in shown]
    if trial is not None and trial.number not in shown and trial not in ended:
        ended.append(trial)  # Optuna calls back before the storage shows the state
    best = best_or_none(study)
    for t in sorted(ended, key=lambda t: t.number):
        shown.add(t.number)
        seconds = t.duration.total_seconds() if t.duration else None
        finished(mt, t.number, t.state.name.lower(), t.value, best, seconds)


def _remove_finished_checkpoints(study: optuna.Study, objective: Objective) -> None:
    """Resume points of configurations that finished or ran out of retries (a worker
    killed between a trial's end and its clean-up leaves one)."""
    if objective.trial_dir is not None:
        remove_finished(study, objective.trial_dir)


def _wait_for_others(
    study: optuna.Study,
    storage: BaseStorage,
    tracker: StudyTracker | None,
    reporter: Reporter,
    time_left: float | None,
    lease: Lease | None,
    run_requeued: bool = True,
) -> tuple[bool, float]:
    """Wait while other workers run trials; True if one was re-queued (to be run here,
    unless ``run_requeued`` is False: then the wait goes on until none runs), and the
    seconds it waited."""
    began = time.monotonic()
    running = _running_numbers(study)
    if not running:
        return False, 0.0
    why = "budget reached" if run_requeued else "stopped early"
    reporter.message(
        f"{study.study_name}: {why}; waiting for trial(s) "
        f"{', '.join(map(str, sorted(running)))} running on other workers"
    )
    deadline = None if time_left is None else time.monotonic() + time_left
    interval = _poll_interval(storage)
    while deadline is None or time.monotonic() < deadline:
        time.sleep(interval)
        _recover_stale(study, storage, tracker, reporter, lease)
        if run_requeued and study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            return True, time.monotonic() - began
        if not _running_numbers(study):
            break
    return False, time.monotonic() - began


def check_stop_rule(
    cfg: StudyConfig, study: optuna.Study, seen: TrialsRead | None = None
) -> str | None:
    """Why ``study.stop_early`` ends this search now, recorded on the study (for
    ``hpolab status`` and the results); None while it goes on. A rule turned off or
    loosened on a resume clears an earlier reason. ``seen``: the trials just read."""
    rule = cfg.study.stop_early
    trials = study if seen is None else seen
    reason = None if rule is None else stagnation(trials, cfg.study.resolved_direction, rule)
    if reason != stopped_early(study):
        study.set_user_attr(STOPPED_EARLY, reason)
    return reason


def _has_heartbeats(storage: BaseStorage) -> bool:
    return isinstance(storage, RDBStorage) and storage.get_heartbeat_interval() is not None


def _poll_interval(storage: BaseStorage) -> float:
    """How often a worker past the budget looks at the others' last trials: often enough
    that the study's end (retrain, results) follows theirs closely, a few reads each."""
    if _has_heartbeats(storage):
        return min(0.5, max(0.2, (storage.get_heartbeat_interval() or 1) / 2))
    return 0.5


def _recover_stale(
    study: optuna.Study,
    storage: BaseStorage,
    tracker: StudyTracker | None,
    reporter: Reporter,
    lease: Lease | None = None,
) -> None:
    """Fail trials whose worker died (no heartbeat), re-queue them, mirror it in MLflow."""
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    gone = [t for t in running if _worker_gone(study, storage, t)]
    if gone:  # its process is known dead: no need to wait for the grace period
        _fail_and_requeue(study, storage, gone, tracker, reporter, (lease or Lease()).max_retries)
        running = [t for t in running if t not in gone]
    if running and _has_heartbeats(storage):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            fail_stale_trials(study)
        never_beat = _never_beat(study, storage, running)
        max_retries = (lease or Lease()).max_retries
        _fail_and_requeue(study, storage, never_beat, tracker, reporter, max_retries)
    elif running:
        _recover_dead_workers(study, storage, running, tracker, reporter, lease or Lease())
    _report_recovered(study, storage, tracker, reporter)


def _never_beat(
    study: optuna.Study, storage: RDBStorage, running: list[optuna.trial.FrozenTrial]
) -> list[optuna.trial.FrozenTrial]:
    """Running trials that never sent a heartbeat although started longer than the grace
    period ago: their process died between creating them and its first beat, so Optuna
    (which only fails trials with an old heartbeat) would leave them running forever."""
    beats = heartbeats(storage, study.study_name, [t.number for t in running])
    wait = (storage.grace_period or 0) + (storage.get_heartbeat_interval() or 0)
    now = datetime.datetime.now()  # Optuna stamps trial starts in local time
    return [
        t
        for t in running
        if t.number not in beats
        and t.datetime_start is not None
        and (now - t.datetime_start).total_seconds() > wait
    ]


def _recover_dead_workers(
    study: optuna.Study,
    storage: BaseStorage,
    running: list[optuna.trial.FrozenTrial],
    tracker: StudyTracker | None,
    reporter: Reporter,
    lease: Lease,
) -> None:
    """Without heartbeats (journal storage, gRPC proxy): recover trials of dead workers.

    A trial whose lease expired (no beat for ``grace`` seconds, whichever host ran it)
    is failed and re-queued like a stale trial of a storage with heartbeats.
    """
    now = time.time()
    expired = [t for t in running if lease.expired(t, now)]
    _fail_and_requeue(study, storage, expired, tracker, reporter, lease.max_retries)


def _fail_and_requeue(
    study: optuna.Study,
    storage: BaseStorage,
    trials: list[optuna.trial.FrozenTrial],
    tracker: StudyTracker | None,
    reporter: Reporter,
    max_retries: int,
) -> None:
    """Fail ``trials`` of dead workers and re-queue their parameters, as Optuna does with
    stale trials (the storage's own callback when it has one, so it is reported once)."""
    callback = storage.get_heartbeat_stale_trial_callback() if _has_heartbeats(storage) else None
    reported = isinstance(callback, RequeueStaleTrial)
    if callback is None:
        callback = RetryHeartbeatStaleTrialCallback(max_retry=max_retries)
    recovered = []
    for trial in trials:
        try:
            if not storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another worker recovered it first
        failed = storage.get_trial(trial._trial_id)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            callback(study, failed)
        recovered.append(trial.number)
    if recovered and not reported:  # a RequeueStaleTrial is reported by _report_recovered
        _mirror_recovered(study, recovered, tracker, reporter)


def _worker_gone(
    study: optuna.Study, storage: BaseStorage, trial: optuna.trial.FrozenTrial
) -> bool:
    """Whether the process recorded as running ``trial`` is known dead.

    A re-queued trial starts with the user attributes of the attempt it repeats, the dead
    worker included, until the worker that took it records itself: that inherited record
    says nothing about who runs it now (heartbeats or the lease recover it if need be).
    """
    worker = trial.user_attrs.get(WORKER)
    if not process_gone(worker):
        return False
    history = trial.system_attrs.get("retry_history") or []
    if not history:
        return True
    repeated_id = storage.get_trial_id_from_study_id_trial_number(study._study_id, history[-1])
    return storage.get_trial(repeated_id).user_attrs.get(WORKER) != worker


def _alive_here(worker: Any) -> bool:
    """Whether ``worker`` (a trial's ``worker`` attribute) runs on this host in another
    process that exists now."""
    pid = _other_local_pid(worker)
    return pid is not None and process_alive(pid)


def process_gone(worker: Any) -> bool:
    """Whether ``worker`` (a trial's ``worker`` attribute) ran on this host in a process
    that no longer exists. Other hosts' workers, or none recorded: not known, False."""
    pid = _other_local_pid(worker)
    return pid is not None and not process_alive(pid)


def _other_local_pid(worker: Any) -> int | None:
    """The pid of ``worker`` if it is a process of this host other than this one."""
    if not isinstance(worker, dict) or worker.get("host") != socket.gethostname():
        return None
    try:
        pid = int(worker.get("pid") or 0)
    except (TypeError, ValueError):
        return None
    return pid if 0 < pid != os.getpid() else None


def _report_recovered(
    study: optuna.Study, storage: BaseStorage, tracker: StudyTracker | None, reporter: Reporter
) -> None:
    """Report the stale trials failed and re-queued in this process (see RequeueStaleTrial).

    That includes those Optuna failed on its own when a trial started, so nothing more
    than this in-memory check is needed after each trial.
    """
    numbers = take_recovered(storage, study.study_name)
    if numbers:
        _mirror_recovered(study, numbers, tracker, reporter)


def _mirror_recovered(
    study: optuna.Study, numbers: list[int], tracker: StudyTracker | None, reporter: Reporter
) -> None:
    """Mark the recovered trials' MLflow runs failed and say which were re-queued."""
    trials = study.get_trials(deepcopy=False)
    model_type = study.study_name.rpartition(".")[2]
    for number in numbers:
        if tracker is None:
            break
        run_id = trials[number].user_attrs.get("mlflow_run_id")
        # No id recorded: the process died right after creating the run; find it by tags.
        run_ids = [run_id] if run_id else tracker.running_trial_runs(model_type, number)
        for found in run_ids:
            tracker.mark_failed(found, "the worker stopped during this trial; re-queued")
    reporter.message(
        f"{study.study_name}: trial(s) {', '.join(map(str, numbers))} were left running by a "
        "stopped process; marked failed and their parameters re-queued"
    )


def _running_numbers(study: optuna.Study) -> set[int]:
    return {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}


def settle_running(
    study: optuna.Study,
    storage: BaseStorage,
    tracker: StudyTracker | None,
    reporter: Reporter,
    lease: Lease | None = None,
) -> None:
    """Before searching, tell trials of a live worker from those of a stopped process.

    A trial left running counts against the budget. Right after a crash its heartbeat is
    still fresh, so wait until each such trial either beats again (its worker is alive),
    finishes, or goes stale (it is then failed and re-queued): at most the grace period.
    """
    _recover_stale(study, storage, tracker, reporter, lease)
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    # A trial of a process alive on this host (another worker of a pool, started first)
    # is no stopped process's: waiting for its heartbeat would only idle this worker.
    pending = {t.number for t in running if not _alive_here(t.user_attrs.get(WORKER))}
    if not pending or not isinstance(storage, RDBStorage):
        return  # without heartbeats, trials of workers known dead were just recovered
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


@contextlib.contextmanager
def _quick_collections() -> Iterator[None]:
    """Full garbage collections between trials scan only what the trials created.

    With TensorFlow loaded the heap holds ~0.5 M objects a collection walks (~0.2 s each);
    frozen while trials run, a collection takes milliseconds. Unfrozen afterwards, so
    nothing of the caller's stays exempt. No collection before freezing: it would cost
    that 0.2-0.4 s at every search's start, and garbage frozen with the heap is only kept
    until the search ends.
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@contextlib.contextmanager
def _trials_shielded(ended: Callable[[optuna.Study, int], None]) -> Iterator[None]:
    """Optuna's per-trial bookkeeping (ask, run, tell) as one shielded call: a stop in
    its own code between storage writes would leave it half-done (it then fails with
    an error of its own instead of the interrupt).

    ``ended(study, trial_id)`` runs after each trial where an Optuna callback would, but
    without the copy of the trial Optuna reads from the storage for its callbacks:
    ``ended`` reads every trial anyway.
    """
    from optuna.study import _optimize

    original = _optimize._run_trial

    def run_trial(study: optuna.Study, func: Any, catch: tuple[type[Exception], ...]) -> int:
        trial_id = original(study, func, catch)
        ended(study, trial_id)
        return trial_id

    _optimize._run_trial = shield(run_trial)  # private: Optuna has no hook around a trial
    try:
        yield
    finally:
        _optimize._run_trial = original


def _note_asked(study: optuna.Study, objective: Objective) -> None:
    """Record each trial this process creates the moment Optuna creates it, so a stop
    before its objective starts still finds (and re-queues) it."""
    ask = study.ask

    def asking(*args: Any, **kwargs: Any) -> optuna.Trial:
        trial = ask(*args, **kwargs)
        objective.current_trial = trial.number
        return trial

    study.ask = shield(asking)  # type: ignore[method-assign]


def requeue_interrupted(
    study: optuna.Study,
    storage: BaseStorage,
    objective: Objective,
    tracker: StudyTracker | None,
) -> None:
    """After Ctrl-C, queue the interrupted configuration again so it is not lost.

    The stop may have come after Optuna created the trial but before it ran the objective
    (which fails it): such a trial, still running, is failed here first.
    """
    if objective.current_trial is None:
        return
    writes = getattr(objective, "writes", None)
    if writes is not None:  # the trial's run may still be being created: its id comes then
        writes.wait(raise_errors=False)
    trial = study.trials[objective.current_trial]
    if trial.state == TrialState.RUNNING:
        with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
            storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
        trial = study.trials[objective.current_trial]
    if trial.state == TrialState.FAIL and "error" not in trial.user_attrs:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            RetryHeartbeatStaleTrialCallback()(study, trial)
        if tracker is not None and objective.current_run_id:
            tracker.mark_failed(objective.current_run_id, "interrupted; re-queued")


def best_or_none(study: optuna.Study | TrialsRead) -> float | None:
    try:
        return float(study.best_value)
    except ValueError:
        return None
