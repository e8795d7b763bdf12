"""Unit tests of engine pieces on tiny data: training hooks, pruning, budgets, atomic writes."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import optuna
import pytest
import sqlalchemy
from optuna.storages import RDBStorage

from hpolab.config import DataSection, TrainingSection
from hpolab.data import load_dataset
from hpolab.errors import ConfigError, TrialFailed
from hpolab.layout import atomic_save, atomic_write_json, check_name
from hpolab.models import build_model
from hpolab.search.loop import counted_trials, settle_running
from hpolab.search.objective import PruningHook
from hpolab.search.storage import heartbeats, open_storage
from hpolab.training.fit import fit_model, training_params


@pytest.fixture(scope="module")
def tiny_data():
    return load_dataset(DataSection(source="builtin:breast_cancer"))


def _model(data):
    return build_model("mlp", {"hidden_layers": [8]}, data.input_shape, data.task, data.n_outputs)


def test_fit_calls_hooks_every_epoch_and_reports_best_epoch(tiny_data) -> None:
    seen: list[tuple[int, dict]] = []
    hp = training_params({"epochs": 3}, TrainingSection(patience=5))
    result = fit_model(
        _model(tiny_data),
        tiny_data,
        hp,
        monitor="val_accuracy",
        direction="maximize",
        hooks=[lambda epoch, logs: seen.append((epoch, logs))],
    )
    assert [e for e, _ in seen] == [1, 2, 3]
    assert {"loss", "val_loss", "val_accuracy", "val_f1_macro", "val_auc"} <= set(seen[0][1])
    values = result.history["val_accuracy"]
    assert result.best_value == max(values) and values[result.best_epoch - 1] == max(values)
    assert result.epochs_run == 3


@pytest.mark.parametrize(
    ("source", "metrics", "loss"),
    [
        ("builtin:breast_cancer", ["accuracy", "auc"], "auto"),
        ("builtin:digits", None, "focal"),
        ("builtin:diabetes", ["mae"], "auto"),
    ],
    ids=["binary", "multiclass-focal", "regression"],
)
def test_the_one_validation_pass_logs_what_keras_validation_logs(source, metrics, loss) -> None:
    """Each epoch validates once (the epoch bridge); its val_loss and compiled metrics are
    those of Keras's own validation pass on the same weights, so nothing is lost."""
    from hpolab.training.fit import validation_logs
    from hpolab.training.result import fit_targets

    data = load_dataset(DataSection(source=source))
    hp = training_params(
        {"epochs": 2, "metrics": metrics, "loss": loss}, TrainingSection(patience=5)
    )
    model = build_model("mlp", {"hidden_layers": [8]}, data.input_shape, data.task, data.n_outputs)
    result = fit_model(model, data, hp, monitor="val_loss", direction="minimize")
    ours = validation_logs(model, data)
    keras_pass = model.evaluate(
        data.X_val, fit_targets(data, data.y_val), batch_size=64, verbose=0, return_dict=True
    )
    for name, value in keras_pass.items():
        assert ours[f"val_{name}"] == pytest.approx(value, rel=1e-4, abs=1e-6), name
    assert set(result.history) >= {f"val_{k}" for k in keras_pass}
    assert len(result.history["val_loss"]) == 2


def test_a_hook_returning_true_stops_training(tiny_data) -> None:
    hp = training_params({"epochs": 10}, TrainingSection())
    result = fit_model(
        _model(tiny_data),
        tiny_data,
        hp,
        monitor="val_loss",
        direction="minimize",
        hooks=[lambda epoch, logs: epoch >= 2],
    )
    assert result.epochs_run == 2 and result.stopped_by_hook


def test_a_diverging_loss_fails_the_trial_with_a_hint(tiny_data) -> None:
    hp = training_params({"optimizer": "sgd", "learning_rate": 1e8, "epochs": 3}, TrainingSection())
    with pytest.raises(TrialFailed, match="lower the learning rate"):
        fit_model(_model(tiny_data), tiny_data, hp, monitor="val_loss", direction="minimize")


def test_pruning_hook_reports_each_epoch_and_prunes_a_bad_trial() -> None:
    study = optuna.create_study(
        direction="minimize", pruner=optuna.pruners.MedianPruner(n_startup_trials=2)
    )
    for _ in range(2):
        good = study.ask()
        hook = PruningHook(good, "val_loss")
        for epoch in range(1, 4):
            assert hook(epoch, {"val_loss": 0.1}) is False
        study.tell(good, 0.1)
    bad = study.ask()
    hook = PruningHook(bad, "val_loss")
    assert hook(1, {"val_loss": 5.0}) is True
    assert hook.pruned_at == 1 and study.trials[bad.number].intermediate_values == {1: 5.0}


def test_a_trial_s_outcome_reaches_the_storage_in_one_commit(tmp_path: Path) -> None:
    """Optuna commits each user attribute; a trial's outcome attributes go in one
    transaction on SQLite, one call each on a journal storage, the same either way."""
    import sqlalchemy
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    from hpolab.search.storage import open_storage, write_user_attrs

    sqlite_url = f"sqlite:///{tmp_path / 's.db'}"
    journal_file = str(tmp_path / "journal.log")
    sqlite = open_storage(sqlite_url, 10, None, 0)
    journal = JournalStorage(JournalFileBackend(journal_file))
    commits: list[int] = []
    sqlalchemy.event.listen(sqlite.engine, "commit", lambda _: commits.append(1))

    def stored(storage: object, trial_id: int) -> optuna.trial.FrozenTrial:
        """The trial as another process reads it (a storage keeps its trials in memory)."""
        if storage is sqlite:
            return optuna.storages.RDBStorage(sqlite_url).get_trial(trial_id)
        return JournalStorage(JournalFileBackend(journal_file)).get_trial(trial_id)

    outcome = {"best_epoch": 3, "epochs_run": 5, "fit_seconds": 1.25, "val_metrics": {"a": 1}}
    for storage in (sqlite, journal):
        study = optuna.create_study(storage=storage)
        trial = study.ask()
        commits.clear()
        write_user_attrs(trial, outcome)
        assert len(commits) == (1 if storage is sqlite else 0)
        assert stored(storage, trial._trial_id).user_attrs == outcome == trial.user_attrs


def test_budget_counts_requeued_failures_once() -> None:
    study = optuna.create_study()
    failed = optuna.trial.TrialState.FAIL
    study.add_trial(optuna.create_trial(state=failed, user_attrs={"error": "NaN loss"}))
    assert counted_trials(study) == 1  # a configuration that failed uses budget
    study.add_trial(optuna.create_trial(state=failed))
    assert counted_trials(study) == 1  # a trial whose worker died (no error of its own) not
    study.add_trial(
        optuna.create_trial(
            state=optuna.trial.TrialState.WAITING,
            system_attrs={"failed_trial": 0, "retry_history": [0]},
        )
    )
    assert counted_trials(study) == 0  # ...and a re-queued one does not, until it runs


@pytest.mark.parametrize(
    "name", ["../x", "a/b", "..", "", ".hidden", "x" * 101, "a b", "nl\n", "x\r"]
)
def test_unsafe_names_are_refused(name: str) -> None:
    with pytest.raises(ConfigError, match="not a valid name"):
        check_name(name, "study.name")


def test_atomic_writes_leave_the_old_file_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    atomic_write_json(target, {"v": 1})

    def broken(tmp: Path) -> None:
        tmp.write_text("partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_save(target, broken)
    assert target.read_text().strip().startswith("{") and '"v": 1' in target.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_scaler_statistics_come_from_the_training_split(tiny_data) -> None:
    assert np.allclose(tiny_data.X_train.mean(axis=0), 0, atol=1e-4)
    assert not np.allclose(tiny_data.X_test.mean(axis=0), 0, atol=1e-4)


def _heartbeat_study(tmp_path: Path) -> tuple[optuna.Study, RDBStorage]:
    storage = open_storage(f"sqlite:///{tmp_path / 's.db'}", 1, 3, 1)  # interval 1 s, grace 3 s
    study = optuna.create_study(study_name="s.mlp", storage=storage)
    return study, storage


def _trial_id(storage: RDBStorage, trial: optuna.Trial) -> int:
    """The storage's id of ``trial``, through the public storage API."""
    study_id = storage.get_study_id_from_name(trial.study.study_name)
    return storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)


@pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")
def test_heartbeat_reader_matches_optunas_stored_schema(tmp_path: Path) -> None:
    """``heartbeats`` reads Optuna's tables directly (Optuna has no public reader): pinned here,
    so an Optuna release that changes its schema fails this test, not a resumed study."""
    study, storage = _heartbeat_study(tmp_path)
    columns = {
        table: {c["name"] for c in sqlalchemy.inspect(storage.engine).get_columns(table)}
        for table in ("trial_heartbeats", "trials")
    }
    assert {"trial_id", "heartbeat"} <= columns["trial_heartbeats"]
    assert {"trial_id", "number", "study_id"} <= columns["trials"]
    first, second = study.ask(), study.ask()
    assert heartbeats(storage, "s.mlp", [first.number, second.number]) == {}
    storage.record_heartbeat(_trial_id(storage, first))
    beat = heartbeats(storage, "s.mlp", [first.number, second.number])
    assert list(beat) == [first.number] and beat[first.number] is not None
    time.sleep(1.1)
    storage.record_heartbeat(_trial_id(storage, first))
    assert heartbeats(storage, "s.mlp", [first.number])[first.number] != beat[first.number]


class _Messages:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def message(self, text: str) -> None:
        self.lines.append(text)


@pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")
def test_a_running_trial_that_keeps_beating_is_left_to_its_worker(tmp_path: Path) -> None:
    study, storage = _heartbeat_study(tmp_path)
    trial = study.ask()
    stop = threading.Event()

    def beat() -> None:  # another live worker
        while not stop.is_set():
            storage.record_heartbeat(_trial_id(storage, trial))
            stop.wait(0.5)

    worker = threading.Thread(target=beat)
    worker.start()
    try:
        reporter = _Messages()
        start = time.monotonic()
        settle_running(study, storage, None, reporter)
        waited = time.monotonic() - start
    finally:
        stop.set()
        worker.join()
    assert waited < 2.5, "a live worker's next heartbeat ends the wait"
    assert study.trials[trial.number].state == optuna.trial.TrialState.RUNNING
    assert "checking whether their worker is alive" in reporter.lines[0]
    assert not any("stopped process" in line for line in reporter.lines)


@pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")
def test_a_trial_of_a_live_process_of_this_host_is_not_waited_for(tmp_path: Path) -> None:
    """A pool's worker that starts after another began a trial joins at once: the trial's
    process is alive here, so it is no stopped process's (no heartbeat wait)."""
    import socket
    import subprocess
    import sys

    study, storage = _heartbeat_study(tmp_path)
    trial = study.ask()
    storage.record_heartbeat(_trial_id(storage, trial))
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        trial.set_user_attr("worker", {"host": socket.gethostname(), "pid": other.pid})
        reporter = _Messages()
        start = time.monotonic()
        settle_running(study, storage, None, reporter)
        assert time.monotonic() - start < 1.0
        assert reporter.lines == [], "nothing to check: its worker is alive"
        assert study.trials[trial.number].state == optuna.trial.TrialState.RUNNING
    finally:
        other.kill()
        other.wait()
    settle_running(study, storage, None, reporter)  # now dead: recovered at once
    assert study.trials[trial.number].state == optuna.trial.TrialState.FAIL


@pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")
def test_a_running_trial_of_a_stopped_worker_is_failed_and_requeued(tmp_path: Path) -> None:
    study, storage = _heartbeat_study(tmp_path)
    trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    storage.record_heartbeat(_trial_id(storage, trial))  # then the worker dies
    reporter = _Messages()
    settle_running(study, storage, None, reporter)
    trials = study.trials
    assert trials[trial.number].state == optuna.trial.TrialState.FAIL
    assert trials[-1].state == optuna.trial.TrialState.WAITING
    assert trials[-1].params == trials[trial.number].params
    assert f"trial(s) {trial.number} were left running by a stopped process" in reporter.lines[-1]
    assert counted_trials(study) == 0, "the re-queued configuration is not counted twice"


@pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")
def test_a_run_created_just_before_the_worker_died_is_marked_failed(tmp_path: Path) -> None:
    """Killed between creating the trial's MLflow run and recording its id in the trial:
    the run is found by its tags and ends FAILED, not RUNNING forever."""
    from hpolab.tracking import StudyTracker

    study, storage = _heartbeat_study(tmp_path)
    tracker = StudyTracker(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "art", "s")
    parent, _ = tracker.parent_run(None, "study")
    other = tracker.start_trial(parent, "cnn1d", 0, {})  # same number, other model type
    trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    orphan = tracker.start_trial(parent, "mlp", trial.number, {"x": 0.5})
    storage.record_heartbeat(_trial_id(storage, trial))  # no mlflow_run_id: then it dies
    settle_running(study, storage, tracker, _Messages())
    run = tracker.client.get_run(orphan.run_id)
    assert run.info.status == "FAILED"
    assert "re-queued" in run.data.tags["hpolab.error"]
    assert tracker.client.get_run(other.run_id).info.status == "RUNNING"


def test_trial_runs_end_finished_when_pruned_and_failed_when_failed(tmp_path: Path) -> None:
    """What the MLflow UI shows: a pruned trial is a finished run (not a red cross),
    tagged pruned; a failed one is FAILED with its error."""
    from hpolab.tracking import StudyTracker

    tracker = StudyTracker(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "art", "s")
    parent, _ = tracker.parent_run(None, "study")
    pruned = tracker.start_trial(parent, "mlp", 0, {"x": 0.5})
    pruned.end("pruned", 0.5)
    failed = tracker.start_trial(parent, "mlp", 1, {"x": 0.7})
    failed.end("failed", error="ValueError: boom")
    run = tracker.client.get_run(pruned.run_id)
    assert (run.info.status, run.data.tags["hpolab.state"]) == ("FINISHED", "pruned")
    run = tracker.client.get_run(failed.run_id)
    assert (run.info.status, run.data.tags["hpolab.state"]) == ("FAILED", "failed")
    assert "boom" in run.data.tags["hpolab.error"]


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_atomic_writes_are_as_readable_as_the_umask_allows(tmp_path: Path, umask, mode) -> None:
    import os
    import stat

    previous = os.umask(umask)
    try:
        atomic_write_json(tmp_path / "r.json", {"a": 1})
        atomic_save(tmp_path / "m.bin", lambda tmp: tmp.write_bytes(b"model"))
    finally:
        os.umask(previous)
    for name in ("r.json", "m.bin"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name


def test_local_study_and_mlflow_files_journal_in_a_write_ahead_log(tmp_path: Path) -> None:
    """Every epoch's report and every run write is a commit: both SQLite files hpolab
    writes are in WAL mode, synced at checkpoints (``benchmarks/sqlite_journal.py``)."""
    import sqlite3

    from hpolab.search.storage import open_storage
    from hpolab.tracking import StudyTracker

    study_file, mlflow_file = tmp_path / "s.db", tmp_path / "mlflow.db"
    storage = open_storage(f"sqlite:///{study_file}", 60, None, 0)
    optuna.create_study(study_name="s.mlp", storage=storage)
    tracker = StudyTracker(f"sqlite:///{mlflow_file}", tmp_path / "art", "s")
    tracker.parent_run(None, "study")
    for path in (study_file, mlflow_file):
        with sqlite3.connect(path) as con:
            assert con.execute("PRAGMA journal_mode").fetchone() == ("wal",), path
    # Each of hpolab's connections syncs at checkpoints only.
    with storage.engine.connect() as con:
        assert con.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL


def test_a_cleared_trial_leaves_no_traced_graph_behind(tiny_data) -> None:
    """TensorFlow registers a gradient function per traced custom gradient and never drops
    it; the function holds the whole traced train step. After ``clear_keras`` no trial's
    graph stays reachable: the registry and the traced graphs alive stay at their count."""
    import gc

    from tensorflow.python.framework import ops
    from tensorflow.python.framework.func_graph import FuncGraph

    from hpolab.training.fit import clear_keras

    def trial() -> None:
        hp = training_params({"epochs": 2}, TrainingSection())
        fit_model(_model(tiny_data), tiny_data, hp, monitor="val_loss", direction="minimize")
        clear_keras()
        gc.collect()

    def counts() -> tuple[int, int]:
        graphs = sum(1 for o in gc.get_objects() if isinstance(o, FuncGraph))
        return len(ops.gradient_registry._registry), graphs

    trial()
    before = counts()
    for _ in range(3):
        trial()
    assert counts() == before


@pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")
def test_a_retry_killed_while_reopening_its_run_leaves_no_run_running(
    tmp_path: Path, tiny_data
) -> None:
    """The retry of a stopped trial reopens the stopped attempt's MLflow run (RUNNING again,
    still tagged with the old trial number). Killed right then, before it tags the run with
    its own number: the retry has already recorded the run's id, so recovery fails it."""
    from hpolab.config import StudyConfig
    from hpolab.search.objective import Objective, _Resume
    from hpolab.search.space import SearchSpace
    from hpolab.tracking import StudyTracker
    from hpolab.training.resume import ResumePoint

    study, storage = _heartbeat_study(tmp_path)
    tracker = StudyTracker(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "art", "s")
    parent, _ = tracker.parent_run(None, "study")
    stopped = tracker.start_trial(parent, "mlp", 0, {"x": 0.5})
    tracker.mark_failed(stopped.run_id, "the worker stopped during this trial; re-queued")

    class Killed(BaseException):
        pass

    def reopen_then_die(run_id: str, *args: object, **kwargs: object) -> None:
        tracker.resume_run(run_id)  # MLflow shows it RUNNING again; then the process dies
        raise Killed

    tracker.resume_trial = reopen_then_die  # type: ignore[method-assign]
    cfg = StudyConfig.model_validate({"models": {"mlp": {}}})
    space = SearchSpace(cfg.models["mlp"].params())
    objective = Objective(cfg, "mlp", space, tiny_data, tracker, parent)
    point = ResumePoint(
        epoch=2, model_path=tmp_path / "m.keras", history={}, seconds=1.0, run_id=stopped.run_id
    )
    study.tell(study.ask(), 1.0)  # the stopped attempt was trial 0: the retry is trial 1
    retry = study.ask()
    with pytest.raises(Killed):
        objective._start_run(retry, {}, {}, tiny_data, _Resume(tmp_path, "k", None, point))
    assert tracker.client.get_run(stopped.run_id).info.status == "RUNNING"
    storage.record_heartbeat(_trial_id(storage, retry))
    settle_running(study, storage, tracker, _Messages())
    assert tracker.client.get_run(stopped.run_id).info.status == "FAILED"


@pytest.mark.parametrize("offered", [False, True])
def test_the_median_pruner_decides_as_optunas_reading_finished_trials_once_per_trial(
    tmp_path, offered: bool
) -> None:
    """One read of the finished trials per trial; none when the read made after the last
    trial ended is offered (as the search's after-trial callback does)."""
    from hpolab.search.samplers import make_pruner

    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'p.db'}")
    theirs = optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=2)
    study = optuna.create_study(
        storage=storage, direction="maximize", pruner=make_pruner("median", 10)
    )
    reads = []
    get_all = study._storage.get_all_trials
    study._storage.get_all_trials = lambda *a, **k: reads.append(1) or get_all(*a, **k)
    rng = np.random.default_rng(0)
    pruned_at = {}
    if offered:
        study.pruner.offer(study.study_name, [])  # a new study: nothing finished yet
    for _ in range(12):
        trial = study.ask()
        level, epochs_read = rng.uniform(0.2, 0.9), 0
        for epoch in range(1, 9):
            trial.report(level + 0.01 * epoch, step=epoch)
            expected = theirs.prune(study, study._storage.get_trial(trial._trial_id))
            reads.clear()
            assert trial.should_prune() == expected, (trial.number, epoch)
            epochs_read += len(reads)
            if expected:
                pruned_at[trial.number] = epoch
                break
        assert epochs_read <= (0 if offered else 1)  # none in the warm-up epochs
        if trial.number in pruned_at:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, level)
        if offered:
            study.pruner.offer(study.study_name, get_all(study._study_id))
    assert pruned_at and len(pruned_at) < 8


def test_an_old_or_foreign_offered_read_is_not_used(tmp_path, monkeypatch) -> None:
    from hpolab.search import samplers

    study = optuna.create_study(
        storage=f"sqlite:///{tmp_path / 'p.db'}",
        direction="maximize",
        pruner=samplers.make_pruner("median", 10, warmup_steps=0),
    )
    for value in (0.9, 0.8, 0.85, 0.95):
        trial = study.ask()
        trial.report(value, step=1)
        study.tell(trial, value)
    weak = study.ask()
    weak.report(0.1, step=1)
    study.pruner.offer("another study", [])  # not this study's: read the storage
    assert weak.should_prune()
    weaker = study.ask()
    weaker.report(0.1, step=1)
    study.pruner.offer(study.study_name, [])  # an empty read: too few finished trials
    assert not weaker.should_prune()
    weakest = study.ask()
    weakest.report(0.1, step=1)
    monkeypatch.setattr(samplers, "SNAPSHOT_SECONDS", -1.0)  # every read is too old
    study.pruner.offer(study.study_name, [])
    assert weakest.should_prune()
