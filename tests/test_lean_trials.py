"""Nothing is lost for speed: the lean trial loop keeps every curve and prunes the same way.

The loop validates once per epoch, computes its metrics with NumPy and writes per-epoch
MLflow metrics in batches (see ``benchmarks/race.py`` for the speed). Here, on a real
study with MLflow on: every epoch of every trial is in MLflow, the run ends with its whole
curve, and the same seed prunes the same trials at the same epochs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

CONFIG = {
    "study": {
        "name": "lean",
        "metric": "val_accuracy",
        "n_trials": 8,
        "sampler": "random",
        "pruner": "median",
        "seed": 5,
        "plots": False,
    },
    "data": {"source": "builtin:breast_cancer"},
    "training": {"epochs": 8, "batch_size": 32, "patience": 8},
    "models": {
        "mlp": {
            "search_space": {
                "hidden_layers": [[4], [16, 8]],
                "learning_rate": {"low": 1e-4, "high": 3e-2, "log": True},
            }
        }
    },
}


def _run(root: Path, **study: object) -> list[tuple[str, int, str | None, dict[int, float]]]:
    """(state, epochs reported to the pruner, MLflow run id, reported values) of each
    trial; ``study``: settings over CONFIG's."""
    import hpolab
    from hpolab.layout import Layout
    from hpolab.search.catalog import open_stored

    hpolab.run_study({**CONFIG, "study": {**CONFIG["study"], **study}}, root=root, quiet=True)
    timing = json.loads((root / "hpo_results" / "lean" / "hpo_results_mlp.json").read_text())[
        "last_run_timing"
    ]
    assert 0 < timing["training_seconds"] < timing["search_seconds"]
    assert timing["bookkeeping_seconds"] == pytest.approx(
        timing["search_seconds"] - timing["training_seconds"], abs=2e-3
    )
    assert timing["summary_seconds"] > 0  # the summary's time is apart from the search's
    study = open_stored(Layout.from_root(root), "lean").studies["mlp"]
    return [
        (
            t.state.name,
            len(t.intermediate_values),
            t.user_attrs.get("mlflow_run_id"),
            t.intermediate_values,
        )
        for t in study.get_trials()
    ]


@pytest.mark.slow
def test_same_seed_prunes_the_same_epochs_and_every_epoch_is_in_mlflow(tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    first = _run(tmp_path / "a")
    second = _run(tmp_path / "b")
    assert [t[:2] for t in first] == [t[:2] for t in second], "same seed, same pruning"
    states = {t[0] for t in first}
    assert states == {"COMPLETE", "PRUNED"}, f"the config must prune some trials: {states}"
    client = MlflowClient(f"sqlite:///{tmp_path / 'a' / 'mlruns' / 'mlflow.db'}")
    for state, epochs, run_id, reported in first:
        run = client.get_run(run_id)
        assert run.info.status == "FINISHED", (state, run.info.status)
        for metric in ("val_accuracy", "val_loss", "loss", "val_auc"):
            steps = [m.step for m in client.get_metric_history(run_id, metric)]
            assert steps == list(range(1, epochs + 1)), (metric, state, steps)
        # Reports are written off the training thread: the storage has each epoch's value.
        logged = {m.step: m.value for m in client.get_metric_history(run_id, "val_accuracy")}
        assert reported == pytest.approx(logged), state


@pytest.mark.slow
def test_no_trial_is_pruned_within_the_pruner_warmup(tmp_path: Path) -> None:
    eager = [t[1] for t in _run(tmp_path / "a", pruner_warmup=0) if t[0] == "PRUNED"]
    patient = [t[1] for t in _run(tmp_path / "b", pruner_warmup=6) if t[0] == "PRUNED"]
    assert min(eager, default=99) < 6, f"without warm-up some trial stops sooner: {eager}"
    assert all(epochs >= 6 for epochs in patient), patient


def test_writes_run_in_order_off_the_calling_thread_and_raise_at_wait() -> None:
    import threading
    import time

    from hpolab.search.writes import Writes

    writes, done, threads = Writes(), [], set()

    def write(n: int) -> None:
        time.sleep(0.01 if n % 2 else 0.0)  # a slow write does not let a later one pass
        threads.add(threading.current_thread().name)
        done.append(n)

    for n in range(6):
        writes.submit(write, n)
    writes.wait()
    assert done == list(range(6))
    assert threads and threading.current_thread().name not in threads

    def broken() -> None:
        raise RuntimeError("database is locked")

    writes.submit(broken)
    writes.submit(write, 6)  # later writes still run
    with pytest.raises(RuntimeError, match="database is locked"):
        writes.wait()
    assert done[-1] == 6
    writes.submit(broken)
    writes.wait(raise_errors=False)  # a caller already failing keeps its own error
    writes.wait()  # nothing pending: nothing raised again
    writes.close()
    writes.close()


def _counted_model(seed: int) -> tuple[object, list[int]]:
    """A small compiled classifier whose train step counts its traces."""
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input(shape=(6,)),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dropout(0.2),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    traces = [0]
    step = model.train_step

    def counted(data):  # runs once per trace, not per batch
        traces[0] += 1
        return step(data)

    model.train_step = counted
    return model, traces


def test_a_new_model_is_traced_once_and_the_same_seed_trains_the_same() -> None:
    """The train step of a new model is traced once (Keras alone traces it twice, the
    first time creating the optimizer's and metrics' variables), and hpolab's batches
    (its own pipeline) give the same weights for the same seed."""
    import numpy as np

    from hpolab.training.fit import fit_arrays

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(100, 6)), rng.integers(0, 3, 100)
    ours, traces = _counted_model(seed=3)
    history, _ = fit_arrays(ours, X, y, epochs=3, batch_size=16, class_weight={0: 2.0})
    again, _ = _counted_model(seed=3)
    history_again, _ = fit_arrays(again, X, y, epochs=3, batch_size=16, class_weight={0: 2.0})
    plain, plain_traces = _counted_model(seed=3)
    plain.fit(X, y, epochs=3, batch_size=16, verbose=0)
    assert traces[0] == 1
    assert plain_traces[0] == 2  # what build_state saves; if Keras changes, revisit it
    assert history["loss"] == history_again["loss"]
    assert history["loss"][-1] < history["loss"][0]
    for a, b in zip(ours.get_weights(), again.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_training_batches_give_every_row_once_per_epoch_in_a_new_order() -> None:
    import keras
    import numpy as np

    from hpolab.training.fit import training_batches

    keras.utils.set_random_seed(1)
    X = np.arange(50, dtype="float64").reshape(25, 2)
    y = np.arange(25)
    batches = training_batches(X, y, batch_size=8)
    epochs = []
    for _ in range(2):
        parts = list(batches.as_numpy_iterator())
        assert [len(b[1]) for b in parts] == [8, 8, 8, 1]  # the last batch is partial
        rows = np.concatenate([b[1] for b in parts])
        assert sorted(rows) == list(range(25))
        inputs = np.concatenate([b[0] for b in parts])
        assert inputs.dtype == np.float32  # Keras's float type, as its own pipeline feeds
        np.testing.assert_array_equal(inputs, X[rows])  # rows stay with their targets
        epochs.append(rows.tolist())
    assert epochs[0] != epochs[1], "a new order each epoch"
    assert training_batches([[1.0]], [0], 8) is None  # not arrays: Keras takes them
    weighted = training_batches(X, y % 3, batch_size=25, class_weight={1: 2.0, 5: 9.0})
    _, classes, weights = next(weighted.as_numpy_iterator())
    assert weights.tolist() == [2.0 if c == 1 else 1.0 for c in classes]  # as Keras does
