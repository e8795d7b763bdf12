"""A trial's outcome attributes: one write each (Optuna) or one transaction (hpolab).

    python benchmarks/trial_attrs.py [--trials 200]
        [--storage sqlite postgresql://postgres@127.0.0.1:5432/postgres]

For each storage, asks ``--trials`` trials and stores the four attributes hpolab records
when a trial ends (best_epoch, epochs_run, fit_seconds, val_metrics), alternating trial by
trial between ``Trial.set_user_attr`` per attribute and ``write_user_attrs``, and prints
the median milliseconds of each and their ratio. ``sqlite`` means a fresh file in a
temporary folder; a PostgreSQL URL gets a study of its own, deleted afterwards.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
import warnings
from pathlib import Path

import optuna

from hpolab.search.storage import open_storage, write_user_attrs

OUTCOME = {
    "best_epoch": 12,
    "epochs_run": 17,
    "fit_seconds": 1.234,
    "val_metrics": {"val_accuracy": 0.97, "val_loss": 0.11, "val_f1_macro": 0.96},
}


def measure(url: str, trials: int) -> tuple[float, float]:
    """Median milliseconds of one attribute at a time and of one transaction."""
    storage = open_storage(url, 60, None, 0)
    name = f"attrs-{uuid.uuid4().hex[:8]}"
    study = optuna.create_study(study_name=name, storage=storage)
    single, batched = [], []
    try:
        for number in range(trials):
            trial = study.ask()
            start = time.perf_counter()
            if number % 2:
                write_user_attrs(trial, OUTCOME)
            else:
                for key, value in OUTCOME.items():
                    trial.set_user_attr(key, value)
            (batched if number % 2 else single).append(time.perf_counter() - start)
            study.tell(trial, 0.5)
    finally:
        optuna.delete_study(study_name=name, storage=storage)
    return 1000 * statistics.median(single), 1000 * statistics.median(batched)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument(
        "--storage", nargs="+", default=["sqlite", "postgresql://postgres@127.0.0.1:5432/postgres"]
    )
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.simplefilter("ignore", UserWarning)  # heartbeats outside Study.optimize
    with tempfile.TemporaryDirectory() as tmp:
        for url in args.storage:
            real = f"sqlite:///{Path(tmp) / 'attrs.db'}" if url == "sqlite" else url
            single, batched = measure(real, args.trials)
            print(
                f"{url.split('://')[0]:12s} one at a time {single:6.2f} ms  one transaction "
                f"{batched:6.2f} ms  ratio {batched / single:.2f}"
            )


if __name__ == "__main__":
    main()
