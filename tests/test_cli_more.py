"""More end-to-end paths: reset, Ctrl-C, every sampler and pruner, shared PostgreSQL workers."""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import optuna
import pytest
import yaml
from helpers import RUN_HPO, run_cli, small_config, start_and_wait_for_running_trial
from mlflow.tracking import MlflowClient

import hpolab

pytestmark = pytest.mark.slow
TS = optuna.trial.TrialState


def _study(root: Path, name: str) -> optuna.Study:
    return optuna.load_study(
        study_name=f"{name}.mlp", storage=f"sqlite:///{root / 'hpo_studies' / f'{name}.db'}"
    )


def test_reset_starts_over_and_says_what_it_removes(tmp_path: Path, csv_file: Path) -> None:
    cfg = small_config(tmp_path / "r.yaml", csv_file, name="resetme", n_trials=2)
    run_cli("--config", str(cfg), root=tmp_path, check=True)
    old_ids = {t.user_attrs["mlflow_run_id"] for t in _study(tmp_path, "resetme").trials}

    out = run_cli("--config", str(cfg), "--reset", root=tmp_path, check=True).stdout
    assert "--reset removed" in out and "Optuna study resetme.mlp" in out
    assert "MLflow runs of experiment resetme" in out and "registered models of resetme" in out
    trials = _study(tmp_path, "resetme").trials
    assert [t.number for t in trials] == [0, 1]
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    exp = client.get_experiment_by_name("resetme")
    active = {r.info.run_id for r in client.search_runs([exp.experiment_id])}
    assert not old_ids & active, "runs of the old study are deleted"
    assert {t.user_attrs["mlflow_run_id"] for t in trials} <= active


def test_ctrl_c_keeps_finished_trials_and_requeues_the_interrupted_one(
    tmp_path: Path, csv_file: Path
) -> None:
    cfg_path = tmp_path / "int.yaml"
    cfg = yaml.safe_load(small_config(tmp_path / "base.yaml", csv_file, name="intr").read_text())
    cfg["study"]["n_trials"] = 2
    cfg["training"].update(epochs=60, patience=60, batch_size=4)
    cfg_path.write_text(yaml.safe_dump(cfg))
    proc, victim = start_and_wait_for_running_trial(cfg_path, tmp_path, "intr")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "run the same command to resume" in err and "Traceback" not in err

    trials = _study(tmp_path, "intr").trials
    assert trials[victim.number].state == TS.FAIL
    waiting = [t for t in trials if t.state == TS.WAITING]
    assert len(waiting) == 1 and waiting[0].params == victim.params

    cfg["training"].update(epochs=3, patience=3)  # training settings may change on resume
    cfg_path.write_text(yaml.safe_dump(cfg))
    run_cli("--config", str(cfg_path), root=tmp_path, check=True)
    trials = _study(tmp_path, "intr").trials
    retry = [t for t in trials if t.system_attrs.get("failed_trial") == victim.number]
    assert len(retry) == 1 and retry[0].state == TS.COMPLETE
    assert len([t for t in trials if t.state == TS.COMPLETE]) == 2


@pytest.mark.parametrize(
    ("sampler", "pruner"),
    [("random", "hyperband"), ("gp", "median"), ("cmaes", "none"), ("tpe", "hyperband")],
)
def test_every_sampler_and_pruner_runs_a_study(
    sampler: str, pruner: str, tmp_path: Path, csv_file: Path
) -> None:
    cfg = small_config(tmp_path / "c.yaml", csv_file, name=f"s_{sampler}", n_trials=3)
    result = hpolab.run_study(
        cfg, root=tmp_path, quiet=True, track=False, sampler=sampler, pruner=pruner
    )
    study = _study(tmp_path, f"s_{sampler}")
    assert len(study.trials) == 3
    assert all(t.state in (TS.COMPLETE, TS.PRUNED) for t in study.trials)
    assert result.models["mlp"].final_model_path.is_file()


def test_console_script_is_installed_and_runs() -> None:
    scripts = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="console_scripts")}
    assert scripts.get("hpolab") == "hpolab.cli.main:main"
    proc = subprocess.run(
        [sys.executable, "-m", "hpolab.cli.main", "run", "--help"], capture_output=True, text=True
    )
    assert proc.returncode == 0 and "--n-trials" in proc.stdout and "--reset" in proc.stdout


@pytest.mark.postgres
def test_two_workers_share_a_postgres_study(tmp_path: Path, csv_file: Path) -> None:
    url = "postgresql://postgres@127.0.0.1:5432/test"
    name = f"pgw_{uuid.uuid4().hex[:8]}"
    cfg = small_config(tmp_path / "w.yaml", csv_file, name=name, n_trials=6)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, str(RUN_HPO), "--config", str(cfg), "--storage", url, "-q"]
    workers = [
        subprocess.Popen(
            cmd + ["--root", str(tmp_path / f"w{i}")],
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for i in range(2)
    ]
    try:
        for w in workers:
            _, err = w.communicate(timeout=600)
            assert w.returncode == 0, err
        trials = optuna.load_study(study_name=f"{name}.mlp", storage=url).trials
        # The shared budget holds; a trial already running elsewhere may finish past it.
        assert 6 <= len(trials) <= 7
        assert all(t.state == TS.COMPLETE for t in trials)
    finally:
        with contextlib.suppress(KeyError):
            optuna.delete_study(study_name=f"{name}.mlp", storage=url)
