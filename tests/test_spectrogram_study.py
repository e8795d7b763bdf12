"""A study on spectrograms: cached preprocessing, searched STFT settings, shipped model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import pytest
import yaml
from helpers import run_cli, run_in_process

from hpolab.api import load_final_model
from hpolab.cli.run import main as run_main
from hpolab.config import DataSection
from hpolab.data import load_dataset

pytestmark = pytest.mark.slow


def test_spectrogram_study_caches_resumes_and_ships(tmp_path: Path):
    config = tmp_path / "spec.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "study": {
                    "name": "spec",
                    "metric": "val_auc",
                    "n_trials": 3,
                    "plots": False,
                    "sampler": "random",
                    "pruner": "none",
                },
                "data": {
                    "source": "builtin:leak",
                    "options": {"n_samples": 120, "timesteps": 64},
                    "spectrogram": {"frame_length": 16, "frame_step": 8},
                },
                "training": {"epochs": 2},
                "models": {
                    "cnn1d": {"search_space": {"frame_length": [16, 32], "filters": [4]}},
                    "random_forest": {"search_space": {"n_estimators": [20]}},
                },
            }
        )
    )
    first = run_cli("--config", str(config), "--no-mlflow", root=tmp_path, check=True)
    assert "spectrograms (frame_length 16, frame_step 8" in first.stdout
    assert "computed in" in first.stdout
    cache = tmp_path / "cache" / "preprocessed"
    storage = f"sqlite:///{tmp_path / 'hpo_studies' / 'spec.db'}"
    cnn = optuna.load_study(study_name="spec.cnn1d", storage=storage)
    sources = [(t.params["frame_length"], t.user_attrs["preprocess_source"]) for t in cnn.trials]
    # Every frame_length is computed by the first trial that needs it (16 at load time),
    # later trials with the same setting reuse it.
    seen: set[int] = set()
    for frame_length, source in sources:
        expected = "memory" if frame_length in seen or frame_length == 16 else "computed"
        assert source == expected, sources
        seen.add(frame_length)
    assert len(list(cache.glob("spectrogram_*.npy"))) == len(seen | {16})

    # Resume: spectrograms come from the disk cache, not computed again.
    again = run_cli(
        *("--config", str(config), "--n-trials", "4", "--no-mlflow"),
        root=tmp_path,
        check=True,
        process=True,  # a new process: the in-memory layer is empty, the disk cache is not
    )
    assert "disk cache in" in again.stdout
    assert len(optuna.load_study(study_name="spec.cnn1d", storage=storage).trials) == 4

    # The shipped models take raw windows: the spectrogram is part of their preprocessing,
    # and applying it gives back the test accuracy recorded when the model was made.
    raw = load_dataset(
        DataSection(source="builtin:leak", options={"n_samples": 120, "timesteps": 64})
    )
    X_test = raw.feature_scaler.inverse(raw.X_test).astype(np.float32)  # unscaled windows
    labels = np.asarray(raw.classes, dtype=object)[raw.y_test]
    for model_type in ("cnn1d", "random_forest"):
        final = load_final_model("spec", model_type, root=tmp_path)
        assert final.metadata["preprocessing"]["spectrogram"]["frame_step"] == 8
        predicted = final.predict(X_test)
        accuracy = float(np.mean(predicted == labels))
        assert accuracy == pytest.approx(final.metadata["test_metrics"]["accuracy"], abs=1e-6)


def test_bad_spectrogram_settings_are_refused_before_anything_is_stored(tmp_path: Path):
    config = tmp_path / "bad.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "study": {"name": "bad"},
                "data": {
                    "source": "builtin:leak",
                    "options": {"n_samples": 40, "timesteps": 32},
                    "spectrogram": {"frame_length": 64},
                },
                "models": {"cnn1d": {}},
            }
        )
    )
    code, _, err = run_in_process(run_main, "--config", str(config), "--root", str(tmp_path))
    assert code == 2
    assert "data.spectrogram.frame_length: 64 is longer than a window" in err
    assert "Traceback" not in err
    assert not (tmp_path / "hpo_studies" / "bad.db").exists()
    # A searched STFT setting needs data.spectrogram.
    config.write_text(
        yaml.safe_dump(
            {
                "data": {"source": "builtin:leak"},
                "models": {"cnn1d": {"search_space": {"frame_length": [16]}}},
            }
        )
    )
    code, _, err = run_in_process(run_main, "--config", str(config), "--root", str(tmp_path))
    assert code == 2 and "unknown parameter 'frame_length'" in err
