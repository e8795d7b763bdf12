"""Race: hpolab against a plain hand-written Optuna + SQLite + MLflow script.

    python benchmarks/race.py [--seeds 0 1 2 3] [--trials 20] [--workers 1] [--keep DIR]

For each seed, runs (interleaved A B A B ..., each in a fresh temporary root, as
subprocesses timed with ``time.perf_counter``):

A. hpolab: ``run_hpo.py --config <root>/race.yaml --root <root> [--workers N]`` with
   MLflow on (default ``<root>/mlruns``), plots and the final retrain left on (defaults);
B. ``benchmarks/plain_optuna.py``: ``TPESampler(seed)`` + ``MedianPruner`` on SQLite,
   one MLflow run per trial (``sqlite:///<root>/mlflow.db``), written as a user would.

Both search the same space on the same rows (``builtin:digits``, 1797 rows, 64 features,
10 classes; plain_optuna.py takes its arrays from ``hpolab.data.load_dataset`` for the
same config): an MLP of two dense layers, dropout 0..0.5, Adam at learning rate 1e-4..1e-2
(log), batch 64, up to 30 epochs, early stopping patience 5, maximizing val_accuracy.
hpolab's ``mlp`` builder cannot give its two layers independent unit counts in one
search space (``hidden_layers`` is a categorical list, ``units`` x ``n_layers`` repeats
one count), so both sides search ``units`` in 32..256 shared by the two layers.
Known differences left as each side's default: hpolab's TPE is multivariate with
constant liar and starts modelling after 5 random trials (the plain one after 10), and its
median pruner starts after 4 trials (the plain one after 5).

Both sides' trials are read the same way, from their Optuna SQLite storages
(``get_trials()``: start, end, state, value). Per run and as medians over seeds it prints:
wall time; search time (first trial start -> last trial end); time to the common target
(the lower of the two runs' best values for that seed); time to its own best; best
validation value; test accuracy (hpolab: its final model retrained on train+validation,
from ``hpo_results_mlp.json``; plain: the best trial's model, trained on train only);
hpolab's share of search time spent outside training (``last_run_timing``; the
once-per-study election and summary after the last trial are printed apart); the
hpolab/plain ratios; the load average and CPU count at start and end.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import optuna
import yaml

REPO = Path(__file__).resolve().parents[1]
STUDY = "race"
TOLERANCE = 1e-6  # Keras reports val_accuracy in float32, hpolab computes it in float64
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}

Run = dict[str, Any]


def write_config(path: Path, seed: int, trials: int) -> Path:
    """The study both sides run: hpolab reads it, plain_optuna.py takes its data from it."""
    cfg = {
        "study": {
            "name": STUDY,
            "metric": "val_accuracy",
            "n_trials": trials,
            "sampler": "tpe",
            "pruner": "median",
            "seed": seed,
        },
        "data": {"source": "builtin:digits"},
        "training": {"epochs": 30, "patience": 5, "batch_size": 64, "optimizer": "adam"},
        "models": {
            "mlp": {
                "search_space": {
                    "n_layers": 2,
                    "units": {"low": 32, "high": 256},
                    "dropout": {"low": 0.0, "high": 0.5},
                    "learning_rate": {"low": 1.0e-4, "high": 1.0e-2, "log": True},
                }
            }
        },
    }
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def timed(command: list[str], root: Path) -> float:
    """Run ``command`` in ``root`` (output to ``root/out.txt``); its wall time in seconds."""
    with open(root / "out.txt", "w") as out:
        start = time.perf_counter()
        proc = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, env=ENV, cwd=root)
        wall = time.perf_counter() - start
    if proc.returncode != 0:
        tail = (root / "out.txt").read_text()[-3000:]
        raise SystemExit(f"{command[1]} failed ({proc.returncode}) in {root}:\n{tail}")
    return wall


def read_trials(storage: str, name: str) -> Run:
    """Timeline of an Optuna study: per finished trial its end (seconds after the first
    trial's start), state and value, in order of end."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    trials = optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)
    done = [t for t in trials if t.datetime_complete is not None]
    t0 = min(t.datetime_start for t in trials if t.datetime_start is not None)
    rows = sorted(
        (
            ((t.datetime_complete - t0).total_seconds(), t.state.name.lower(), t.value, t)
            for t in done
        ),
        key=lambda row: row[0],
    )
    values = [v for _, s, v, _ in rows if s == "complete" and v is not None]
    return {
        "rows": rows,
        "search": rows[-1][0] if rows else float("nan"),
        "best": max(values) if values else float("nan"),
        "states": {s: sum(1 for r in rows if r[1] == s) for s in {r[1] for r in rows}},
    }


def time_to(run: Run, target: float) -> float:
    """Seconds from the first trial's start to the end of the first trial reaching
    ``target`` (NaN: none did)."""
    return _first_reaching(run, target)[0]


def trials_to(run: Run, target: float) -> float:
    """How many trials had finished when one first reached ``target``: the sampler's share
    of the time to it, apart from how fast trials run (NaN: none did)."""
    return _first_reaching(run, target)[1]


def _first_reaching(run: Run, target: float) -> tuple[float, float]:
    for count, (end, state, value, _) in enumerate(run["rows"], start=1):
        if state == "complete" and value is not None and value >= target - TOLERANCE:
            return end, float(count)
    return float("nan"), float("nan")


def run_hpolab(cfg: Path, root: Path, workers: int) -> Run:
    """hpolab in ``root``: wall time, trials, and what its results file says."""
    command = [sys.executable, str(REPO / "run_hpo.py"), "--config", str(cfg), "--root"]
    wall = timed([*command, str(root), "--workers", str(workers)], root)
    run = read_trials(f"sqlite:///{root}/hpo_studies/{STUDY}.db", f"{STUDY}.mlp")
    results = json.loads((root / "hpo_results" / STUDY / "hpo_results_mlp.json").read_text())
    timing = results["last_run_timing"]
    inside, outside = float(timing["training_seconds"]), float(timing["bookkeeping_seconds"])
    run.update(
        wall=wall,
        test=float((results.get("test_metrics") or {}).get("accuracy", float("nan"))),
        outside_share=outside / (inside + outside) if inside + outside else float("nan"),
        outside_per_trial=outside / max(1, int(timing["new_trials"])),
        summary=float(timing.get("summary_seconds", float("nan"))),
    )
    return run


def run_plain(cfg: Path, root: Path, seed: int, trials: int) -> Run:
    """plain_optuna.py in ``root``: wall time, trials, its best trial's test accuracy."""
    storage = root / "optuna.db"
    wall = timed(
        [sys.executable, str(REPO / "benchmarks" / "plain_optuna.py"), "--config", str(cfg)]
        + ["--storage", str(storage), "--tracking-uri", f"sqlite:///{root}/mlflow.db"]
        + ["--seed", str(seed), "--trials", str(trials), "--log", str(root / "trials.jsonl")],
        root,
    )
    run = read_trials(f"sqlite:///{storage}", "plain")
    complete = [r for r in run["rows"] if r[1] == "complete" and r[2] is not None]
    best = max(complete, key=lambda r: r[2], default=None)
    test = best[3].user_attrs.get("test_accuracy") if best is not None else None
    logged = len((root / "trials.jsonl").read_text().splitlines())
    run.update(wall=wall, test=float("nan") if test is None else float(test), logged=logged)
    return run


def score(a: Run, b: Run) -> None:
    """Add the times to the seed's common target and to each run's own best."""
    target = min(a["best"], b["best"])
    for run in (a, b):
        run["target"] = target
        run["to_target"] = time_to(run, target)
        run["trials_to_target"] = trials_to(run, target)
        run["to_best"] = time_to(run, run["best"])


def show(label: str, seed: int, run: Run) -> None:
    states = " ".join(f"{k} {v}" for k, v in sorted(run["states"].items()))
    line = (
        f"  seed {seed} {label:<6} wall {run['wall']:6.1f}s  search {run['search']:6.1f}s  "
        f"to target {run['to_target']:6.1f}s (trial {run['trials_to_target']:.0f})  "
        f"to best {run['to_best']:6.1f}s  "
        f"best {run['best']:.4f}  test {run['test']:.4f}  ({states})"
    )
    if "logged" in run:
        line += f"  [{run['logged']} lines in its trial log]"
    if "outside_share" in run:
        line += (
            f"  outside training {100 * run['outside_share']:.1f}% "
            f"({run['outside_per_trial']:.2f}s/trial; summary {run['summary']:.2f}s)"
        )
    print(line, flush=True)


def machine(when: str) -> None:
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"== {when}: load average {load}, nproc {len(os.sched_getaffinity(0))}", flush=True)


def median(runs: list[Run], key: str) -> float:
    values = [r[key] for r in runs if r[key] == r[key]]  # NaN: not reached
    return statistics.median(values) if values else float("nan")


def summary(pairs: list[tuple[int, Run, Run]]) -> None:
    """Medians over seeds of each side, and the hpolab/plain ratios."""
    hp, pl = [p[1] for p in pairs], [p[2] for p in pairs]
    print("== medians over seeds (hpolab | plain)")
    for key in ("wall", "search", "to_target", "trials_to_target", "to_best", "best", "test"):
        fmt = ".4f" if key in ("best", "test") else ".1f"
        key_label = "trials to target" if key == "trials_to_target" else key
        print(f"  {key_label:<16} {median(hp, key):{fmt}} | {median(pl, key):{fmt}}")
    print(
        f"  hpolab outside training: {100 * median(hp, 'outside_share'):.1f}% of search "
        f"({median(hp, 'outside_per_trial'):.2f}s/trial); election and summary once per "
        f"study: {median(hp, 'summary'):.2f}s"
    )
    print("== ratios hpolab/plain (per seed; median of them; ratio of the medians)")
    for key in ("to_target", "to_best", "search", "wall"):
        ratios = [h[key] / p[key] for _, h, p in pairs if p[key] > 0]
        per = ", ".join(f"s{s} {h[key] / p[key]:.2f}" for s, h, p in pairs if p[key] > 0)
        mid = statistics.median(r for r in ratios if r == r) if ratios else float("nan")
        of_medians = median(hp, key) / median(pl, key) if median(pl, key) > 0 else float("nan")
        print(f"  {key:<10} {per}; median {mid:.2f}; ratio of medians {of_medians:.2f}")


def race(args: argparse.Namespace, work: Path) -> None:
    pairs: list[tuple[int, Run, Run]] = []
    for seed in args.seeds:
        seed_dir = work / f"seed{seed}"
        roots = {side: seed_dir / side for side in ("hpolab", "plain")}
        for root in roots.values():
            root.mkdir(parents=True)
        cfg = write_config(seed_dir / "race.yaml", seed, args.trials)
        hp = run_hpolab(cfg, roots["hpolab"], args.workers)
        pl = run_plain(cfg, roots["plain"], seed, args.trials)
        score(hp, pl)
        show("hpolab", seed, hp)
        show("plain", seed, pl)
        pairs.append((seed, hp, pl))
    summary(pairs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--workers", type=int, default=1, choices=(1, 2))
    parser.add_argument("--keep", type=Path, help="keep the runs' roots in this folder")
    args = parser.parse_args()
    print(
        f"== race: hpolab (--workers {args.workers}) vs plain Optuna, {args.trials} trials, "
        f"seeds {' '.join(map(str, args.seeds))}",
        flush=True,
    )
    machine("start")
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        race(args, Path(tempfile.mkdtemp(dir=args.keep)))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            race(args, Path(tmp))
    machine("end")


if __name__ == "__main__":
    main()
