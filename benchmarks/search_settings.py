"""Search settings (start-up trials, first trial, ...) that find the best sooner: measured
on several datasets.

    python benchmarks/search_settings.py [--datasets digits breast_cancer diabetes]
        [--seeds 0 1 2 3] [--variants first_trial=random first_trial=center]
        [--trials 20] [--workers 1] [--checkout DIR]

A variant is a list of ``study`` settings, ``key=value[,key=value]`` (values read as
YAML), e.g. ``startup_trials=10`` or ``first_trial=center,startup_trials=6``.
For each dataset and seed, runs the race's study (``benchmarks/race.py``: an MLP of two
dense layers, 32..256 units, dropout 0..0.5, learning rate 1e-4..1e-2 log, batch 64, up
to 30 epochs, patience 5, median pruning) once per variant, interleaved,
each in a fresh temporary root (``run_hpo.py --no-mlflow --no-plots``; the final retrain
runs as usual). Classification datasets maximize val_accuracy, regression minimizes
val_loss. ``--checkout`` runs another checkout's ``run_hpo.py`` with its ``src/`` first on
the path (default: this one).

Per dataset and seed the common target is the worse of the settings' best values; for
each setting it prints the best value, the trials and the training epochs (pruned
trials' epochs included) until a trial first reached the target, and the wall time.
Epochs are the measure that matters here: a trial's time is about proportional to its
epochs, and unlike seconds they do not depend on the machine's load. The summary gives,
per setting, the median best and the median ratio of epochs to target against the first
setting.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import race  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
STUDY = race.STUDY
REGRESSION = {"diabetes"}
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}


def settings(variant: str) -> dict[str, Any]:
    """``key=value[,key=value]`` -> study settings (values read as YAML)."""
    pairs = [item.split("=", 1) for item in variant.split(",") if item]
    if any(len(pair) != 2 for pair in pairs):
        raise SystemExit(f"--variants: {variant!r}: give key=value[,key=value]")
    return {key.strip(): yaml.safe_load(value) for key, value in pairs}


def write_config(path: Path, dataset: str, seed: int, trials: int, variant: str) -> Path:
    """The race's study (its space and training) on ``dataset`` with ``variant``."""
    race.write_config(path, seed, trials)
    cfg = yaml.safe_load(path.read_text())
    cfg["study"]["metric"] = "val_loss" if dataset in REGRESSION else "val_accuracy"
    cfg["study"].update(settings(variant))
    cfg["data"] = {"source": f"builtin:{dataset}"}
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def run_once(
    checkout: Path, dataset: str, seed: int, args: argparse.Namespace, variant: str
) -> dict[str, Any]:
    """One study; its finished trials in order of completion (value, state, epochs)."""
    with tempfile.TemporaryDirectory(prefix="settings-") as tmp:
        root = Path(tmp)
        config = write_config(root / "study.yaml", dataset, seed, args.trials, variant)
        command = [sys.executable, str(checkout / "run_hpo.py"), "--config", str(config)]
        command += ["--root", str(root), "--no-mlflow", "--no-plots", "--quiet"]
        command += ["--workers", str(args.workers)]
        env = {**ENV, "PYTHONPATH": str(checkout / "src")}
        start = time.perf_counter()
        proc = subprocess.run(command, capture_output=True, text=True, env=env, cwd=root)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"{dataset} seed {seed} {variant}:\n{proc.stderr[-3000:]}")
        return {"wall": wall, "trials": read_trials(root / "hpo_studies" / f"{STUDY}.db")}


def read_trials(db: Path) -> list[tuple[float | None, str, int]]:
    """(value, state, epochs run) of each finished trial, in order of completion, as the
    race reads them."""
    rows = race.read_trials(f"sqlite:///{db}", f"{STUDY}.mlp")["rows"]
    return [(value, state, int(t.user_attrs.get("epochs_run", 0))) for _, state, value, t in rows]


def to_target(trials: list, target: float, sign: float) -> tuple[int, int]:
    """Trials and epochs until a complete trial first reached ``target``."""
    epochs = 0
    for count, (value, state, run) in enumerate(trials, start=1):
        epochs += run
        if state == "complete" and value is not None and sign * value >= sign * target - 1e-9:
            return count, epochs
    return len(trials), epochs


def best(trials: list, sign: float) -> float:
    values = [v for v, state, _ in trials if state == "complete" and v is not None]
    return sign * max(sign * v for v in values)


def compare(dataset: str, seed: int, runs: dict[str, dict[str, Any]]) -> dict[str, dict]:
    """Per setting: best, trials and epochs to the common target, wall time."""
    sign = -1.0 if dataset in REGRESSION else 1.0
    bests = {s: best(r["trials"], sign) for s, r in runs.items()}
    target = sign * min(sign * b for b in bests.values())
    rows = {}
    for setting, run in runs.items():
        n, epochs = to_target(run["trials"], target, sign)
        rows[setting] = {"best": bests[setting], "trials": n, "epochs": epochs, "wall": run["wall"]}
        print(
            f"{dataset:14s} seed {seed}  {setting:>22s}: best {bests[setting]:.4f}  "
            f"to target {target:.4f}: {n:2d} trials, {epochs:4d} epochs  "
            f"wall {run['wall']:.1f} s",
            flush=True,
        )
    return rows


def summary(results: dict[str, list[dict[str, dict]]], settings: list[str]) -> None:
    """Median best and median epochs-to-target ratio against the first setting."""
    base = settings[0]
    print(f"\nmedians over seeds (epochs to target as a ratio to {base})")
    for dataset, per_seed in results.items():
        for setting in settings:
            bests = [r[setting]["best"] for r in per_seed]
            ratios = [r[setting]["epochs"] / max(1, r[base]["epochs"]) for r in per_seed]
            trials = [r[setting]["trials"] for r in per_seed]
            print(
                f"{dataset:14s} {setting:>22s}: best {statistics.median(bests):.4f}  "
                f"trials to target {statistics.median(trials):4.1f}  epochs ratio "
                f"{statistics.median(ratios):.2f} ({', '.join(f'{x:.2f}' for x in ratios)})"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["digits", "breast_cancer", "diabetes"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3])
    parser.add_argument(
        "--variants", nargs="+", default=["first_trial=random", "first_trial=center"]
    )
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--checkout", type=Path, default=REPO, help="checkout to run")
    args = parser.parse_args()
    print(f"cpus {os.cpu_count()}, load average at start {os.getloadavg()[0]:.2f}", flush=True)
    results: dict[str, list[dict[str, dict]]] = {}
    for dataset in args.datasets:
        for seed in args.seeds:
            # Interleaved: each setting in turn, the order alternating from seed to seed.
            order = args.variants if seed % 2 == 0 else list(reversed(args.variants))
            runs = {v: run_once(args.checkout, dataset, seed, args, v) for v in order}
            rows = compare(dataset, seed, {v: runs[v] for v in args.variants})
            results.setdefault(dataset, []).append(rows)
    summary(results, args.variants)
    print(f"load average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
