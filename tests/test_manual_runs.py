"""Manual runs with train_nn_model.py: run folder, report, resume after a kill, MLflow."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import REPO, run_in_process

from hpolab.cli.main import main as hpolab_main
from hpolab.cli.run import main as run_main
from hpolab.cli.train import main as train_main
from hpolab.search.space import tidy

pytestmark = pytest.mark.slow

TRAIN = REPO / "train_nn_model.py"
RUN_FILES = [
    "best_model.keras",
    "final_model_mlp.keras",
    "training_history.json",
    "model_info.json",
    "config.yaml",
    "console.log",
    "report.pdf",
    "summary.png",
    "training_curves.png",
    "test_results.png",
    "history_table.png",
]


def train(*args: str, root: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(TRAIN), *args, "--root", str(root)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=root,
    )


def ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def pdf_pages(path: Path) -> int:
    """Pages of a PDF, counted from its page objects (matplotlib writes one per page)."""
    data = path.read_bytes()
    return data.count(b"/Type /Page") - data.count(b"/Type /Pages")


def test_run_folder_report_mlflow_and_export(tmp_path: Path, csv_file: Path):
    args = (
        "--data",
        str(csv_file),
        "--target",
        "label",
        "--model-type",
        "mlp",
        "--run-name",
        "r1",
        "--set",
        "epochs=2",
        "--set",
        "hidden_layers=[8]",
        "--set",
        "learning_rate=0.01",
    )
    out = ok(train(*args, root=tmp_path)).stdout
    assert "epoch 2/2" in out and "report:" in out
    run_dir = tmp_path / "training" / "runs" / "r1"
    for name in RUN_FILES:
        assert (run_dir / name).is_file(), name
    assert 1 <= len(list((run_dir / "checkpoints").glob("epoch_*.keras"))) <= 3
    assert pdf_pages(run_dir / "report.pdf") == 4
    assert "epoch 2/2" in (run_dir / "console.log").read_text()
    info = json.loads((run_dir / "model_info.json").read_text())
    assert info["model_type"] == "mlp" and info["params"]["hidden_layers"] == [8]
    assert info["parameter_count"] == 4 * 8 + 8 + 8 * 2 + 2
    assert info["input_shape"] == [4] and info["classes"] == ["no", "yes"]
    assert len(info["data"]["fingerprint"]) == 16 and info["training_seconds"] > 0
    assert set(info["test_metrics"]) == {"accuracy", "f1_macro", "auc"}
    assert {"keras", "tensorflow", "hpolab", "python"} <= set(info["versions"])
    history = json.loads((run_dir / "training_history.json").read_text())
    assert history["epochs"] == [1, 2] and len(history["metrics"]["val_loss"]) == 2
    copied = tmp_path / "models" / "manual_runs" / "r1"
    assert (copied / "final_model_mlp.keras").is_file() and (copied / "model_info.json").is_file()

    # One MLflow run in the manual_runs experiment with per-epoch metrics and the report.
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("manual_runs")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_id == info["mlflow_run_id"] and run.info.status == "FINISHED"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "val_loss")] == [1, 2]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"report.pdf", "final_model_mlp.keras", "model_info.json"} <= artifacts

    # The same name again is refused, nothing touched; --overwrite replaces the run.
    before = (run_dir / "model_info.json").read_bytes()
    root = ("--root", str(tmp_path))
    code, _, err = run_in_process(train_main, *args, *root)
    assert code == 2 and "already exists" in err and "Traceback" not in err
    assert (run_dir / "model_info.json").read_bytes() == before
    code, _, err = run_in_process(train_main, *args, "--overwrite", "--no-mlflow", *root)
    assert code == 0, err
    assert json.loads((run_dir / "model_info.json").read_text())["mlflow_run_id"] is None

    code, out, err = run_in_process(
        hpolab_main,
        "export",
        "--run",
        "r1",
        "--format",
        "h5,savedmodel",
        "--dest",
        str(tmp_path / "deploy"),
        *root,
    )
    assert code == 0, err
    assert out.count("ok ") == 2
    assert (tmp_path / "deploy" / "final_model_mlp.h5").is_file()
    assert (tmp_path / "deploy" / "final_model_mlp_savedmodel" / "saved_model.pb").is_file()
    # The run's metadata (scaling, labels) goes with the exports: they take scaled inputs.
    info = json.loads((tmp_path / "deploy" / "final_model_mlp.json").read_text())
    assert info["preprocessing"]["feature_scaler"]["mean"]
    note = [line for line in out.splitlines() if line.startswith("inputs ")]
    assert note and "standardized" in note[0] and "final_model_mlp.json" in note[0], out


def test_resume_after_kill_continues_from_the_last_checkpoint(tmp_path: Path):
    epochs = 8
    config = tmp_path / "small.yaml"
    config.write_text(
        "data: {source: 'builtin:leak', options: {n_samples: 400, timesteps: 64}}\n"
        "models: {cnn1d: {}}\n"
    )
    args = (
        "--config",
        str(config),
        "--run-name",
        "long",
        "--set",
        f"epochs={epochs}",
        "--set",
        f"patience={epochs}",
        "--set",
        "filters=8",
    )
    proc = subprocess.Popen(
        [sys.executable, str(TRAIN), *args, "--root", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    checkpoints = tmp_path / "training" / "runs" / "long" / "checkpoints"
    deadline = time.time() + 300
    while time.time() < deadline and not (checkpoints / "epoch_0002.keras").exists():
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = sorted(p.name for p in checkpoints.glob("epoch_*.keras"))
    last = int(done[-1][6:10])
    assert 2 <= last < epochs, done
    state = json.loads((checkpoints.parent / "run_state.json").read_text())
    assert state["status"] == "running"

    out = ok(train("--run-name", "long", "--resume", root=tmp_path)).stdout
    assert f"resuming from epoch {last} of {epochs}" in out
    assert f"epoch {last + 1}/{epochs}" in out and f"epoch 1/{epochs}" not in out
    run_dir = checkpoints.parent
    history = json.loads((run_dir / "training_history.json").read_text())
    assert history["epochs"] == list(range(1, epochs + 1))
    info = json.loads((run_dir / "model_info.json").read_text())
    assert info["resumed_from_epoch"] == last and info["epochs_run"] == epochs
    # The optimizer carried on: its step counter covers every epoch, not only the resumed.
    import keras

    from hpolab.training.saving import load_model

    final_checkpoint = load_model(checkpoints / f"epoch_{epochs:04d}.keras")
    steps = math.ceil(240 / 32)  # 400 windows, 60 % for training
    assert int(final_checkpoint.optimizer.iterations.numpy()) == epochs * steps
    # The final model has the best weights of the whole run, before or after the kill.
    best = load_model(run_dir / "best_model.keras")
    final = load_model(run_dir / "final_model_cnn1d.keras")
    for kept, shipped in zip(best.get_weights(), final.get_weights(), strict=True):
        np.testing.assert_array_equal(kept, shipped)
    val_loss = history["metrics"]["val_loss"]
    assert info["metric"] == "val_loss" and info["best_epoch"] == 1 + val_loss.index(min(val_loss))
    keras.backend.clear_session()
    # The same MLflow run carries on.
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    assert info["mlflow_run_id"] == state["mlflow_run_id"]
    steps_logged = {m.step for m in client.get_metric_history(info["mlflow_run_id"], "loss")}
    assert steps_logged == set(range(1, epochs + 1))
    finished = train("--run-name", "long", "--resume", root=tmp_path)
    assert finished.returncode == 2 and "already complete" in finished.stderr


def test_from_study_and_bad_input(tmp_path: Path, csv_file: Path):
    root = ("--root", str(tmp_path))
    code, _, err = run_in_process(
        run_main,
        "--study-name",
        "s",
        "--data",
        str(csv_file),
        "--target",
        "label",
        "--models",
        "mlp",
        "--n-trials",
        "2",
        "--epochs",
        "1",
        "--no-mlflow",
        "--no-plots",
        "-q",
        *root,
    )
    assert code == 0, err
    code, _, err = run_in_process(
        train_main,
        "--from-study",
        "s",
        "--run-name",
        "best",
        "--set",
        "epochs=1",
        "--no-mlflow",
        "-q",
        *root,
    )
    assert code == 0, err
    info = json.loads((tmp_path / "training" / "runs" / "best" / "model_info.json").read_text())
    import optuna

    study = optuna.load_study(
        study_name="s.mlp", storage=f"sqlite:///{tmp_path / 'hpo_studies' / 's.db'}"
    )
    assert info["params_source"] == f"study s, mlp trial {study.best_trial.number}"
    for name, value in study.best_trial.params.items():
        # Optuna keeps list choices as JSON text; the run gets the list back.
        expected = json.loads(value) if isinstance(value, str) and value[:1] == "[" else value
        assert info["params"][name] == tidy(expected), name  # 12 significant digits
    cases = {
        "did you mean 'hidden_layers'": (
            "--data",
            str(csv_file),
            "--target",
            "label",
            "--model-type",
            "mlp",
            "--set",
            "hiden_layers=[8]",
        ),
        "is a scikit-learn baseline": (
            "--data",
            str(csv_file),
            "--target",
            "label",
            "--model-type",
            "random_forest",
        ),
        "no run 'ghost'": ("--run-name", "ghost", "--resume"),
        "--run-name": (
            "--data",
            str(csv_file),
            "--target",
            "label",
            "--model-type",
            "mlp",
            "--run-name",
            "../escape",
        ),
        "study: no study 'nope'": ("--from-study", "nope"),
        "is not key=value": ("--model-type", "mlp", "--set", "epochs"),
    }
    for expected, args in cases.items():
        code, _, err = run_in_process(train_main, *args, *root)
        assert code == 2, (expected, err)
        assert expected in err and "Traceback" not in err, err
    assert sorted(p.name for p in (tmp_path / "training" / "runs").iterdir()) == ["best"]


def test_same_seed_same_run_and_seed_is_kept_for_resume(tmp_path: Path, csv_file: Path):
    base = ("--data", str(csv_file), "--target", "label", "--model-type", "mlp")
    common = ("--set", "epochs=2", "--no-mlflow", "-q", "--root", str(tmp_path))

    def losses(run: str, *extra: str) -> list[float]:
        code, _, err = run_in_process(train_main, *base, "--run-name", run, *extra, *common)
        assert code == 0, err
        history = tmp_path / "training" / "runs" / run / "training_history.json"
        return json.loads(history.read_text())["metrics"]["loss"]

    first = losses("a")
    assert losses("b") == first, "the config's default seed makes runs repeatable"
    assert losses("c", "--seed", "7") != first
    saved = (tmp_path / "training" / "runs" / "c" / "config.yaml").read_text()
    assert "seed: 7" in saved
    code, _, err = run_in_process(
        train_main, "--run-name", "c", "--resume", "--seed", "8", "--root", str(tmp_path)
    )
    assert code == 2 and "continues with its own configuration" in err


def test_regression_run_follows_the_task_and_bad_data_leaves_the_run_alone(tmp_path: Path):
    base = ("--data", "builtin:diabetes", "--model-type", "mlp", "--run-name", "reg")
    common = ("--set", "epochs=3", "--set", "hidden_layers=[8]", "--no-mlflow", "-q")
    root = ("--root", str(tmp_path))
    # No --metric: the default study's classification metric gives way to val_rmse.
    code, _, err = run_in_process(train_main, *base, *common, *root)
    assert code == 0, err
    run_dir = tmp_path / "training" / "runs" / "reg"
    info = json.loads((run_dir / "model_info.json").read_text())
    assert info["metric"] == "val_rmse" and info["direction"] == "minimize"
    assert set(info["test_metrics"]) == {"rmse", "mae", "r2"}
    assert len(info["test_outputs"]["y_pred"]) == len(info["test_outputs"]["y_true"]) > 0
    assert pdf_pages(run_dir / "report.pdf") == 4 and (run_dir / "test_results.png").is_file()
    assert "val_rmse" in (run_dir / "config.yaml").read_text()

    # A metric that does not fit the data is refused before the run is replaced.
    before = (run_dir / "model_info.json").read_bytes()
    args = (*base, *common, "--metric", "val_accuracy", "--overwrite", *root)
    code, _, err = run_in_process(train_main, *args)
    assert code == 2 and "study.metric: 'val_accuracy' does not apply to regression" in err
    assert (run_dir / "model_info.json").read_bytes() == before
    # A new name with bad data leaves no folder that would block the name later.
    args = ("--data", "builtin:diabetes", "--model-type", "mlp", "--run-name", "bad")
    code, _, err = run_in_process(train_main, *args, "--metric", "val_accuracy", *root)
    assert code == 2 and not (tmp_path / "training" / "runs" / "bad").exists()

    code, _, err = run_in_process(train_main, "--run-name", "reg", "--resume", *root)
    assert code == 2 and "already complete" in err


def test_a_run_without_a_name_gets_a_timestamped_one(tmp_path: Path):
    args = ("--data", "builtin:diabetes", "--model-type", "mlp", "--set", "epochs=1")
    code, out, err = run_in_process(train_main, *args, "--no-mlflow", "--root", str(tmp_path))
    assert code == 0, err
    (run_dir,) = (tmp_path / "training" / "runs").iterdir()
    assert re.fullmatch(r"mlp_\d{8}_\d{6}", run_dir.name), run_dir.name
    assert f"run folder: {run_dir}" in out


def test_an_explicit_direction_is_kept_for_the_resume(tmp_path: Path) -> None:
    """Early stopping and best_model.keras follow study.direction, before and after a resume."""
    from hpolab.layout import Layout
    from hpolab.manual import resolve_spec, saved_spec, write_config

    config = tmp_path / "c.yaml"
    config.write_text(
        "study: {metric: val_loss, direction: maximize}\n"
        "data: {source: 'builtin:breast_cancer'}\n"
        "models: {mlp: {}}\n"
    )
    spec = resolve_spec(config=config, layout=Layout.from_root(tmp_path))
    assert spec.cfg.study.resolved_direction == "maximize"
    folder = Layout.from_root(tmp_path).training_run("r")
    folder.path.mkdir(parents=True)
    write_config(folder, spec)
    assert saved_spec(folder).cfg.study.resolved_direction == "maximize"
