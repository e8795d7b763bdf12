"""A process killed (SIGKILL) in the middle of a trial, then resumed."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import optuna
import pytest
import yaml
from helpers import run_cli, start_and_wait_for_running_trial
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.slow


def test_killed_trial_is_failed_requeued_and_rerun(tmp_path: Path, csv_file: Path) -> None:
    cfg_path = tmp_path / "kill.yaml"
    cfg = {
        "study": {
            "name": "killme",
            "n_trials": 2,
            "sampler": "random",
            "pruner": "none",
            "metric": "val_loss",
            "heartbeat_interval": 1,
            "grace_period": 2,
        },
        "data": {"source": str(csv_file), "target": "label"},
        "training": {"epochs": 40, "patience": 40, "batch_size": 4},
        "models": {
            "mlp": {
                "search_space": {
                    "hidden_layers": [[8], [16]],
                    "learning_rate": {"low": 1e-4, "high": 1e-3, "log": True},
                }
            }
        },
    }
    cfg_path.write_text(yaml.safe_dump(cfg))
    storage = f"sqlite:///{tmp_path / 'hpo_studies' / 'killme.db'}"
    proc, victim = start_and_wait_for_running_trial(cfg_path, tmp_path, "killme")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    study = optuna.load_study(study_name="killme.mlp", storage=storage)
    assert study.trials[victim.number].state == optuna.trial.TrialState.RUNNING

    # Training settings may change on resume; short epochs keep the rerun quick. The rerun
    # starts well within the grace period, while the killed trial's heartbeat still looks
    # fresh; its process ran on this host and is gone, so it is recovered at once instead
    # of after the grace period (60 s here).
    cfg["training"].update(epochs=3, patience=3, batch_size=32)
    cfg["study"]["grace_period"] = 60
    cfg_path.write_text(yaml.safe_dump(cfg))
    start = time.monotonic()
    resumed = run_cli("--config", str(cfg_path), root=tmp_path, check=True)
    assert time.monotonic() - start < 50, "the resume waited for the grace period"
    assert "checking whether their worker is alive" not in resumed.stdout
    assert "left running by a stopped process" in resumed.stdout

    trials = optuna.load_study(study_name="killme.mlp", storage=storage).trials
    states = [t.state for t in trials]
    assert optuna.trial.TrialState.RUNNING not in states
    assert trials[victim.number].state == optuna.trial.TrialState.FAIL
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == victim.number]
    assert len(retries) == 1, "the interrupted configuration is queued exactly once"
    assert retries[0].state == optuna.trial.TrialState.COMPLETE
    assert retries[0].params == victim.params
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 2, "the study completes its budget"
    assert (tmp_path / "models" / "hpo_derived" / "killme" / "final_model_mlp.keras").is_file()

    # MLflow mirrors it: the killed trial's run is failed, not left running.
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    run = client.get_run(victim.user_attrs["mlflow_run_id"])
    assert run.info.status == "FAILED"
    assert run.data.tags["hpolab.state"] == "failed"
