"""scikit-learn baselines inside studies, cross-validation as the objective."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest
import yaml
from helpers import run_cli, run_in_process
from sklearn.metrics import log_loss

import hpolab
from hpolab.cli.main import main as hpolab_main
from hpolab.cli.run import main as run_main
from hpolab.config import DataSection, StudyConfig, TrainingSection
from hpolab.data import load_dataset
from hpolab.models import build_model
from hpolab.search.objective import Objective
from hpolab.search.space import SearchSpace
from hpolab.training.fit import fit_model, training_params


@pytest.fixture(scope="module")
def cancer():
    return load_dataset(DataSection(source="builtin:breast_cancer"))


@pytest.mark.parametrize("model_type", ["random_forest", "svm", "gradient_boosting"])
def test_baseline_is_fit_and_scored_like_a_network(cancer, model_type: str):
    model = build_model(
        model_type,
        {"n_estimators": 50, "max_iter": 50},
        cancer.input_shape,
        cancer.task,
        cancer.n_outputs,
    )
    hp = training_params({}, TrainingSection())
    seen: list[tuple[int, dict[str, float]]] = []
    result = fit_model(
        model,
        cancer,
        hp,
        monitor="val_accuracy",
        direction="maximize",
        hooks=[lambda epoch, logs: seen.append((epoch, logs))],
    )
    assert result.epochs_run == 1 and result.best_epoch == 1
    assert result.best_value > 0.85
    assert seen and seen[0][0] == 1 and {"val_loss", "val_auc", "loss"} <= set(seen[0][1])
    expected = log_loss(cancer.y_val, model.predict_proba(cancer.X_val), labels=[0, 1])
    assert result.best_metrics["val_loss"] == pytest.approx(expected, rel=1e-6)


def test_regression_baseline_reports_metrics_in_target_units():
    data = load_dataset(DataSection(source="builtin:diabetes"))
    model = build_model("svm", {"C": 10.0}, data.input_shape, "regression", 1)
    result = fit_model(
        model,
        data,
        training_params({}, TrainingSection()),
        monitor="val_rmse",
        direction="minimize",
    )
    # The target spans about 25..346; an RMSE in standardized units would be near 1.
    assert 40 < result.best_value < 80


def _write(path: Path, cfg: dict) -> Path:
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.slow
def test_baseline_and_autoencoder_study_end_to_end(tmp_path: Path, csv_file: Path):
    args = (
        "--study-name",
        "base",
        "--data",
        str(csv_file),
        "--target",
        "label",
        "--models",
        "random_forest,autoencoder",
        "--epochs",
        "2",
        "--no-plots",
        "-q",
    )
    run_cli(*args, "--n-trials", "2", root=tmp_path, check=True)
    storage = f"sqlite:///{tmp_path / 'hpo_studies' / 'base.db'}"
    for mt in ("random_forest", "autoencoder"):
        study = optuna.load_study(study_name=f"base.{mt}", storage=storage)
        assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"], mt
    folder = tmp_path / "models" / "hpo_derived" / "base"
    assert (folder / "final_model_random_forest.skops").is_file()
    assert (folder / "final_model_autoencoder.keras").is_file()
    sidecar = json.loads((folder / "final_model_random_forest.json").read_text())
    assert sidecar["model_file"] == "final_model_random_forest.skops"
    assert sidecar["registered_model"]["version"] is not None  # logged to MLflow too

    # (Resuming a study with a baseline is covered by the spectrogram study test.)
    # Both final models load through the Python API and predict raw CSV rows.
    rows = np.loadtxt(csv_file, delimiter=",", skiprows=1, usecols=range(4), dtype=np.float32)
    labels = np.loadtxt(csv_file, delimiter=",", skiprows=1, usecols=4, dtype=str)
    np.save(tmp_path / "rows.npy", rows)
    code = (
        "import sys, numpy as np\n"
        "from hpolab.api import load_final_model\n"
        "X = np.load(sys.argv[1])\n"
        "for mt in ('random_forest', 'autoencoder'):\n"
        "    m = load_final_model('base', mt, root=sys.argv[2])\n"
        "    print(mt, type(m.model).__name__, ','.join(m.predict(X)))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "rows.npy"), str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout.splitlines()
    predicted = {line.split()[0]: (line.split()[1], line.split()[2].split(",")) for line in out}
    assert predicted["random_forest"][0] == "RandomForestClassifier"
    for mt, (_, labels_out) in predicted.items():
        assert np.mean(np.array(labels_out) == labels) > 0.8, mt

    # A baseline has no Keras formats to export: one clear error, nothing written.
    code, _, err = run_in_process(
        hpolab_main,
        "fetch",
        "base",
        "--model-type",
        "random_forest",
        "--format",
        "h5",
        "--dest",
        str(tmp_path / "out"),
        "--root",
        str(tmp_path),
    )
    assert code == 2
    assert "scikit-learn baseline" in err and "Traceback" not in err
    assert not list((tmp_path / "out").glob("*.h5"))


@pytest.mark.slow
def test_cross_validated_study_scores_the_mean_of_folds(tmp_path: Path, csv_file: Path):
    cfg = _write(
        tmp_path / "cv.yaml",
        {
            "study": {
                "name": "cv",
                "metric": "val_accuracy",
                "n_trials": 2,
                "pruner": "median",
                "plots": False,
            },
            "data": {
                "source": str(csv_file),
                "target": "label",
                "cv": {"method": "stratified_kfold", "n_splits": 3},
            },
            "training": {"epochs": 2, "patience": 2},
            "models": {
                "mlp": {
                    "search_space": {
                        "hidden_layers": [[8]],
                        "learning_rate": {"low": 1e-3, "high": 1e-2},
                    }
                }
            },
        },
    )
    # The Python API runs the same study code as the command line.
    hpolab.run_study(str(cfg), root=tmp_path, quiet=True, track=False)
    study = optuna.load_study(
        study_name="cv.mlp", storage=f"sqlite:///{tmp_path / 'hpo_studies' / 'cv.db'}"
    )
    for trial in study.trials:
        scores = trial.user_attrs["cv_scores"]
        assert len(scores) == 3
        assert trial.value == pytest.approx(np.mean(scores), abs=1e-5)
        assert trial.user_attrs["cv_std"] == pytest.approx(np.std(scores), abs=1e-5)
    assert (tmp_path / "models" / "hpo_derived" / "cv" / "final_model_mlp.keras").is_file()
    bad = _write(tmp_path / "bad.yaml", {"data": {"cv": {"method": "bootstrap"}}})
    code, _, err = run_in_process(run_main, "--config", str(bad), "--root", str(tmp_path))
    assert code == 2 and "data.cv.method" in err


def test_cross_validation_prunes_between_folds(csv_file: Path):
    """A trial whose running mean falls below the threshold stops after its first fold."""
    cfg = StudyConfig.model_validate(
        {
            "study": {"metric": "val_accuracy"},
            "data": {
                "source": str(csv_file),
                "target": "label",
                "cv": {"method": "kfold", "n_splits": 4},
            },
            "training": {"epochs": 1},
            "models": {"mlp": {"search_space": {"hidden_layers": [[4]]}}},
        }
    )
    data = load_dataset(cfg.data)
    space = SearchSpace(cfg.models["mlp"].params())
    objective = Objective(cfg, "mlp", space, data, tracker=None, parent_run_id=None)
    # Accuracy can never exceed 1.0: the threshold pruner stops every trial at step 1.
    study = optuna.create_study(
        direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=1.01)
    )
    study.optimize(objective, n_trials=1)
    trial = study.trials[0]
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert len(trial.user_attrs["cv_scores"]) == 1
    assert trial.intermediate_values.keys() == {1}
