"""Does a trial cost the same at trial 500 as at trial 10? Does memory stay flat?

    python benchmarks/flat_cost.py [--trials 500] [--sampler tpe] [--no-mlflow]

Runs one study of a tiny model (so that the time is about bookkeeping, not training) with
``run_hpo.py`` in a temporary root, samples the process's resident memory twice a second
next to the number of trials stored, then reads every trial back from the study and prints:

- per-trial time outside training (from one trial's start to the next one's, minus the
  training time the trial recorded), median over trials 6-15 and over the last ten, and
  their ratio (target: at most 1.5x);
- resident memory at trial 10 and at trial 110 (target: at most 50 MB more).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CONFIG = """
study: {{name: flat, metric: val_accuracy, n_trials: {trials}, sampler: {sampler},
        pruner: median, seed: 3}}
data: {{source: builtin:breast_cancer}}
training: {{epochs: 3, batch_size: 64, patience: 2}}
models:
  mlp:
    search_space:
      hidden_layers: [[4], [8]]
      dropout: {{low: 0.0, high: 0.3}}
      learning_rate: {{low: 1.0e-3, high: 1.0e-1, log: true}}
"""


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _trials_stored(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as con:
            return con.execute("SELECT COUNT(*) FROM trials WHERE state != 'RUNNING'").fetchone()[0]
    except sqlite3.Error:
        return 0


def _run(root: Path, args: argparse.Namespace) -> tuple[float, dict[int, float]]:
    """Run the study; its wall time and resident memory (MB) by trials finished."""
    cfg = root / "flat.yaml"
    cfg.write_text(CONFIG.format(trials=args.trials, sampler=args.sampler))
    argv = [sys.executable, str(REPO / "run_hpo.py"), "--config", str(cfg), "--root", str(root)]
    if args.no_mlflow:
        argv.append("--no-mlflow")
    db = root / "hpo_studies" / "flat.db"
    memory: dict[int, float] = {}
    start = time.perf_counter()
    with open(root / "out.txt", "w") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=root)
        while proc.poll() is None:
            rss = _rss_mb(proc.pid)
            done = _trials_stored(db)
            if rss is not None:
                memory.setdefault(done, rss)
            time.sleep(0.5)
    if proc.returncode != 0:
        sys.exit((root / "out.txt").read_text()[-3000:])
    return time.perf_counter() - start, memory


def _outside_training(db: Path) -> list[float]:
    """Per trial: time from its start to the next trial's start, minus its training."""
    with sqlite3.connect(db) as con:
        rows = con.execute(
            "SELECT t.number, julianday(t.datetime_start) * 86400.0, a.value_json FROM trials t "
            "LEFT JOIN trial_user_attributes a ON a.trial_id = t.trial_id "
            "AND a.key = 'fit_seconds' ORDER BY t.number"
        ).fetchall()
    out = []
    for (_, start, fit), (_, following, _) in zip(rows, rows[1:], strict=False):
        out.append(following - start - (json.loads(fit) if fit else 0.0))
    return out


def _memory_at(memory: dict[int, float], trials: int) -> float:
    """Resident memory when ``trials`` trials had finished (the nearest sample after)."""
    later = [n for n in memory if n >= trials]
    return memory[min(later)] if later else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=500)
    parser.add_argument("--sampler", default="tpe")
    parser.add_argument("--no-mlflow", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        wall, memory = _run(root, args)
        outside = _outside_training(root / "hpo_studies" / "flat.db")
    early, late = statistics.median(outside[5:15]), statistics.median(outside[-10:])
    print(f"{args.trials} trials ({args.sampler}, MLflow {'off' if args.no_mlflow else 'on'})")
    print(f"  wall time {wall:.0f} s")
    print(
        f"  outside training per trial: trials 6-15 {early * 1000:.0f} ms, last ten "
        f"{late * 1000:.0f} ms, ratio {late / early:.2f}x (target <= 1.5x)"
    )
    at10, at110 = _memory_at(memory, 10), _memory_at(memory, 110)
    print(
        f"  resident memory: trial 10 {at10:.0f} MB, trial 110 {at110:.0f} MB, growth "
        f"{at110 - at10:.0f} MB (target <= 50 MB); at the end {max(memory.values()):.0f} MB"
    )
    deciles = [statistics.median(outside[i : i + 10]) * 1000 for i in range(0, len(outside), 50)]
    print("  outside training every 50 trials (ms):", " ".join(f"{d:.0f}" for d in deciles))


if __name__ == "__main__":
    main()
