"""Callbacks switched on by config keys, alone and inside a study."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
from helpers import small_config

import hpolab
from hpolab.errors import ConfigError
from hpolab.training.callbacks import (
    BestSoFar,
    ResumableEarlyStopping,
    build_callbacks,
    read_metrics_log,
)


def _fit(callbacks: list, epochs: int = 3) -> keras.callbacks.History:
    keras.utils.set_random_seed(0)
    X = np.random.default_rng(0).normal(size=(40, 3)).astype("float32")
    y = (X[:, 0] > 0).astype(int)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    return model.fit(
        X, y, validation_data=(X, y), epochs=epochs, batch_size=8, verbose=0, callbacks=callbacks
    )


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_checkpoint_metrics_log_tensorboard_and_plateau_write_their_files(tmp_path: Path, fmt):
    options = {
        "checkpoint": True,
        "metrics_log": fmt,
        "tensorboard": True,
        "reduce_lr_on_plateau": {"factor": 0.5, "patience": 1},
    }
    callbacks = build_callbacks(options, tmp_path, monitor="val_loss", direction="minimize")
    assert len(callbacks) == 5  # plateau, best + last checkpoints, metrics log, tensorboard
    _fit(callbacks)
    assert (tmp_path / "checkpoints" / "best.keras").exists()
    assert (tmp_path / "checkpoints" / "last.keras").exists()
    rows = read_metrics_log(tmp_path / f"metrics.{fmt}")
    assert [r["epoch"] for r in rows] == [1, 2, 3] and all("val_loss" in r for r in rows)
    assert list((tmp_path / "tensorboard").rglob("events.out.tfevents.*"))


def test_bad_callback_options_are_config_errors(tmp_path: Path):
    with pytest.raises(ConfigError, match="unknown key 'tensorbord'"):
        build_callbacks({"tensorbord": True}, tmp_path, monitor="val_loss", direction="minimize")
    with pytest.raises(ConfigError, match="checkpoint: needs a run folder"):
        build_callbacks({"checkpoint": True}, None, monitor="val_loss", direction="minimize")
    with pytest.raises(
        ConfigError, match="unknown callback 'tensorbord'; did you mean 'tensorboard'"
    ):
        hpolab.load_config(None, **{"training.callbacks": {"tensorbord": True}})


@pytest.mark.slow
def test_study_trials_write_their_callback_files(tmp_path: Path, csv_file: Path):
    cfg = small_config(tmp_path / "c.yaml", csv_file, name="cb", n_trials=2)
    hpolab.run_study(
        cfg,
        root=tmp_path,
        quiet=True,
        track=False,
        **{"training.callbacks": {"metrics_log": "json", "checkpoint": True}},
    )
    for n in (0, 1):
        trial = tmp_path / "hpo_results" / "cb" / "trials" / "mlp" / f"trial_{n}"
        rows = read_metrics_log(trial / "metrics.json")
        assert rows and "val_loss" in rows[0] and "val_accuracy" in rows[0]
        assert (trial / "checkpoints" / "best.keras").exists()


def test_resumed_early_stopping_continues_the_count_and_restores_the_best_of_the_whole_run():
    keras.utils.set_random_seed(0)
    X = np.random.default_rng(0).normal(size=(40, 3)).astype("float32")
    y = (X[:, 0] > 0).astype(int)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    before_stop = [w.copy() for w in model.get_weights()]
    # Stopped after epoch 3; the best val_loss (unbeatable 0.0) was at epoch 2, patience 2:
    # one more epoch without improvement ends the run, with epoch 2's weights.
    stopping = ResumableEarlyStopping(
        monitor="val_loss",
        patience=2,
        restore_best_weights=True,
        resume=BestSoFar(0.0, 2, before_stop),
        initial_epoch=3,
    )
    history = model.fit(
        X, y, validation_data=(X, y), initial_epoch=3, epochs=10, verbose=0, callbacks=[stopping]
    )
    assert len(history.history["loss"]) == 1 and stopping.stopped_epoch == 3
    for restored, kept in zip(model.get_weights(), before_stop, strict=True):
        np.testing.assert_array_equal(restored, kept)

    # Without a resume state it is plain early stopping.
    fresh = ResumableEarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    assert len(_fit([fresh], epochs=4).history["loss"]) == 4
