"""Workers sharing a study: local pools, separate processes, shared storage and tracking.

Real processes on real storages (SQLite, PostgreSQL, Redis) and real MLflow stores.
"""

from __future__ import annotations

import collections
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import optuna
import pytest
import yaml
from helpers import RUN_HPO, completed_in_process, run_cli, small_config, write_csv
from optuna.trial import TrialState

from hpolab.config import load_config
from hpolab.search.samplers import TrialSeededSampler, make_sampler
from hpolab.search.space import SearchSpace
from hpolab.search.storage import open_storage
from hpolab.search.workers import (
    Elections,
    WorkerId,
    plan_devices,
    thread_budget,
    visible_gpus,
    worker_environment,
)

PG = "postgresql://postgres@127.0.0.1:5432/test"
ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}


# -- units: planning and elections --------------------------------------------------------
def test_devices_are_planned_round_robin_and_threads_shared() -> None:
    assert plan_devices(3, []) == [None, None, None]
    assert plan_devices(4, ["0", "1"]) == ["0", "1", "0", "1"]
    assert plan_devices(2, ["2", "5", "7"]) == ["2", "5"]
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "0,1"}) == ["0", "1"]
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": ""}) == []
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "-1"}) == []
    assert thread_budget(2, cores=2) == 1 and thread_budget(4, cores=2) == 1
    assert thread_budget(2, cores=8) == 4
    env = worker_environment(1, 2, ["0", "1"], 4)
    assert env["CUDA_VISIBLE_DEVICES"] == "1" and env["TF_NUM_INTRAOP_THREADS"] == "4"
    assert "CUDA_VISIBLE_DEVICES" not in worker_environment(0, 2, [None, None], 1)


def test_trial_seeds_differ_per_trial_and_repeat_for_one_worker(tmp_path: Path) -> None:
    spec = {"learning_rate": {"low": 1e-4, "high": 1e-1, "log": True}, "units": [8, 16, 32]}
    cfg = load_config({"models": {"mlp": {"search_space": spec}}})
    space = SearchSpace(cfg.models["mlp"].params())
    sampler = make_sampler("random", space, seed=3)
    assert isinstance(sampler, TrialSeededSampler)
    assert sampler.for_trial(0) != sampler.for_trial(1)

    def run(url: str) -> list[dict]:
        study = optuna.create_study(sampler=make_sampler("tpe", space, seed=3), storage=url)
        study.optimize(lambda t: space.suggest(t)["learning_rate"], n_trials=6)
        return [t.params for t in study.trials]

    first = run(f"sqlite:///{tmp_path / 'a.db'}")
    assert first == run(f"sqlite:///{tmp_path / 'b.db'}")  # reproducible
    assert len({tuple(sorted(p.items())) for p in first}) == 6


def test_elections_lowest_live_claim_wins(tmp_path: Path) -> None:
    storage = open_storage(f"sqlite:///{tmp_path / 's.db'}", 10, None, 3)
    me = WorkerId.current(0)
    other = WorkerId("elsewhere", 1, 1)  # another host: assumed alive
    dead = WorkerId(me.host, 2**22 + 7)  # this host, no such process
    mine, theirs = Elections(storage, "s", me), Elections(storage, "s", other)
    ghost = Elections(storage, "s", dead)
    ghost.claim("finish:mlp")  # a crashed worker's claim does not block the others
    assert theirs.elect("finish:mlp") == (True, other)
    won, who = mine.elect("finish:mlp")
    assert not won and who == other
    theirs.done("finish:mlp")  # done: a later run finishes again
    assert mine.elect("finish:mlp") == (True, me)
    mine.claim("parent")
    mine.publish("parent", "run_id", "abc")
    assert theirs.published("parent", "run_id") == "abc"
    # The bookkeeping study is not a model type of the study.
    from hpolab.search.storage import model_types_in

    assert model_types_in(storage, "s") == []


def test_a_lapsed_lease_recovers_a_trial_of_another_host(redis_url: str) -> None:
    """Redis journal storage has no heartbeats: a trial without beats is re-queued."""
    from hpolab.progress import QuietReporter
    from hpolab.search.loop import BEAT, Lease, _recover_stale

    storage = open_storage(redis_url, 10, None, 3)
    name = f"lease_{uuid.uuid4().hex[:8]}"
    study = optuna.create_study(study_name=f"{name}.mlp", storage=storage)
    try:
        lease = Lease(interval=0.2, grace=1.0)
        beaten = lease.keep(lambda trial: time.sleep(0.7) or 1.0, storage)
        study.optimize(beaten, n_trials=1)
        assert BEAT in study.trials[0].system_attrs  # a live trial beats
        trial = study.ask()
        trial.suggest_float("x", 0, 1)
        # A worker on another host beat once, long ago (a re-queued trial carries such a
        # beat): the start of this attempt counts, so the lease has not lapsed yet.
        storage.set_trial_system_attr(trial._trial_id, BEAT, time.time() - 60)
        _recover_stale(study, storage, None, QuietReporter(), lease)
        assert study.trials[1].state == TrialState.RUNNING
        time.sleep(1.3)
        _recover_stale(study, storage, None, QuietReporter(), lease)
        states = [t.state for t in study.trials]
        assert states == [TrialState.COMPLETE, TrialState.FAIL, TrialState.WAITING]
        assert study.trials[2].params == study.trials[1].params
    finally:
        _drop(redis_url, name)


def test_bad_shared_storage_urls_are_one_line_errors(tmp_path: Path) -> None:
    for url, expected in [
        ("redis://127.0.0.1:1", "cannot open redis://127.0.0.1:1"),
        ("grpc://nohost", "needs a host and a port"),
    ]:
        proc = run_cli("--data", "builtin:breast_cancer", "--storage", url, root=tmp_path)
        assert proc.returncode == 2, proc.stderr
        last = proc.stderr.strip().splitlines()[-1]
        assert last.startswith("error: study.storage") and expected in last
        assert "Traceback" not in proc.stderr
    proc = run_cli("--workers", "0", root=tmp_path)
    assert proc.returncode == 2 and "study.workers" in proc.stderr
    proc = run_cli("--tracking-uri", "nowhere", root=tmp_path)
    assert proc.returncode == 2 and "'nowhere' is not a tracking URI" in proc.stderr
    from hpolab.cli.main import main

    proc = completed_in_process(main, "worker", "--reset", "--root", str(tmp_path), cwd=tmp_path)
    assert proc.returncode == 2 and "error: --reset: a worker joins a study" in proc.stderr
    assert not (tmp_path / "hpo_studies").exists() and not (tmp_path / "mlruns").exists()


# -- end to end ---------------------------------------------------------------------------
def _run(root: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(RUN_HPO), *args, "--root", str(root)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=ENV,
        cwd=root,
    )


def _start(root: Path, *args: str, command: str | None = None) -> subprocess.Popen:
    prefix = [sys.executable, str(RUN_HPO)]
    if command is not None:
        prefix = [sys.executable, "-m", "hpolab.cli.main", command]
    root.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [*prefix, *args, "--root", str(root), "-q"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
        cwd=root,
    )


def _wait_all(procs: list[subprocess.Popen], timeout: float = 600) -> list[str]:
    errors = []
    for proc in procs:
        _, err = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, err
        errors.append(err)
    return errors


def _config(tmp_path: Path, name: str, n_trials: int = 12, **study: object) -> Path:
    data = write_csv(tmp_path / f"{name}.csv", n=200)
    return small_config(tmp_path / f"{name}.yaml", data, name=name, n_trials=n_trials, **study)


def _check_study(
    storage: str,
    name: str,
    n_trials: int,
    tracking_uri: str,
    grid_points: int | None = None,
    workers: int = 4,
) -> list[optuna.trial.FrozenTrial]:
    """The whole budget done, no duplicates, one parent, one run per trial, one final.

    Workers starting a trial at the instant the budget is reached may each run one: up to
    ``workers - 1`` over the budget (a grid point run twice is not trained again).
    """
    store = open_storage(storage, 10, None, 0)
    trials = optuna.load_study(study_name=f"{name}.mlp", storage=store).trials
    states = collections.Counter(t.state for t in trials)
    assert states[TrialState.RUNNING] == 0 and states[TrialState.WAITING] == 0
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert n_trials <= len(finished) <= n_trials + workers - 1, states
    trained = [t for t in finished if "duplicate_of" not in t.user_attrs]
    keys = [tuple(sorted((k, str(v)) for k, v in t.params.items())) for t in trained]
    assert len(set(keys)) == len(keys), "two trials with identical params"
    if grid_points is not None:
        assert len(set(keys)) == grid_points
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    experiment = client.get_experiment_by_name(name)
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    roles = collections.Counter(r.data.tags.get("hpolab.role") for r in runs)
    trial_runs = len(trials) - (len(finished) - len(trained))  # a repeated grid point has none
    assert roles == {"study": 1, "trial": trial_runs, "final_model": 1}, roles
    assert all(r.info.status != "RUNNING" for r in runs)
    (parent,) = [r for r in runs if r.data.tags.get("hpolab.role") == "study"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == trial_runs + 1
    versions = client.search_model_versions(f"name='{name}-mlp'")
    assert len(versions) == 1
    return trials


@pytest.mark.slow
def test_pool_of_four_on_a_fresh_root(tmp_path: Path) -> None:
    """--workers 4 on the embedded storage: 8 trials, one retrain, one registered version."""
    cfg = _config(tmp_path, "pool4", n_trials=8)
    proc = _run(tmp_path, "--config", str(cfg), "--workers", "4")
    assert proc.returncode == 0, proc.stderr
    assert "4 workers (1 thread(s) each): this process and 3 more" in proc.stdout
    assert proc.stdout.count("retraining trial") == 1
    trials = _check_study(
        f"sqlite:///{tmp_path / 'hpo_studies' / 'pool4.db'}",
        "pool4",
        8,
        f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}",
    )
    assert len({t.user_attrs["worker"]["index"] for t in trials}) >= 2
    assert "by other workers" in proc.stdout
    # Not a terminal: a plain line for every ended trial, the other workers' ones included.
    for t in trials:
        assert re.search(rf"^mlp +trial +{t.number} +{t.state.name.lower()}", proc.stdout, re.M), (
            t.number,
            proc.stdout,
        )


@pytest.mark.slow
@pytest.mark.postgres
def test_four_processes_on_postgres_grid_every_point_once(tmp_path: Path, postgres: str) -> None:
    """4 separate processes started together on one fresh root; an 8-point grid."""
    name = f"pg4_{uuid.uuid4().hex[:8]}"
    cfg = _config(tmp_path, name, n_trials=50, sampler="grid")
    raw = yaml.safe_load(cfg.read_text())
    raw["models"]["mlp"]["search_space"] = {
        "hidden_layers": [[8], [16, 8]],
        "learning_rate": [0.001, 0.003, 0.01, 0.03],
    }
    cfg.write_text(yaml.safe_dump(raw))
    root = tmp_path / "root"
    procs = [_start(root, "--config", str(cfg), "--storage", postgres) for _ in range(4)]
    try:
        errors = _wait_all(procs)
        assert sum("retrains the final model" in e for e in errors) == 0  # -q: no messages
        _check_study(postgres, name, 8, f"sqlite:///{root / 'mlruns' / 'mlflow.db'}", 8)
        assert len(list((root / "models" / "hpo_derived" / name).glob("*.keras"))) == 1
    finally:
        _drop(postgres, name)


@pytest.mark.slow
@pytest.mark.postgres
def test_one_root_per_worker_shares_one_tracking_view(tmp_path: Path, postgres: str) -> None:
    """Workers on separate roots (as on separate hosts) log to one PostgreSQL MLflow store."""
    name = f"pgt_{uuid.uuid4().hex[:8]}"
    tracking = _fresh_database(f"mlflow_{uuid.uuid4().hex[:8]}")
    cfg = _config(tmp_path, name, n_trials=6, sampler="random")
    try:
        procs = [
            _start(
                tmp_path / f"host{i}",
                "--config",
                str(cfg),
                "--storage",
                postgres,
                "--tracking-uri",
                tracking,
                command="worker",
            )
            for i in range(3)
        ]
        _wait_all(procs)
        _check_study(postgres, name, 6, tracking, workers=3)
        finals = list(tmp_path.glob(f"host*/models/hpo_derived/{name}/*.keras"))
        assert len(finals) == 1  # written by the one elected worker, on its own root
    finally:
        _drop(postgres, name)
        _drop_database(tracking)


@pytest.mark.slow
def test_three_processes_on_redis(tmp_path: Path, redis_url: str) -> None:
    """Optuna's journal storage on Redis: shared budget, distinct params, one finisher."""
    name = f"rd_{uuid.uuid4().hex[:8]}"
    cfg = _config(tmp_path, name, n_trials=6, sampler="random")
    root = tmp_path / "root"
    try:
        procs = [_start(root, "--config", str(cfg), "--storage", redis_url) for _ in range(3)]
        _wait_all(procs)
        _check_study(redis_url, name, 6, f"sqlite:///{root / 'mlruns' / 'mlflow.db'}", workers=3)
        listed = subprocess.run(
            [sys.executable, "-m", "hpolab.cli.main", "studies", "--storage", redis_url],
            capture_output=True,
            text=True,
            env=ENV,
            cwd=root,
        )
        assert listed.returncode == 0 and name in listed.stdout and ":hpolab" not in listed.stdout
    finally:
        _drop(redis_url, name)


@pytest.mark.slow
def test_workers_through_the_grpc_storage_proxy(tmp_path: Path) -> None:
    """hpolab storage-proxy serves a database; workers reach it as grpc://host:port."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    database = f"sqlite:///{tmp_path / 'served.db'}"
    proxy = subprocess.Popen(
        [sys.executable, "-m", "hpolab.cli.main", "storage-proxy", "--storage", database]
        + ["--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=ENV,
    )
    try:
        assert "serving" in proxy.stdout.readline()
        url = f"grpc://127.0.0.1:{port}"
        cfg = _config(tmp_path, "viaproxy", n_trials=6, sampler="random")
        root = tmp_path / "root"
        procs = [_start(root, "--config", str(cfg), "--storage", url) for _ in range(2)]
        _wait_all(procs)
        _check_study(url, "viaproxy", 6, f"sqlite:///{root / 'mlruns' / 'mlflow.db'}", workers=2)
        trials = optuna.load_study(study_name="viaproxy.mlp", storage=database).trials
        assert len(trials) >= 6  # stored in the database behind the proxy
    finally:
        proxy.send_signal(signal.SIGINT)
        proxy.wait(timeout=30)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("when", "kind"),
    # PostgreSQL keeps heartbeats as SQLite does (covered near the end); Redis has none, so
    # its recovery is the lease's. Several workers on PostgreSQL are tested above.
    [("mid_trial", "redis"), ("near_the_end", "sqlite")],
)
def test_a_killed_worker_costs_no_trial(
    tmp_path: Path, when: str, kind: str, request: pytest.FixtureRequest
) -> None:
    """kill -9 of one of 3 workers: the others recover its trial; the full budget is run."""
    name = f"kill_{uuid.uuid4().hex[:8]}"
    data = write_csv(tmp_path / "d.csv", n=400)
    cfg = small_config(
        tmp_path / "k.yaml", data, name=name, n_trials=9, heartbeat_interval=1, grace_period=3
    )
    raw = yaml.safe_load(cfg.read_text())
    raw["training"].update(epochs=40, patience=40, batch_size=16)  # trials of a few seconds
    cfg.write_text(yaml.safe_dump(raw))
    root = tmp_path / "root"
    storage = {
        "postgres": lambda: request.getfixturevalue("postgres"),
        "redis": lambda: request.getfixturevalue("redis_url"),
        "sqlite": lambda: f"sqlite:///{root / 'hpo_studies' / f'{name}.db'}",
    }[kind]()
    procs = [_start(root, "--config", str(cfg), "--storage", storage) for _ in range(3)]
    try:
        victim = procs[0]
        # Near the end: the others' last trials use up the budget while the victim's runs.
        at_least = 0 if when == "mid_trial" else 6
        _wait_for_running_trial(storage, f"{name}.mlp", victim.pid, finished_before=at_least)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        _wait_all(procs[1:])
        store = open_storage(storage, 10, None, 0)
        trials = optuna.load_study(study_name=f"{name}.mlp", storage=store).trials
        states = collections.Counter(t.state for t in trials)
        # As in _check_study: a survivor starting a trial as the budget is reached may run
        # one more (up to the number of survivors - 1).
        assert 9 <= states[TrialState.COMPLETE] <= 10, states
        assert states[TrialState.RUNNING] == 0, states
        assert states[TrialState.FAIL] == 1  # the killed one, re-queued and run by a survivor
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlruns' / 'mlflow.db'}")
        experiment = client.get_experiment_by_name(name)
        runs = client.search_runs([experiment.experiment_id], max_results=1000)
        assert all(r.info.status != "RUNNING" for r in runs)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        if kind != "sqlite":
            _drop(storage, name)


@pytest.mark.slow
def test_ctrl_c_stops_every_worker_of_a_pool(tmp_path: Path) -> None:
    """SIGINT to a pool: exit 130 soon, nothing left running, the rerun completes."""
    data = write_csv(tmp_path / "d.csv", n=400)
    cfg = small_config(tmp_path / "c.yaml", data, name="intr", n_trials=6)
    raw = yaml.safe_load(cfg.read_text())
    # Trials of a few seconds: the stop lands while both workers train, not between trials.
    raw["training"].update(epochs=80, patience=80, batch_size=16)
    cfg.write_text(yaml.safe_dump(raw))
    proc = _start(tmp_path, "--config", str(cfg), "--workers", "2")
    storage = f"sqlite:///{tmp_path / 'hpo_studies' / 'intr.db'}"
    _wait_for_running_trial(storage, "intr.mlp", None)
    proc.send_signal(signal.SIGINT)
    start = time.monotonic()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert time.monotonic() - start < 40
    trials = optuna.load_study(study_name="intr.mlp", storage=storage).trials
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    assert [t for t in trials if t.state == TrialState.WAITING]  # re-queued
    resumed = _run(tmp_path, "--config", str(cfg), "--workers", "2", "-q")
    assert resumed.returncode == 0, resumed.stderr
    trials = optuna.load_study(study_name="intr.mlp", storage=storage).trials
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 6


@pytest.mark.slow
def test_sigterm_ends_a_worker_like_ctrl_c(tmp_path: Path) -> None:
    """A service stop: exit 130, its trial re-queued, no MLflow run left RUNNING."""
    data = write_csv(tmp_path / "d.csv", n=400)
    cfg = small_config(tmp_path / "t.yaml", data, name="term", n_trials=4)
    raw = yaml.safe_load(cfg.read_text())
    raw["training"].update(epochs=80, patience=80, batch_size=16)  # mid-trial when stopped
    cfg.write_text(yaml.safe_dump(raw))
    proc = _start(tmp_path, "--config", str(cfg), command="worker")
    storage = f"sqlite:///{tmp_path / 'hpo_studies' / 'term.db'}"
    _wait_for_running_trial(storage, "term.mlp", proc.pid)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    trials = optuna.load_study(study_name="term.mlp", storage=storage).trials
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    assert [t for t in trials if t.state == TrialState.WAITING]
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("term").experiment_id])
    assert runs and all(r.info.status != "RUNNING" for r in runs)


# -- helpers --------------------------------------------------------------------------------
def _wait_for_running_trial(
    storage: str, study: str, pid: int | None, finished_before: int = 0, timeout: float = 240
) -> None:
    """Wait until ``pid`` (any worker if None) is mid-trial, after ``finished_before`` trials."""
    deadline = time.monotonic() + timeout
    store = None
    while time.monotonic() < deadline:
        time.sleep(0.3)
        if storage.startswith("sqlite:///"):
            rows = _sqlite_running(storage.removeprefix("sqlite:///"), study)
        else:
            store = store or open_storage(storage, 10, None, 0)
            try:
                rows = _running(optuna.load_study(study_name=study, storage=store).trials)
            except KeyError:  # not created yet
                continue
        if rows is None or rows[0] < finished_before:
            continue
        if any(n >= 2 and (pid is None or worker.get("pid") == pid) for worker, n in rows[1]):
            return
    raise AssertionError(f"no running trial of {pid} caught in {study}")


def _running(trials: list) -> tuple[int, list[tuple[dict, int]]]:
    done = sum(t.state == TrialState.COMPLETE for t in trials)
    running = [
        (t.user_attrs.get("worker", {}), len(t.intermediate_values))
        for t in trials
        if t.state == TrialState.RUNNING
    ]
    return done, running


def _sqlite_running(db: str, study: str) -> tuple[int, list[tuple[dict, int]]] | None:
    """Read-only with sqlite3: opening the storage with Optuna while the workers are still
    creating its tables would race them for the schema."""
    import json
    import sqlite3

    if not Path(db).exists():
        return None
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            done = conn.execute(
                "SELECT COUNT(*) FROM trials t JOIN studies s USING (study_id) "
                "WHERE s.study_name = ? AND t.state = 'COMPLETE'",
                (study,),
            ).fetchone()[0]
            rows = conn.execute(
                "SELECT a.value_json, COUNT(v.trial_intermediate_value_id) FROM trials t "
                "JOIN studies s USING (study_id) "
                "JOIN trial_user_attributes a ON a.trial_id = t.trial_id AND a.key = 'worker' "
                "LEFT JOIN trial_intermediate_values v ON v.trial_id = t.trial_id "
                "WHERE s.study_name = ? AND t.state = 'RUNNING' GROUP BY t.trial_id",
                (study,),
            ).fetchall()
    except sqlite3.OperationalError:
        return None
    return done, [(json.loads(worker), n) for worker, n in rows]


def _drop(storage: str, name: str) -> None:
    store = open_storage(storage, 10, None, 0)
    for study in (f"{name}.mlp", f"{name}:hpolab"):
        with contextlib.suppress(KeyError):
            optuna.delete_study(study_name=study, storage=store)


def _fresh_database(name: str) -> str:
    import sqlalchemy

    engine = sqlalchemy.create_engine(PG, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    engine.dispose()
    return PG.rsplit("/", 1)[0] + f"/{name}"


def _drop_database(url: str) -> None:
    import sqlalchemy

    name = url.rsplit("/", 1)[1]
    engine = sqlalchemy.create_engine(PG, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    engine.dispose()
