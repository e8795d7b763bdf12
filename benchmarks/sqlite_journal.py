"""What a commit costs in hpolab's SQLite files: SQLite's default journal against WAL.

    python benchmarks/sqlite_journal.py [--rounds 3]

Interleaved in one run (default, wal, default, wal, ...), each in a fresh file under a
temporary folder on the same disk:

- study storage: Optuna's ``RDBStorage`` as hpolab opens it (``open_storage``, WAL) and a
  plain ``RDBStorage`` (SQLite's rollback journal, full sync), with 30 finished trials of
  10 epochs, then per call: ``trial.report`` (one per epoch), ``trial.should_prune``
  (median pruner), ``trial.set_user_attr``;
- MLflow store: a trial's run as hpolab writes it (create, a batch of params and tags, a
  batch of 20 epoch metrics, a tag, end), with ``hpolab.sqlite_tuning.tune_engine`` and
  without it.

Prints the median milliseconds per call of each and the ratios wal / default.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import optuna
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from hpolab.search.storage import open_storage
from hpolab.sqlite_tuning import tune_engine

optuna.logging.set_verbosity(optuna.logging.WARNING)
logging.getLogger("alembic").setLevel(logging.WARNING)
logging.getLogger("mlflow").setLevel(logging.WARNING)
warnings.filterwarnings("ignore")


def study_calls(folder: Path, wal: bool) -> dict[str, float]:
    """Milliseconds per report, should_prune and set_user_attr on a study of 30 trials."""
    url = f"sqlite:///{folder / 'study.db'}"
    storage = (
        open_storage(url, heartbeat_interval=60, grace_period=None, max_retries=0)
        if wal
        else optuna.storages.RDBStorage(url)
    )
    study = optuna.create_study(storage=storage, pruner=optuna.pruners.MedianPruner())
    for _ in range(30):
        trial = study.ask()
        for epoch in range(10):
            trial.report(float(epoch), epoch)
        study.tell(trial, 1.0)
    trial = study.ask()
    out = {}
    for name, call, n in (
        ("report", lambda i: trial.report(float(i), i), 50),
        ("should_prune", lambda i: trial.should_prune(), 50),
        ("set_user_attr", lambda i: trial.set_user_attr(f"k{i}", i), 20),
    ):
        start = time.perf_counter()
        for i in range(n):
            call(i)
        out[name] = (time.perf_counter() - start) / n * 1000
    return out


def mlflow_runs(folder: Path, wal: bool, n: int = 15) -> dict[str, float]:
    """Milliseconds per trial run written as hpolab writes one."""
    client = MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}")
    experiment = client.create_experiment("bench")
    if wal:
        tune_engine(client._tracking_client.store.engine)
    start = time.perf_counter()
    for _ in range(n):
        run = client.create_run(experiment).info.run_id
        client.log_batch(
            run,
            params=[Param(f"p{k}", str(k)) for k in range(12)],
            tags=[RunTag("hpolab.trial_number", "1"), RunTag("hpolab.model_type", "mlp")],
        )
        client.log_batch(run, metrics=[Metric("val_loss", 0.5, 0, e) for e in range(20)])
        client.set_tag(run, "hpolab.state", "complete")
        client.set_terminated(run, "FINISHED")
    return {"mlflow trial run": (time.perf_counter() - start) / n * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    results: dict[bool, dict[str, list[float]]] = {False: {}, True: {}}
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:
        for round_ in range(args.rounds):
            for wal in (False, True):
                folder = Path(tmp) / f"{round_}_{int(wal)}"
                folder.mkdir()
                for key, ms in {**study_calls(folder, wal), **mlflow_runs(folder, wal)}.items():
                    results[wal].setdefault(key, []).append(ms)
    print(
        f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; medians of "
        f"{args.rounds} rounds, milliseconds per call"
    )
    print(f"{'call':<18}{'default':>10}{'wal':>10}{'wal/default':>13}")
    for key in results[False]:
        default = statistics.median(results[False][key])
        wal = statistics.median(results[True][key])
        print(f"{key:<18}{default:>10.2f}{wal:>10.2f}{wal / default:>12.2f}x")


if __name__ == "__main__":
    main()
