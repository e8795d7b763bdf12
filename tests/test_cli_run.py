"""End-to-end tests of run_hpo.py: launch, resume, grid, MLflow mirror, final model."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import numpy as np
import optuna
import pytest
from helpers import run_cli, small_config
from mlflow.tracking import MlflowClient

import hpolab
from hpolab.config import load_config
from hpolab.data import load_dataset
from hpolab.training.metrics import compute_metrics

pytestmark = pytest.mark.slow


def _trials(root: Path, study: str, model_type: str = "mlp") -> list[optuna.trial.FrozenTrial]:
    storage = f"sqlite:///{root / 'hpo_studies' / f'{study}.db'}"
    return optuna.load_study(study_name=f"{study}.{model_type}", storage=storage).trials


def _runs(root: Path, study: str) -> dict[str, list]:
    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlruns' / 'mlflow.db'}")
    exp = client.get_experiment_by_name(study)
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    by_role: dict[str, list] = {}
    for run in runs:
        by_role.setdefault(run.data.tags.get("hpolab.role"), []).append(run)
    return by_role


def test_tpe_study_on_csv_resumes_and_ships_a_model(tmp_path: Path, csv_file: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    base = [
        "--data",
        str(csv_file),
        "--target",
        "label",
        "--study-name",
        "csvstudy",
        "--sampler",
        "tpe",
        "--epochs",
        "3",
        "--pruner",
        "none",
        "--models",
        "mlp",
        "--metric",
        "val_loss",
        "--no-plots",  # plots have their own tests (test_cli_study_ops)
    ]
    # The first run goes through the real script in its own process, as a user runs it.
    first = run_cli(*base, "--n-trials", "4", root=root, check=True, process=True)
    assert "csvstudy" in first.stdout and "mlflow ui --backend-store-uri" in first.stdout
    assert len(_trials(root, "csvstudy")) == 4

    second = run_cli(*base, "--n-trials", "6", root=root, check=True)
    assert "new trials this run: 2" in second.stdout
    trials = _trials(root, "csvstudy")
    assert len(trials) == 6
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)

    runs = _runs(root, "csvstudy")
    assert len(runs["study"]) == 1, "a resumed study keeps its parent run"
    parent_id = runs["study"][0].info.run_id
    children = runs["trial"]
    assert len(children) == 6
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parent_id}
    # Trial and run point at each other.
    by_number = {int(r.data.tags["hpolab.trial_number"]): r for r in children}
    for t in trials:
        run = by_number[t.number]
        assert t.user_attrs["mlflow_run_id"] == run.info.run_id
        assert run.data.tags["hpolab.state"] == "complete"
        assert run.info.status == "FINISHED"
        assert run.data.metrics["objective_value"] == pytest.approx(t.value)
    # Per-epoch metrics are logged with step = epoch.
    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlruns' / 'mlflow.db'}")
    history = client.get_metric_history(children[0].info.run_id, "val_loss")
    assert [m.step for m in history] == list(range(1, len(history) + 1))

    # Results files.
    results = json.loads((root / "hpo_results" / "csvstudy" / "hpo_results_mlp.json").read_text())
    assert results["n_trials"] == 6 and len(results["trials"]) == 6
    assert results["best_value"] == pytest.approx(min(t.value for t in trials))
    assert "values" in results["param_importance"]
    assert isinstance(results["best_params"]["hidden_layers"], list)
    combined = json.loads(
        (root / "hpo_results" / "csvstudy" / "hpo_combined_results.json").read_text()
    )
    assert combined["best_model_type"] == "mlp"

    # The final model loads with safe_mode and reproduces the reported test metric.
    final = hpolab.load_final_model("csvstudy", "mlp", root=root)
    meta = final.metadata
    assert meta["best_trial"] in {t.number for t in trials}
    assert meta["preprocessing"]["classes"] == ["no", "yes"]
    assert meta["mlflow_run_id"] in {r.info.run_id for r in runs["final_model"]}
    cfg = load_config(None, data=str(csv_file), target="label")
    data = load_dataset(cfg.data)
    raw = final.model.predict(data.X_test, verbose=0)
    metrics = compute_metrics("classification", data.y_test, raw)
    assert metrics["accuracy"] == pytest.approx(meta["test_metrics"]["accuracy"], abs=1e-6)
    # predict() takes raw features and returns the original labels.
    raw_rows = np.loadtxt(csv_file, delimiter=",", skiprows=1, usecols=range(4), dtype=np.float32)
    labels = final.predict(raw_rows[:5])
    assert set(labels) <= {"no", "yes"}
    # Registered in the MLflow model registry as <study>-<model type>, alias champion.
    # (a resume that finds a better trial adds a new version; the latest is the shipped one)
    versions = client.search_model_versions("name = 'csvstudy-mlp'")
    latest = max(versions, key=lambda v: int(v.version))
    assert latest.run_id == meta["mlflow_run_id"]
    assert meta["registered_model"] == {
        "name": "csvstudy-mlp",
        "version": str(latest.version),
        "alias": "champion",
    }
    champion = client.get_model_version_by_alias("csvstudy-mlp", "champion")
    assert champion.version == latest.version


def test_rerun_of_a_finished_study_adds_nothing_and_keeps_the_final_model(
    tmp_path: Path, csv_file: Path
) -> None:
    root = tmp_path
    cfg = small_config(tmp_path / "s.yaml", csv_file, name="again", n_trials=2)
    run_cli("--config", str(cfg), root=root, check=True)
    model = root / "models" / "hpo_derived" / "again" / "final_model_mlp.keras"
    stamp = model.stat().st_mtime_ns
    second = run_cli("--config", str(cfg), root=root, check=True)
    assert "new trials this run: 0" in second.stdout
    assert "up to date" in second.stdout
    assert model.stat().st_mtime_ns == stamp
    assert len(_trials(root, "again")) == 2


def test_grid_runs_every_point_once_and_resume_runs_only_missing(
    tmp_path: Path, csv_file: Path
) -> None:
    import yaml

    cfg_path = tmp_path / "grid.yaml"
    cfg = {
        "study": {"name": "grid", "sampler": "grid", "pruner": "none", "n_trials": 4},
        "data": {"source": str(csv_file), "target": "label"},
        "training": {"epochs": 2},
        "models": {
            "mlp": {
                "param_grid": {
                    "hidden_layers": [[4], [8, 4]],
                    "learning_rate": [0.001, 0.003, 0.01],
                }
            }
        },
    }
    cfg_path.write_text(yaml.safe_dump(cfg))
    run_cli("--config", str(cfg_path), root=tmp_path, check=True)
    assert len(_trials(tmp_path, "grid")) == 4
    # Resume with a large budget: only the 2 missing points run, then the grid stops.
    run_cli("--config", str(cfg_path), "--n-trials", "50", root=tmp_path, check=True)
    trials = _trials(tmp_path, "grid")
    assert len(trials) == 6
    points = {
        (json.dumps(json.loads(t.params["hidden_layers"])), t.params["learning_rate"])
        for t in trials
    }
    assert len(points) == 6
    run_cli("--config", str(cfg_path), "--n-trials", "50", root=tmp_path, check=True)
    assert len(_trials(tmp_path, "grid")) == 6


def test_pruned_trials_are_recorded_as_pruned_everywhere(tmp_path: Path, csv_file: Path) -> None:
    import yaml

    cfg_path = tmp_path / "prune.yaml"
    cfg = {
        "study": {
            "name": "prune",
            "sampler": "random",
            "pruner": "median",
            "n_trials": 10,
            "seed": 3,
            "metric": "val_loss",
            "plots": False,
        },
        "data": {"source": str(csv_file), "target": "label"},
        "training": {"epochs": 6, "patience": 6},
        "models": {
            "mlp": {
                "search_space": {
                    "hidden_layers": [[4]],
                    "learning_rate": {"low": 1e-5, "high": 1e-1, "log": True},
                }
            }
        },
    }
    cfg_path.write_text(yaml.safe_dump(cfg))
    run_cli("--config", str(cfg_path), root=tmp_path, check=True)
    trials = _trials(tmp_path, "prune")
    pruned = [t for t in trials if t.state == optuna.trial.TrialState.PRUNED]
    assert pruned, "a 1e-5..1e-1 learning-rate range prunes some trials"
    runs = {r.info.run_id: r for r in _runs(tmp_path, "prune")["trial"]}
    for t in pruned:
        run = runs[t.user_attrs["mlflow_run_id"]]
        assert run.data.tags["hpolab.state"] == "pruned"
        assert run.info.status == "FINISHED"  # ended early on purpose, not failed
    results = json.loads((tmp_path / "hpo_results" / "prune" / "hpo_results_mlp.json").read_text())
    assert results["states"]["pruned"] == len(pruned)


def test_python_api_regression_study(tmp_path: Path) -> None:
    config = {
        "study": {
            "name": "reg",
            "metric": "val_rmse",
            "n_trials": 2,
            "sampler": "random",
            "pruner": "none",
        },
        "data": {"source": "builtin:diabetes"},
        "training": {"epochs": 3, "batch_size": 32},
        "models": {
            "mlp": {
                "search_space": {
                    "hidden_layers": [[16]],
                    "learning_rate": {"low": 1e-3, "high": 1e-2},
                }
            }
        },
    }
    result = hpolab.run_study(config, root=tmp_path, quiet=True, track=False)
    assert result.direction == "minimize"
    assert result.models["mlp"].best_value is not None
    assert set(result.models["mlp"].test_metrics) == {"rmse", "mae", "r2"}
    final = hpolab.load_final_model("reg", root=tmp_path)
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    pred = final.predict(X[:20].astype(np.float32))
    # Predictions come back in the target's units (diabetes progression ~25..350).
    assert pred.shape == (20,) and 0 < float(np.mean(pred)) < 400


@pytest.mark.postgres
def test_postgres_storage_resume(tmp_path: Path, csv_file: Path) -> None:
    import uuid

    url = "postgresql://postgres@127.0.0.1:5432/test"
    name = f"pg_{uuid.uuid4().hex[:8]}"
    cfg = small_config(tmp_path / "pg.yaml", csv_file, name=name, n_trials=2)
    try:
        run_cli("--config", str(cfg), "--storage", url, root=tmp_path, check=True)
        run_cli(
            "--config", str(cfg), "--storage", url, "--n-trials", "3", root=tmp_path, check=True
        )
        study = optuna.load_study(study_name=f"{name}.mlp", storage=url)
        assert len(study.trials) == 3
        assert not (tmp_path / "hpo_studies" / f"{name}.db").exists()
    finally:
        with contextlib.suppress(KeyError):
            optuna.delete_study(study_name=f"{name}.mlp", storage=url)
