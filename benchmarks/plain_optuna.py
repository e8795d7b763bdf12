"""The competitor of benchmarks/race.py: Optuna TPE + SQLite + MLflow, written by hand.

    python benchmarks/plain_optuna.py --config CFG.yaml --storage study.db \
        --tracking-uri sqlite:////tmp/x/mlflow.db --seed 0 --trials 20 --log trials.jsonl

A Keras MLP (two dense layers of ``units`` units, dropout, Adam at a log-uniform learning
rate, batch 64, up to 30 epochs, early stopping with patience 5 and the best weights
restored) maximizing the best epoch's validation accuracy, with a median pruner and one
MLflow run per trial. The train/validation/test rows come from hpolab's own loader for
the race's config (``hpolab.data.load_dataset``), so both sides train on the same rows.
"""

from __future__ import annotations

import argparse
import json
import time

import keras
import mlflow
import optuna

from hpolab.config import load_config
from hpolab.data import load_dataset

p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
p.add_argument("--config", required=True)
p.add_argument("--storage", required=True, help="SQLite file of the Optuna study")
p.add_argument("--tracking-uri", required=True, help="e.g. sqlite:////tmp/x/mlflow.db")
p.add_argument("--seed", type=int, default=0)
p.add_argument("--trials", type=int, default=20)
p.add_argument("--log", required=True, help="one JSON line per finished trial")
args = p.parse_args()

data = load_dataset(load_config(args.config).data)
mlflow.set_tracking_uri(args.tracking_uri)
mlflow.set_experiment("plain_optuna")


class Report(keras.callbacks.Callback):
    """Log each epoch to MLflow, report it to Optuna and stop if the trial is pruned."""

    def __init__(self, trial: optuna.Trial) -> None:
        super().__init__()
        self.trial, self.pruned = trial, False

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        mlflow.log_metrics({k: float(v) for k, v in (logs or {}).items()}, step=epoch)
        self.trial.report(float(logs["val_accuracy"]), step=epoch)
        if self.trial.should_prune():
            self.pruned = self.model.stop_training = True


def objective(trial: optuna.Trial) -> float:
    t_start = time.time()
    units = trial.suggest_int("units", 32, 256)
    dropout = trial.suggest_float("dropout", 0.0, 0.5)
    lr = trial.suggest_float("learning_rate", 1e-4, 1e-2, log=True)
    keras.utils.set_random_seed(args.seed * 10_000 + trial.number)
    model = keras.Sequential([keras.Input(shape=data.input_shape)])
    for _ in range(2):
        model.add(keras.layers.Dense(units, activation="relu"))
        model.add(keras.layers.Dropout(dropout))
    model.add(keras.layers.Dense(data.n_outputs, activation="softmax"))
    model.compile(
        optimizer=keras.optimizers.Adam(lr),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    stop = keras.callbacks.EarlyStopping(
        monitor="val_accuracy", patience=5, mode="max", restore_best_weights=True
    )
    report = Report(trial)
    with mlflow.start_run(run_name=f"trial_{trial.number}"):
        mlflow.log_params({**trial.params, "epochs": 30, "batch_size": 64, "patience": 5})
        hist = model.fit(
            data.X_train, data.y_train, validation_data=(data.X_val, data.y_val),
            epochs=30, batch_size=64, callbacks=[stop, report], verbose=0,
        )  # fmt: skip
        value = max(hist.history["val_accuracy"])
        mlflow.log_metric("best_val_accuracy", value)
        mlflow.set_tag("state", "pruned" if report.pruned else "complete")
        if not report.pruned:  # the test rows on the best weights: cheap (360 rows)
            test = model.evaluate(data.X_test, data.y_test, verbose=0)[1]
            trial.set_user_attr("test_accuracy", test)
    with open(args.log, "a") as log:
        line = {"trial": trial.number, "value": None if report.pruned else value}
        log.write(json.dumps({**line, "t_start": t_start, "t_end": time.time()}) + "\n")
    if report.pruned:
        raise optuna.TrialPruned()
    return value


study = optuna.create_study(
    study_name="plain",
    storage=f"sqlite:///{args.storage}",
    direction="maximize",
    sampler=optuna.samplers.TPESampler(seed=args.seed),
    pruner=optuna.pruners.MedianPruner(),
    load_if_exists=True,
)
study.optimize(objective, n_trials=args.trials)
print(f"best {study.best_value:.4f} {study.best_params}")
