"""Resume a trial, not just a study: a stopped trial continues from its last checkpoint."""

from __future__ import annotations

import datetime
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from helpers import RUN_HPO, run_cli, write_csv
from mlflow.tracking import MlflowClient

from hpolab.config import DataSection, TrainingSection
from hpolab.data import load_dataset
from hpolab.models import build_model
from hpolab.training.fit import fit_model, training_params
from hpolab.training.resume import (
    ResumeCheckpoint,
    read_resume_point,
    settings_key,
)
from hpolab.training.saving import load_model

EPOCHS = 24


def _config(path: Path, data: Path, name: str, patience: int = EPOCHS, **study) -> Path:
    cfg = {
        "study": {
            "name": name,
            "metric": "val_loss",
            "n_trials": 1,
            "sampler": "random",
            "pruner": "median",
            "seed": 3,
            "plots": False,
            "heartbeat_interval": 1,
            "grace_period": 60,
            **study,
        },
        "data": {"source": str(data), "target": "label"},
        "training": {"epochs": EPOCHS, "batch_size": 16, "patience": patience},
        "models": {"mlp": {"search_space": {"hidden_layers": [[16, 8]]}}},
    }
    path.write_text(yaml.safe_dump(cfg))
    return path


def _state(root: Path, name: str, number: int = 0) -> dict:
    path = root / "hpo_results" / name / "trials" / "mlp" / f"trial_{number}" / "resume"
    try:
        return json.loads((path / "state.json").read_text())
    except (OSError, ValueError):
        return {}


def _stop_after_checkpoint(config: Path, root: Path, name: str, sig: int, epoch: int) -> int:
    """Run the study in a process and send ``sig`` once the trial saved epoch ``epoch``."""
    proc = subprocess.Popen(
        [sys.executable, str(RUN_HPO), "--config", str(config), "--root", str(root)],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    deadline = time.monotonic() + 240
    while _state(root, name).get("epoch", 0) < epoch:
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, "no checkpoint was written"
        time.sleep(0.05)
    proc.send_signal(sig)
    proc.wait(timeout=60)
    return proc.returncode


def _trials(root: Path, name: str) -> list[optuna.trial.FrozenTrial]:
    storage = f"sqlite:///{root / 'hpo_studies' / f'{name}.db'}"
    return optuna.load_study(study_name=f"{name}.mlp", storage=storage).trials


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory):
    """The data and the study's one trial, run without interruption in its own root."""
    folder = tmp_path_factory.mktemp("plain")
    data = write_csv(folder / "d.csv", n=240)
    run_cli("--config", str(_config(folder / "p.yaml", data, "same")), root=folder)
    plain = _trials(folder, "same")[0]
    assert plain.state == optuna.trial.TrialState.COMPLETE
    return data, plain


@pytest.mark.slow
@pytest.mark.xdist_group(name="trial_resume")  # one worker: the uninterrupted run once
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["kill", "ctrl-c"])
def test_a_stopped_trial_continues_from_its_checkpoint(
    tmp_path: Path, sig: int, uninterrupted
) -> None:
    data, plain = uninterrupted

    root = tmp_path / "stopped"
    root.mkdir()
    config = _config(tmp_path / "s.yaml", data, "same", trial_checkpoints=1)
    code = _stop_after_checkpoint(config, root, "same", sig, epoch=8)
    assert code == (-signal.SIGKILL if sig == signal.SIGKILL else 130)
    saved = _state(root, "same")["epoch"]
    restarted = datetime.datetime.now()
    resumed = run_cli("--config", str(config), root=root, check=True)
    assert "left running by a stopped process" in resumed.stdout or sig == signal.SIGINT
    assert f"continues trial 0 from its checkpoint after epoch {saved} of {EPOCHS}" in (
        resumed.stdout
    )

    trials = _trials(root, "same")
    first, retry = trials[0], trials[-1]
    assert first.state == optuna.trial.TrialState.FAIL
    assert retry.state == optuna.trial.TrialState.COMPLETE
    assert retry.system_attrs["failed_trial"] == 0
    assert retry.user_attrs["resumed_from_epoch"] == saved >= 8
    # Its process is known gone: the retry starts at once, not after the 60 s grace.
    wait = (retry.datetime_start - restarted).total_seconds()
    print(f"resume wait after {signal.Signals(sig).name}: {wait:.1f}s")
    assert wait < 15
    # The whole run, across the stop: as many epochs as without it, and the same result
    # within noise (the random generators restart at the resume).
    assert abs(retry.user_attrs["epochs_run"] - plain.user_attrs["epochs_run"]) <= 1
    assert retry.value == pytest.approx(plain.value, rel=0.15, abs=0.03)
    # The pruner saw every epoch, the earlier ones included.
    assert sorted(retry.intermediate_values) == list(range(1, EPOCHS + 1))
    # One MLflow run across both attempts, finished, with one curve point per epoch
    # after the resume point (the epochs between it and the stop are logged twice).
    client = MlflowClient(f"sqlite:///{root / 'mlruns' / 'mlflow.db'}")
    run_id = retry.user_attrs["mlflow_run_id"]
    assert run_id == first.user_attrs["mlflow_run_id"]
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["hpolab.state"] == "complete"
    assert "hpolab.error" not in run.data.tags
    assert run.data.tags["hpolab.trial_number"] == str(retry.number)
    steps = {m.step for m in client.get_metric_history(run_id, "val_loss")}
    assert steps == set(range(1, EPOCHS + 1))
    experiment = client.get_experiment_by_name("same")
    trial_runs = client.search_runs(
        [experiment.experiment_id], "tags.`hpolab.role` = 'trial'", max_results=10
    )
    assert len(trial_runs) == 1
    # A finished trial's checkpoint is removed.
    assert not (root / "hpo_results" / "same" / "trials").exists() or not list(
        (root / "hpo_results" / "same" / "trials").rglob("*.keras")
    )


@pytest.fixture(scope="module")
def tiny_data():
    return load_dataset(DataSection(source="builtin:breast_cancer"))


def _train_two_epochs(data, folder: Path, key: str, every: int | None = 1):
    hp = training_params({"epochs": 2}, TrainingSection(patience=5))
    model = build_model("mlp", {"hidden_layers": [8]}, data.input_shape, data.task, 2)
    saver = ResumeCheckpoint(folder, key, every=every)
    fit_model(model, data, hp, monitor="val_loss", direction="minimize", extra_callbacks=[saver])
    return saver


def test_a_resume_point_is_a_consistent_pair_for_its_settings_only(tiny_data, tmp_path):
    key = settings_key({"hidden_layers": [8]}, {"epochs": 2})
    saver = _train_two_epochs(tiny_data, tmp_path / "r", key)
    assert saver.save_seconds > 0
    point = read_resume_point(tmp_path / "r", key)
    assert point is not None and point.epoch == 2
    assert [p.name for p in (tmp_path / "r").glob("*.keras")] == ["epoch_0002.keras"]
    assert len(point.history["val_loss"]) == 2 and point.seconds > 0
    model = load_model(point.model_path)
    assert int(model.optimizer.iterations.numpy()) > 0  # optimizer state kept
    # Other parameters or settings never resume from it; a missing model neither.
    assert read_resume_point(tmp_path / "r", settings_key({"hidden_layers": [9]}, {})) is None
    point.model_path.unlink()
    assert read_resume_point(tmp_path / "r", key) is None
    (tmp_path / "r" / "state.json").write_text("{half")
    assert read_resume_point(tmp_path / "r", key) is None


def test_auto_checkpoints_cost_little(tiny_data, tmp_path, monkeypatch):
    monkeypatch.setattr(ResumeCheckpoint, "last_save_cost", None)  # a fresh process
    first = _train_two_epochs(tiny_data, tmp_path / "r", "k", every=None)
    # The first save measures the cost; with two short epochs no second one is due.
    assert read_resume_point(tmp_path / "r", "k").epoch == 1
    assert ResumeCheckpoint.last_save_cost == pytest.approx(first.save_seconds)
    # The next training of the process knows the cost: two short epochs save nothing.
    second = _train_two_epochs(tiny_data, tmp_path / "s", "k", every=None)
    assert second.save_seconds == 0 and read_resume_point(tmp_path / "s", "k") is None
    # A long enough training saves (here: a save made to look 1000 times cheaper).
    monkeypatch.setattr(ResumeCheckpoint, "last_save_cost", first.save_seconds / 1000)
    third = _train_two_epochs(tiny_data, tmp_path / "t", "k", every=None)
    assert third.save_seconds > 0 and read_resume_point(tmp_path / "t", "k") is not None


def test_a_damaged_checkpoint_starts_the_trial_afresh(tiny_data, tmp_path):
    from hpolab.search.objective import _resumable_model

    _train_two_epochs(tiny_data, tmp_path / "r", "k")
    point = read_resume_point(tmp_path / "r", "k")
    assert _resumable_model(point) is not None
    point.model_path.write_bytes(b"PK\x03\x04 not a model")
    assert _resumable_model(point) is None


@pytest.mark.parametrize(("patience", "epochs_run"), [(3, 4), (1, 2)])
def test_early_stopping_carries_its_count_across_a_resume(
    tiny_data, tmp_path, patience, epochs_run
):
    _train_two_epochs(tiny_data, tmp_path / "r", "k")
    point = read_resume_point(tmp_path / "r", "k")
    history = {k: list(v) for k, v in point.history.items()}
    history["val_loss"][0] = 0.0  # epoch 1 stays the best: nothing beats it
    hp = training_params({"epochs": 20}, TrainingSection(patience=patience))
    result = fit_model(
        load_model(point.model_path),
        tiny_data,
        hp,
        monitor="val_loss",
        direction="minimize",
        initial_epoch=2,
        compile=False,
        history_before=history,
    )
    # Patience counts from epoch 1, not from the resume; with patience 1 the stopped
    # training had already ended and nothing more is trained.
    assert result.epochs_run == epochs_run
    assert result.best_epoch == 1 and result.best_value == 0.0
    assert len(result.history["loss"]) == epochs_run
