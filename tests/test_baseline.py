"""A final model is compared with a trivial one (majority class / mean) on the test split,
and a study says so when its model is no better: summary, results, ``hpolab best``, the
parent run's description and the report. The default study's models beat it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import completed_in_process, run_cli

from hpolab.config import DataSection
from hpolab.data import load_dataset
from hpolab.reporting.report import ModelSection, analysis
from hpolab.reporting.summary import baseline_warning
from hpolab.training.evaluation import baseline_comparison


@pytest.fixture(scope="module")
def digits():
    return load_dataset(DataSection(source="builtin:digits"))


def test_classification_is_compared_on_the_study_metric_s_test_counterpart(digits) -> None:
    fit = np.concatenate([digits.y_train, digits.y_val])
    majority = np.bincount(fit).argmax()
    share = float(np.mean(digits.y_test == majority))  # what always saying `majority` scores
    scores = {"accuracy": 0.9, "f1_macro": 0.88, "auc": 0.97}

    by_accuracy = baseline_comparison(digits, scores, "val_accuracy")
    assert by_accuracy["baseline"] == "majority class" and by_accuracy["metric"] == "accuracy"
    assert by_accuracy["baseline_value"] == pytest.approx(share, abs=1e-6)
    assert by_accuracy["beats_baseline"] is True

    by_auc = baseline_comparison(digits, scores, "val_auc")
    assert by_auc["metric"] == "auc" and by_auc["baseline_value"] == pytest.approx(0.5)

    # A loss has no test counterpart: accuracy decides.
    at_chance = baseline_comparison(digits, {**scores, "accuracy": share}, "val_loss")
    assert at_chance["metric"] == "accuracy" and at_chance["beats_baseline"] is False


def test_regression_is_compared_with_the_mean_and_lower_errors_win() -> None:
    data = load_dataset(DataSection(source="builtin:diabetes"))
    mean = np.concatenate([data.y_train, data.y_val]).mean()
    rmse = float(np.sqrt(np.mean((data.y_test - mean) ** 2)))
    good = baseline_comparison(data, {"rmse": rmse * 0.8, "mae": 1.0, "r2": 0.3}, "val_rmse")
    assert good["baseline"] == "mean" and good["metric"] == "rmse"
    assert good["baseline_value"] == pytest.approx(rmse, rel=1e-6) and good["beats_baseline"]
    worse = baseline_comparison(data, {"rmse": rmse * 1.1, "mae": 1.0, "r2": -0.1}, "val_loss")
    assert worse["metric"] == "rmse" and worse["beats_baseline"] is False


def test_the_report_text_warns_only_when_the_baseline_is_not_beaten() -> None:
    below = {
        "baseline": "majority class",
        "metric": "accuracy",
        "model_value": 0.485,
        "baseline_value": 0.5,
        "beats_baseline": False,
    }
    trials = [{"number": 0, "state": "complete", "value": 0.5}]
    section = ModelSection("mlp", "val_accuracy", "maximize", 1, {}, trials, baseline=below)
    text = " ".join(analysis([section]))
    assert "Warning: the final model does not beat a majority class baseline" in text
    assert "accuracy 0.485 vs 0.5" in text
    section.baseline = {**below, "model_value": 0.8, "beats_baseline": True}
    text = " ".join(analysis([section]))
    assert "Warning" not in text and "beats a majority class baseline" in text
    assert baseline_warning("mlp", None) is None


def _noise_csv(path: Path) -> Path:
    """Features that say nothing about an imbalanced label (85% one class)."""
    rng = np.random.default_rng(0)
    rows = ["a,b,c,d,label"]
    for _ in range(240):
        values = ",".join(f"{v:.4f}" for v in rng.normal(size=4))
        rows.append(f"{values},{'rare' if rng.random() < 0.15 else 'common'}")
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.mark.slow
def test_a_final_model_no_better_than_the_majority_class_is_flagged(tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    data = _noise_csv(tmp_path / "noise.csv")
    args = ["--data", str(data), "--target", "label", "--study-name", "noise", "--models"]
    args += ["mlp", "--n-trials", "2", "--epochs", "2", "--metric", "val_accuracy"]
    done = run_cli(*args, "--no-plots", root=tmp_path, check=True)
    out = " ".join(done.stdout.split())  # rich wraps long lines at the terminal width
    assert "warning: mlp: the final model does not beat a majority class baseline" in out

    results = tmp_path / "hpo_results" / "noise" / "hpo_results_mlp.json"
    baseline = json.loads(results.read_text())["baseline"]
    assert baseline["beats_baseline"] is False and baseline["metric"] == "accuracy"
    sidecar = tmp_path / "models" / "hpo_derived" / "noise" / "final_model_mlp.json"
    assert json.loads(sidecar.read_text())["baseline"] == baseline

    from hpolab.cli.main import main as hpolab_main

    best = completed_in_process(hpolab_main, "best", "noise", "--root", str(tmp_path))
    assert "does not beat a majority class baseline" in " ".join(best.stdout.split())

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("noise")
    parent = client.search_runs([experiment.experiment_id], "tags.`hpolab.role` = 'study'")[0]
    assert (
        "**Warning:** mlp: the final model does not beat" in parent.data.tags["mlflow.note.content"]
    )


@pytest.mark.slow
def test_every_model_type_of_the_default_study_beats_the_trivial_baseline(
    tmp_path: Path,
) -> None:
    # The default study with a smaller budget: both model types clearly above chance.
    done = run_cli("--n-trials", "2", "--no-plots", root=tmp_path, check=True, timeout=600)
    assert "warning:" not in done.stdout
    combined = tmp_path / "hpo_results" / "default"
    for model_type in ("mlp", "cnn1d"):
        result = json.loads((combined / f"hpo_results_{model_type}.json").read_text())
        baseline = result["baseline"]
        assert baseline["beats_baseline"], (model_type, baseline)
        # Balanced classes: chance is 0.5; "clearly above" is at least 0.65 test accuracy.
        assert result["test_metrics"]["accuracy"] >= 0.65, (model_type, result["test_metrics"])
