"""A stop (Ctrl-C, SIGTERM) never lands inside a storage write: it waits for it to end."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import optuna
import pytest

from hpolab.interrupts import shield, stops_as_interrupts
from hpolab.search.storage import open_storage


def _signal_self(sig: int) -> None:
    os.kill(os.getpid(), sig)
    time.sleep(0.05)  # the handler runs at the next bytecode of the main thread


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_during_a_shielded_call_is_raised_once_it_returns(sig: int) -> None:
    done: list[str] = []

    @shield
    def write() -> str:
        _signal_self(sig)
        done.append("committed")
        return "ok"

    with stops_as_interrupts(), pytest.raises(KeyboardInterrupt):
        write()
    assert done == ["committed"]  # the write finished before the stop was raised


def test_a_stop_outside_shielded_calls_is_raised_at_once() -> None:
    done: list[str] = []
    with stops_as_interrupts(), pytest.raises(KeyboardInterrupt):
        _signal_self(signal.SIGTERM)
        done.append("went on")
    assert done == []


def test_a_second_ctrl_c_does_not_wait() -> None:
    done: list[str] = []

    @shield
    def slow_write() -> None:
        _signal_self(signal.SIGINT)
        _signal_self(signal.SIGINT)  # the user insists
        done.append("committed")

    with stops_as_interrupts(), pytest.raises(KeyboardInterrupt):
        slow_write()
    assert done == []


def test_a_stop_swallowed_by_a_finalizer_is_raised_again() -> None:
    class Finalized:
        def __del__(self) -> None:
            _signal_self(signal.SIGINT)  # the stop lands here, where Python ignores it

    went_on = 0
    with stops_as_interrupts(), pytest.raises(KeyboardInterrupt):
        Finalized()  # collected at once
        for _ in range(100):
            time.sleep(0.01)
            went_on += 1
    assert went_on < 5


def test_handlers_are_restored_afterwards() -> None:
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    with stops_as_interrupts():
        pass
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before


def test_storage_and_tracking_calls_are_shielded(tmp_path: Path) -> None:
    storage = open_storage(f"sqlite:///{tmp_path / 's.db'}", 1, None, 0)
    assert hasattr(storage.set_trial_state_values, "__wrapped__")
    assert hasattr(storage.set_trial_user_attr, "__wrapped__")
    from hpolab.tracking import StudyTracker

    tracker = StudyTracker(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "art", "s")
    assert hasattr(tracker.client.log_batch, "__wrapped__")


def test_a_stop_during_a_real_storage_write_leaves_the_database_usable(tmp_path: Path) -> None:
    storage = open_storage(f"sqlite:///{tmp_path / 's.db'}", 1, None, 0)
    study = optuna.create_study(storage=storage, study_name="s")
    trial = study.ask()
    write = storage.set_trial_user_attr.__wrapped__

    def interrupted_write(*args, **kwargs):
        _signal_self(signal.SIGINT)  # arrives in the middle of the write
        return write(*args, **kwargs)

    with stops_as_interrupts(), pytest.raises(KeyboardInterrupt):
        shield(interrupted_write)(trial._trial_id, "k", 1)
    # The write happened, and the database is free for the clean-up: no lock is held.
    assert storage.get_trial(trial._trial_id).user_attrs == {"k": 1}
    start = time.monotonic()
    study.tell(trial, state=optuna.trial.TrialState.FAIL)
    assert time.monotonic() - start < 5
    assert study.trials[0].state == optuna.trial.TrialState.FAIL


class _StopWhileAsking(optuna.samplers.RandomSampler):
    """Ctrl-C arrives after Optuna created the trial, before the objective runs."""

    def before_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        super().before_trial(study, trial)
        _signal_self(signal.SIGINT)


def test_a_stop_before_the_objective_starts_still_requeues_the_trial(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from hpolab.search.loop import _note_asked, requeue_interrupted

    storage = open_storage(f"sqlite:///{tmp_path / 's.db'}", 1, None, 0)
    study = optuna.create_study(storage=storage, study_name="s", sampler=_StopWhileAsking())
    objective = SimpleNamespace(current_trial=None, current_run_id=None)
    _note_asked(study, objective)
    ran: list[int] = []
    with stops_as_interrupts(), pytest.raises(KeyboardInterrupt):
        study.optimize(lambda trial: ran.append(trial.number) or 0.0, n_trials=1)
    assert ran == []  # stopped before the objective
    requeue_interrupted(study, storage, objective, None)
    states = [t.state for t in study.trials]
    assert states == [optuna.trial.TrialState.FAIL, optuna.trial.TrialState.WAITING]
    assert study.trials[1].system_attrs["failed_trial"] == 0


def test_a_configuration_that_failed_on_its_own_is_not_requeued_by_a_stop(tmp_path) -> None:
    from types import SimpleNamespace

    from hpolab.search.loop import requeue_interrupted

    storage = open_storage(f"sqlite:///{tmp_path / 's.db'}", 1, None, 0)
    study = optuna.create_study(storage=storage, study_name="s")
    trial = study.ask()
    trial.set_user_attr("error", "loss became NaN")
    study.tell(trial, state=optuna.trial.TrialState.FAIL)
    requeue_interrupted(study, storage, SimpleNamespace(current_trial=0), None)
    assert len(study.trials) == 1


@pytest.mark.slow
def test_ctrl_c_at_random_moments_always_stops_cleanly(tmp_path: Path) -> None:
    """Ctrl-C at seeded random moments of a study of short trials (sampling, training,
    pruning reports, storage and MLflow writes): every time exit 130 within seconds, no
    trial left running, the interrupted configuration queued again."""
    import random
    import sqlite3
    import subprocess
    import sys

    from helpers import RUN_HPO, small_config, write_csv

    tries = int(os.environ.get("HPOLAB_CTRL_C_TRIES", "3"))
    rng = random.Random(int(os.environ.get("HPOLAB_CTRL_C_SEED", "3")))
    config = small_config(
        tmp_path / "c.yaml",
        write_csv(tmp_path / "d.csv", n=160),
        name="cc",
        n_trials=500,
        pruner="median",
        heartbeat_interval=1,
    )
    db = tmp_path / "hpo_studies" / "cc.db"

    def query(sql: str) -> int:
        """-1 while the study process is still creating the tables."""
        try:
            with sqlite3.connect(db, timeout=30) as connection:
                return int(connection.execute(sql).fetchone()[0])
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return -1
            raise

    for attempt in range(tries):
        before = query("SELECT coalesce(max(number), -1) FROM trials") if db.exists() else -1
        proc = subprocess.Popen(
            [sys.executable, str(RUN_HPO), "--config", str(config), "--root", str(tmp_path)],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 180
        while not (
            db.exists() and query(f"SELECT count(*) FROM trials WHERE number > {before}") > 0
        ):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        time.sleep(rng.uniform(0.0, 4.0))
        proc.send_signal(signal.SIGINT)
        stopped = time.monotonic()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        seconds = time.monotonic() - stopped
        error = proc.stderr.read().decode()
        error = error if len(error) <= 4000 else f"{error[:2000]}\n...\n{error[-2000:]}"
        assert proc.returncode == 130, f"try {attempt}: exit {proc.returncode}\n{error}"
        assert seconds < 15, f"try {attempt}: took {seconds:.1f}s to stop"
        assert "Traceback" not in error, error
        assert query("SELECT count(*) FROM trials WHERE state = 'RUNNING'") == 0, attempt


def test_a_stop_a_library_turns_into_its_own_error_still_stops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stop raised while native code calls back into Python (TensorFlow tracing a
    function) can come out as that library's error. The trial is then interrupted, not a
    failed configuration: the stop goes on, and the configuration is not marked failed."""
    from helpers import write_csv

    from hpolab.config import StudyConfig
    from hpolab.data import load_dataset
    from hpolab.search.objective import Objective
    from hpolab.search.space import SearchSpace

    def training_cut_short(self, *args, **kwargs):
        try:
            _signal_self(signal.SIGINT)
        except KeyboardInterrupt:
            raise RuntimeError("function call cancelled") from None

    def training_fails(self, *args, **kwargs):
        raise RuntimeError("loss became NaN")

    cfg = StudyConfig.model_validate(
        {
            "data": {"source": str(write_csv(tmp_path / "d.csv", n=60)), "target": "label"},
            "training": {"epochs": 1},
            "models": {"mlp": {"search_space": {"hidden_layers": [[4]]}}},
        }
    )
    space = SearchSpace(cfg.models["mlp"].params())
    objective = Objective(cfg, "mlp", space, load_dataset(cfg.data), None, None)
    study = optuna.create_study()
    monkeypatch.setattr(Objective, "_train", training_cut_short)
    with stops_as_interrupts(), pytest.raises(KeyboardInterrupt):
        study.optimize(objective, n_trials=1)
    assert "error" not in study.trials[0].user_attrs  # interrupted: it may be re-queued
    monkeypatch.setattr(Objective, "_train", training_fails)
    with stops_as_interrupts(), pytest.raises(RuntimeError):
        study.optimize(objective, n_trials=1)
    assert study.trials[1].user_attrs["error"] == "RuntimeError: loss became NaN"


def test_a_stop_that_leaves_tensorflow_mid_trace_still_stops(tmp_path: Path, monkeypatch) -> None:
    """A stop landing while TensorFlow traces can come out as TensorFlow's own error and
    leave its graph stack nested, so Keras's clean-up after the trial refuses too: the stop
    still goes on (exit 130, trial re-queued), not that clean-up's error."""
    import tensorflow as tf
    from helpers import write_csv

    from hpolab.config import StudyConfig
    from hpolab.data import load_dataset
    from hpolab.search.objective import Objective
    from hpolab.search.space import SearchSpace

    left_open = []

    def cut_short_mid_trace(self, *args, **kwargs):
        graph = tf.Graph().as_default()
        graph.__enter__()  # what an interrupted trace leaves behind
        left_open.append(graph)
        try:
            _signal_self(signal.SIGINT)
        except KeyboardInterrupt:
            raise AssertionError("Nesting violated for default stack of FuncGraph") from None

    cfg = StudyConfig.model_validate(
        {
            "data": {"source": str(write_csv(tmp_path / "d.csv", n=60)), "target": "label"},
            "training": {"epochs": 1},
            "models": {"mlp": {"search_space": {"hidden_layers": [[4]]}}},
        }
    )
    objective = Objective(
        cfg, "mlp", SearchSpace(cfg.models["mlp"].params()), load_dataset(cfg.data), None, None
    )
    study = optuna.create_study()
    monkeypatch.setattr(Objective, "_train", cut_short_mid_trace)
    try:
        with stops_as_interrupts(), pytest.raises(KeyboardInterrupt):
            study.optimize(objective, n_trials=1)
    finally:
        for graph in left_open:  # leave TensorFlow as the other tests expect it
            graph.__exit__(None, None, None)
    assert "error" not in study.trials[0].user_attrs  # interrupted: it may be re-queued


def test_a_swallowed_stop_is_still_counted() -> None:
    """A stop that code on the way catches and drops still shows in stops_seen(), which a
    search checks after each batch of trials (it then re-queues and stops)."""
    import contextlib
    import os
    import signal
    import time

    from hpolab.interrupts import shield, stops_as_interrupts, stops_seen

    with stops_as_interrupts():
        before = stops_seen()
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
        except KeyboardInterrupt:
            pass  # a library swallowing it
        assert stops_seen() == before + 1

        def held() -> None:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.2)
            assert stops_seen() == before + 2, "a held stop counts while it waits"

        with contextlib.suppress(KeyboardInterrupt):
            shield(held)()
        assert stops_seen() == before + 2
