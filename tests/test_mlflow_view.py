"""What MLflow users read: every trial's whole configuration, its data, tidy numbers."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from helpers import small_config, write_csv
from mlflow.tracking import MlflowClient

import hpolab
from hpolab.search.space import tidy


def test_tidy_drops_binary_noise_only() -> None:
    assert tidy(0.1 * 3) == 0.3 and repr(tidy(0.1 * 3)) == "0.3"
    assert tidy([0.1 * 3, 64]) == [0.3, 64]
    assert tidy(1e-4) == 1e-4 and tidy(0.0012345678901234) == 0.00123456789012
    assert tidy(float("nan")) != tidy(float("nan"))  # NaN stays NaN
    assert tidy("0.30000000000000004") == "0.30000000000000004"  # text is text
    assert tidy(7) == 7 and isinstance(tidy(7), int)


@pytest.fixture(scope="module")
def study_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("view")
    data = write_csv(root / "d.csv", n=120)
    config = small_config(root / "c.yaml", data, name="view", n_trials=6, sampler="grid")
    import yaml

    raw = yaml.safe_load(config.read_text())
    raw["models"]["mlp"]["search_space"] = {"dropout": {"low": 0.0, "high": 0.5, "step": 0.1}}
    raw["training"]["epochs"] = 1
    config.write_text(yaml.safe_dump(raw))
    hpolab.run_study(config, root=root, quiet=True)
    return root


def _trial_runs(root: Path) -> tuple[MlflowClient, list]:
    client = MlflowClient(f"sqlite:///{root / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("view")
    runs = client.search_runs([experiment.experiment_id], "tags.`hpolab.role` = 'trial'")
    return client, runs


def test_trial_runs_log_the_whole_configuration_with_tidy_floats(study_root: Path) -> None:
    _, runs = _trial_runs(study_root)
    assert len(runs) == 6
    dropouts = sorted(run.data.params["dropout"] for run in runs)
    assert dropouts == ["0.0", "0.1", "0.2", "0.3", "0.4", "0.5"]
    for run in runs:
        params = run.data.params
        # Fixed training settings are logged too, not only the searched values.
        assert params["epochs"] == "1" and params["batch_size"] == "32"
        assert params["patience"] == "2" and "learning_rate" in params
        assert not [v for v in params.values() if "0000000" in v or "9999999" in v]
    storage = f"sqlite:///{study_root / 'hpo_studies' / 'view.db'}"
    study = optuna.load_study(study_name="view.mlp", storage=storage)
    results = hpolab.load_final_model("view", "mlp", root=study_root).metadata
    assert repr(results["params"]["dropout"]) in {"0.0", "0.1", "0.2", "0.3", "0.4", "0.5"}
    assert study.best_trial is not None


def test_trial_runs_record_their_dataset_and_the_experiment_says_what_it_is(
    study_root: Path,
) -> None:
    client, runs = _trial_runs(study_root)
    sidecar = hpolab.load_final_model("view", "mlp", root=study_root).metadata
    fingerprint = sidecar["data"]["fingerprint"]
    for run in runs:
        inputs = run.inputs.dataset_inputs
        assert len(inputs) == 1
        dataset = inputs[0].dataset
        assert dataset.digest == fingerprint[:36]
        assert dataset.name.endswith("d.csv")
        assert '"f1"' in dataset.schema  # the feature columns
        assert '"train_rows"' in dataset.profile
    experiment = client.get_experiment_by_name("view")
    assert experiment.tags["hpolab.metric"] == "val_loss"
    assert experiment.tags["hpolab.direction"] == "minimize"
    assert "val_loss" in experiment.tags["mlflow.note.content"]
