"""A study whose config chooses the loss and the learning-rate schedule, end to end."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import REPO

import hpolab
from hpolab.errors import ConfigError
from hpolab.training.losses import FocalLoss

pytestmark = pytest.mark.slow
CONFIG = REPO / "configs" / "leak_focal_cosine.yaml"
SMALL = {"epochs": 3, "plots": False, "data.options.n_samples": 300, "training.warmup_epochs": 1}


def test_focal_loss_and_cosine_schedule_study_resumes_and_ships_a_model(tmp_path: Path):
    first = hpolab.run_study(CONFIG, root=tmp_path, quiet=True, track=False, n_trials=2, **SMALL)
    assert sum(first.models["cnn1d"].states.values()) == 2
    again = hpolab.run_study(CONFIG, root=tmp_path, quiet=True, track=False, n_trials=3, **SMALL)
    assert again.new_trials == 1  # resumed, not restarted
    final = hpolab.load_final_model("leak_focal", "cnn1d", root=tmp_path)
    assert isinstance(final.model.loss, FocalLoss) and final.model.loss.gamma == 2.0
    schedule = final.model.optimizer.get_config()["learning_rate"]["config"]
    assert schedule["kind"] in ("cosine", "linear") and schedule["floor"] == pytest.approx(1e-5)
    assert final.predict_proba(final_inputs(final)).shape[1] == 2


def final_inputs(final: hpolab.FinalModel):
    import numpy as np

    shape = final.metadata["preprocessing"]["input_shape"]
    return np.zeros((4, *shape), dtype="float32")


def test_a_classification_loss_on_a_regression_task_is_refused_before_anything_runs(tmp_path):
    with pytest.raises(ConfigError, match="training.loss: 'focal' is a classification loss"):
        hpolab.run_study(
            CONFIG,
            root=tmp_path,
            quiet=True,
            track=False,
            n_trials=1,
            data="builtin:diabetes",
            metric="val_rmse",
            epochs=1,
        )
    assert not (tmp_path / "hpo_studies").exists() or not list(
        (tmp_path / "hpo_studies").glob("*.db")
    )
    with pytest.raises(ConfigError, match="training.lr_schedule"):
        hpolab.load_config(CONFIG, **{"training.lr_schedule": "cosin"})
