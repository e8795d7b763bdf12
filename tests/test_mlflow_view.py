"""What MLflow users read: every trial's whole configuration, its data, tidy numbers."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from helpers import small_config, write_csv
from mlflow.tracking import MlflowClient

import hpolab
from hpolab.search.space import tidy

# One worker runs the module: its studies are made once and shared.
pytestmark = pytest.mark.xdist_group(name="mlflow_view")


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
    # `hpolab trials`, as a table and as JSON, shows the values as they were meant.
    from helpers import completed_in_process

    from hpolab.cli.main import main

    for extra in ((), ("--json",)):
        done = completed_in_process(main, "trials", "view", "--root", str(study_root), *extra)
        assert done.returncode == 0, done.stderr
        assert "0.3" in done.stdout and "0000000" not in done.stdout, done.stdout
        assert "9999999" not in done.stdout, done.stdout


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
    assert experiment.tags["hpolab.data_source"].endswith("d.csv")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A finished one-trial study "serve" (its root and data)."""
    root = tmp_path_factory.mktemp("serve")
    data = write_csv(root / "d.csv", n=120)
    config = small_config(root / "c.yaml", data, name="serve", n_trials=1)
    hpolab.run_study(config, root=root, quiet=True)
    return root, data


def test_the_champion_serves_raw_rows_with_mlflow_pyfunc(served, monkeypatch) -> None:
    import mlflow
    import numpy as np
    import pandas as pd

    tmp_path, data = served
    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    # As a user points MLflow at the study's store; the environment is restored after
    # (mlflow.set_registry_uri would leave it set for every later test).
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", uri)
    served_model = mlflow.pyfunc.load_model("models:/serve-mlp@champion")
    frame = pd.read_csv(data)
    rows = frame.drop(columns=["label"]).head(8)
    labels = served_model.predict(rows)
    assert set(np.asarray(labels)) <= {"no", "yes"}  # the original labels
    # The same predictions as the final model the study shipped, from raw rows.
    final = hpolab.load_final_model("serve", "mlp", root=tmp_path)
    assert list(labels) == list(final.predict(rows.to_numpy(dtype=np.float32)))
    proba = served_model.predict(rows, params={"output": "proba"})
    assert np.asarray(proba).shape == (8, 2)
    assert np.allclose(np.asarray(proba).sum(axis=1), 1.0, atol=1e-4)
    # Signature and input example: raw feature columns in, labels out.
    info = served_model.metadata
    assert [c.name for c in info.get_input_schema().inputs] == ["f1", "f2", "f3", "f4"]
    assert info.get_params_schema() is not None
    assert info.saved_input_example_info is not None
    with pytest.raises(Exception, match="output"):
        served_model.predict(rows, params={"output": "logits"})
    # The keras flavor gives the bare network: standardized features in, class scores out.
    # Applying the sidecar's scaling by hand gives the pyfunc's probabilities.
    network = mlflow.keras.load_model("models:/serve-mlp@champion")
    scaler = final.metadata["preprocessing"]["feature_scaler"]
    standardized = (rows.to_numpy() - np.asarray(scaler["mean"])) / np.asarray(scaler["scale"])
    scores = network.predict(standardized.astype(np.float32), verbose=0)
    assert np.allclose(scores, np.asarray(proba), atol=1e-5)
    classes = final.metadata["preprocessing"]["classes"]
    assert list(labels) == [classes[i] for i in scores.argmax(axis=1)]


def test_a_retrain_of_the_same_model_adds_no_version(served) -> None:
    from mlflow.tracking import MlflowClient

    tmp_path, _ = served
    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    client = MlflowClient(uri, registry_uri=uri)
    (first,) = client.search_model_versions("name = 'serve-mlp'")
    from helpers import completed_in_process

    from hpolab.cli.main import main

    done = completed_in_process(main, "retrain", "serve", "--root", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    versions = client.search_model_versions("name = 'serve-mlp'")
    assert [v.version for v in versions] == [first.version]
    assert client.get_model_version_by_alias("serve-mlp", "champion").version == first.version

    # A model copied out with `hpolab fetch` loads from its folder or its file.
    out = tmp_path / "shipped"
    fetched = completed_in_process(
        main, "fetch", "serve", "--dest", str(out), "--root", str(tmp_path), cwd=tmp_path
    )
    assert fetched.returncode == 0, fetched.stderr
    import numpy as np

    from hpolab.final_models import FinalModelError

    rows = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    expected = list(hpolab.load_final_model("serve", root=tmp_path).predict(rows))
    assert list(hpolab.load_final_model(out).predict(rows)) == expected
    assert list(hpolab.load_final_model(out / "final_model_mlp.keras").predict(rows)) == expected
    (tmp_path / "empty").mkdir()
    with pytest.raises(FinalModelError, match="no final model"):
        hpolab.load_final_model(tmp_path / "empty")
    (out / "final_model_mlp.keras").write_bytes(b"changed")
    with pytest.raises(FinalModelError, match="checksum"):
        hpolab.load_final_model(out)


def test_a_spectrogram_model_serves_raw_windows_with_a_signature(tmp_path, monkeypatch) -> None:
    import mlflow
    import numpy as np

    from hpolab.data.sources import make_leak_dataset

    config = {
        "study": {"name": "spec", "n_trials": 1, "metric": "val_accuracy", "plots": False},
        "data": {
            "source": "builtin:leak",
            "options": {"n_samples": 200},
            "spectrogram": {"frame_length": 32, "frame_step": 8},
        },
        "training": {"epochs": 2},
        "models": {"mlp": {"search_space": {"hidden_layers": [[8]]}}},
    }
    hpolab.run_study(config, root=tmp_path, quiet=True)
    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", uri)
    served_model = mlflow.pyfunc.load_model("models:/spec-mlp@champion")
    # Raw windows in, as recorded (3 channels x 128 samples); the spectrogram is inside.
    inputs = served_model.metadata.get_input_schema().inputs
    assert inputs[0].shape == (-1, 128, 3)
    assert served_model.metadata.saved_input_example_info is not None
    windows, _, _, _ = make_leak_dataset(n_samples=6, seed=1)
    labels = served_model.predict(windows.astype(np.float64))
    final = hpolab.load_final_model("spec", "mlp", root=tmp_path)
    assert list(labels) == list(final.predict(windows))
    assert set(labels) <= {"leak", "no_leak"}
