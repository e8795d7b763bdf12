"""Cost of trial checkpoints (``study.trial_checkpoints``): training time with and without.

    python benchmarks/trial_checkpoints.py [--rounds 5] [--epochs 20]

Trains the default study's two model types (mlp and cnn1d, their default parameters) on
its data (built-in leak windows, 1000 samples) for ``--epochs`` epochs without early
stopping, through hpolab's training core, once per mode and round, interleaved (off, auto,
every epoch; the order rotates each round): ``off`` saves nothing, ``auto`` is the default
(a save once training since the last one took 50x a save), ``every-1`` saves after every
epoch (``trial_checkpoints: 1``). Prints each mode's median training seconds, its ratio to
``off``, the saves made, the seconds they took and their share of the training time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from hpolab.config import DataSection, TrainingSection  # noqa: E402
from hpolab.data import load_dataset  # noqa: E402
from hpolab.models import build_model  # noqa: E402
from hpolab.training.fit import clear_keras, fit_model, seed_everything, training_params  # noqa: E402
from hpolab.training.resume import ResumeCheckpoint  # noqa: E402

MODES = {"off": "off", "auto": None, "every-1": 1}


def train(data, model_type: str, epochs: int, mode: str, folder: Path) -> tuple[float, int, float]:
    """Seconds of one training, and the saves made and the seconds they took."""
    seed_everything(1)
    model = build_model(model_type, {}, data.input_shape, data.task, data.n_outputs)
    hp = training_params({"epochs": epochs}, TrainingSection(patience=epochs))
    every = MODES[mode]
    saver = None if every == "off" else ResumeCheckpoint(folder, "bench", every=every)
    saves = []
    if saver is not None:
        original = saver.save
        saver.save = lambda epoch: (saves.append(epoch), original(epoch))[-1]  # type: ignore[method-assign]
    start = time.perf_counter()
    fit_model(
        model,
        data,
        hp,
        monitor="val_loss",
        direction="minimize",
        extra_callbacks=[saver] if saver else [],
    )
    seconds = time.perf_counter() - start
    clear_keras()
    return seconds, len(saves), saver.save_seconds if saver else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    data = load_dataset(DataSection(source="builtin:leak", options={"n_samples": 1000}))
    print(f"load average at start: {os.getloadavg()[0]:.2f}; {os.cpu_count()} cores")
    for model_type in ("mlp", "cnn1d"):
        train(data, model_type, 1, "off", Path(tempfile.mkdtemp()))  # warm-up
        results: dict[str, list[tuple[float, int, float]]] = {mode: [] for mode in MODES}
        modes = list(MODES)
        for round_ in range(args.rounds):
            order = modes[round_ % 3 :] + modes[: round_ % 3]
            for mode in order:
                folder = Path(tempfile.mkdtemp())
                results[mode].append(train(data, model_type, args.epochs, mode, folder))
        base = statistics.median(r[0] for r in results["off"])
        print(f"\n{model_type}, {args.epochs} epochs, {args.rounds} rounds (median):")
        print(f"  {'mode':<8} {'train s':>8} {'ratio':>6} {'saves':>6} {'save s':>7} {'share':>6}")
        for mode, runs in results.items():
            seconds = statistics.median(r[0] for r in runs)
            saves = statistics.median(r[1] for r in runs)
            saving = statistics.median(r[2] for r in runs)
            print(
                f"  {mode:<8} {seconds:8.2f} {seconds / base:6.3f} {saves:6.0f} "
                f"{saving:7.3f} {saving / seconds:6.1%}"
            )
    print(f"\nload average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
