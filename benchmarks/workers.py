"""Parallel workers: speed-up of ``--workers 2`` and per-trial bookkeeping of each storage.

    python benchmarks/workers.py [--rounds 2] [--trials 12] [--storages sqlite,postgresql,redis]

Part 1 runs the same study (built-in leak data, mlp, 30 epochs without early stopping or
pruning: trials of several seconds, as studies worth parallelizing have) with
``--workers 1`` and ``--workers 2``, interleaved (A B, then B A) in fresh roots, and prints
each run's wall time, the span from the first trial's start to the last trial's end, and
the best value, then the median ratios.

Part 2 measures what this machine allows at best: the same study alone, then two
independent copies at once (separate roots, one worker and one TensorFlow thread each,
no MLflow); the ratio of their mean training time per trial is the slowdown any two
concurrent trainings suffer here, whatever coordinates them (``--ceiling-only``).

Part 3 runs the study with one worker on each storage (SQLite file, PostgreSQL on
127.0.0.1:5432, Redis on 127.0.0.1:6379), interleaved, and prints the per-trial time spent
outside training (storage, sampler, MLflow), from the results file each run writes.
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
from datetime import datetime
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
STORAGES = {
    "sqlite": None,
    "postgresql": "postgresql://postgres@127.0.0.1:5432/test",
    "redis": "redis://127.0.0.1:6379/0",
}


def config(path: Path, trials: int, epochs: int = 12, samples: int = 1200) -> Path:
    cfg = {
        "study": {
            "name": "bench",
            "metric": "val_loss",
            "n_trials": trials,
            "sampler": "tpe",
            "pruner": "none",
            "seed": 3,
            "plots": False,
        },
        "data": {"source": "builtin:leak", "options": {"n_samples": samples, "seed": 3}},
        # Fixed length trials: every run does the same training work.
        "training": {"epochs": epochs, "batch_size": 32, "patience": epochs},
        "models": {
            "mlp": {
                "search_space": {
                    "hidden_layers": [[64], [128, 64]],
                    "dropout": {"low": 0.0, "high": 0.4},
                    "learning_rate": {"low": 1e-4, "high": 1e-2, "log": True},
                }
            }
        },
    }
    path.write_text(yaml.safe_dump(cfg))
    return path


def run(cfg: Path, root: Path, *extra: str) -> dict[str, float]:
    """One study in a fresh root; wall time, search time, best value, outside training."""
    root.mkdir(parents=True)
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(REPO / "run_hpo.py"), "--config", str(cfg), "--root", str(root)]
        + ["-q", *extra],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        cwd=root,
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"run failed ({proc.returncode}): {proc.stderr[-2000:]}")
    results = json.loads((root / "hpo_results" / "bench" / "hpo_results_mlp.json").read_text())
    rows = [t for t in results["trials"] if t.get("started") and t.get("duration_seconds")]
    starts = [datetime.fromisoformat(t["started"]).timestamp() for t in rows]
    ends = [s + t["duration_seconds"] for s, t in zip(starts, rows, strict=True)]
    timing = results["last_run_timing"]
    return {
        "wall": wall,
        "search": float(timing["search_seconds"]),
        "best": float(results["best_value"]),
        "outside_per_trial": float(timing["bookkeeping_seconds"]) / max(1, timing["new_trials"]),
        "trials": float(timing["new_trials"]),
        "span": max(ends) - min(starts),
    }


def speedup(cfg: Path, work: Path, rounds: int) -> None:
    walls: dict[int, list[float]] = {1: [], 2: []}
    spans: dict[int, list[float]] = {1: [], 2: []}
    print(f"== --workers 1 vs --workers 2, {os.cpu_count()} CPU cores, {rounds} rounds")
    for r in range(rounds):
        for workers in (1, 2) if r % 2 == 0 else (2, 1):
            out = run(cfg, work / f"w{workers}_{r}", "--workers", str(workers))
            walls[workers].append(out["wall"])
            spans[workers].append(out["span"])
            print(
                f"  round {r + 1} workers {workers}: wall {out['wall']:.1f}s "
                f"trials span {out['span']:.1f}s best {out['best']:.4f}"
            )
    wall1, wall2 = statistics.median(walls[1]), statistics.median(walls[2])
    span1, span2 = statistics.median(spans[1]), statistics.median(spans[2])
    print(f"  median wall: 1 worker {wall1:.1f}s, 2 workers {wall2:.1f}s -> {wall1 / wall2:.2f}x")
    print(f"  median trials span: {span1:.1f}s vs {span2:.1f}s -> {span1 / span2:.2f}x")


def ceiling(cfg: Path, work: Path) -> None:
    """Per-trial training time of one study alone vs two independent studies at once."""
    env = {"HPOLAB_WORKER_INDEX": "0", "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"}

    def start(root: Path) -> subprocess.Popen[bytes]:
        root.mkdir(parents=True)
        command = [sys.executable, str(REPO / "run_hpo.py"), "--config", str(cfg), "--root"]
        return subprocess.Popen(
            [*command, str(root), "--no-mlflow", "-q"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, **env, "TF_CPP_MIN_LOG_LEVEL": "3"},
            cwd=root,
        )

    def fit_per_trial(root: Path) -> float:
        results = json.loads((root / "hpo_results" / "bench" / "hpo_results_mlp.json").read_text())
        fits = [t["fit_seconds"] for t in results["trials"] if t.get("fit_seconds")]
        return statistics.mean(fits)

    print("== this machine's ceiling: one study alone vs two independent studies at once")
    start(work / "alone").wait()
    pair = [start(work / "pair_a"), start(work / "pair_b")]
    for proc in pair:
        proc.wait()
    alone = fit_per_trial(work / "alone")
    together = statistics.mean(fit_per_trial(work / d) for d in ("pair_a", "pair_b"))
    print(
        f"  training per trial: alone {alone:.2f}s, two at once {together:.2f}s -> "
        f"two concurrent trainings reach at most {2 * alone / together:.2f}x the throughput"
    )


def bookkeeping(cfg: Path, work: Path, rounds: int, storages: list[str]) -> None:
    print(f"== per-trial time outside training, one worker, {rounds} rounds")
    seen: dict[str, list[float]] = {s: [] for s in storages}
    for r in range(rounds):
        order = storages if r % 2 == 0 else list(reversed(storages))
        for kind in order:
            url = STORAGES[kind]
            extra = ["--storage", url] if url else []
            if url:
                _drop(url, "bench")  # a shared server: start from an empty study
            out = run(cfg, work / f"{kind}_{r}", *extra)
            seen[kind].append(out["outside_per_trial"])
            print(
                f"  round {r + 1} {kind:<10}: {out['outside_per_trial'] * 1000:.0f} ms/trial "
                f"outside training (wall {out['wall']:.1f}s)"
            )
            if url:
                _drop(url, "bench")
    for kind, values in seen.items():
        print(f"  median {kind:<10}: {statistics.median(values) * 1000:.0f} ms/trial")


def _drop(url: str, name: str) -> None:
    import contextlib

    import optuna

    from hpolab.search.storage import open_storage

    storage = open_storage(url, 10, None, 0)
    for study in (f"{name}.mlp", f"{name}:hpolab"):
        with contextlib.suppress(KeyError):
            optuna.delete_study(study_name=study, storage=storage)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--storages", default="sqlite,postgresql,redis")
    parser.add_argument("--skip-speedup", action="store_true")
    parser.add_argument("--ceiling-only", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        long = config(work / "long.yaml", args.trials, 30, 2000)
        if args.ceiling_only:
            ceiling(long, work)
            return
        if not args.skip_speedup:
            speedup(long, work, args.rounds)
            ceiling(long, work)
        bookkeeping(
            config(work / "short.yaml", args.trials), work, args.rounds, args.storages.split(",")
        )


if __name__ == "__main__":
    main()
