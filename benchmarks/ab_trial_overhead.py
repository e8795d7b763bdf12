"""Per-trial time outside training of two checkouts, interleaved (A B A B) in one run.

    python benchmarks/ab_trial_overhead.py OLD_CHECKOUT NEW_CHECKOUT [--rounds 2] [--seed 0]

Each round runs the race's study (``benchmarks/race.py``: ``builtin:digits``, an MLP of two
dense layers, 20 TPE trials of up to 30 epochs, median pruning, MLflow on) with each
checkout's ``run_hpo.py`` and its ``src/`` first on the path, in a fresh temporary root,
and reads ``last_run_timing`` from its results. It prints, per run and as medians: search
and training seconds, time outside training per trial and as a share of the search, and
the NEW/OLD ratio of the time outside training per trial.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from race import ENV, STUDY, machine, write_config  # noqa: E402


def run(checkout: Path, cfg: Path, root: Path) -> dict[str, float]:
    """One study with ``checkout``'s code in ``root``: its timing per trial."""
    env = {**ENV, "PYTHONPATH": str(checkout / "src")}
    command = [sys.executable, str(checkout / "run_hpo.py"), "--config", str(cfg)]
    with open(root / "out.txt", "w") as out:
        proc = subprocess.run(
            [*command, "--root", str(root)], stdout=out, stderr=subprocess.STDOUT, env=env
        )
    if proc.returncode != 0:
        raise SystemExit(f"{checkout} failed:\n{(root / 'out.txt').read_text()[-3000:]}")
    results = json.loads((root / "hpo_results" / STUDY / "hpo_results_mlp.json").read_text())
    timing = results["last_run_timing"]
    outside = float(timing["bookkeeping_seconds"])
    return {
        "search": float(timing["search_seconds"]),
        "training": float(timing["training_seconds"]),
        "per_trial_ms": 1000 * outside / max(1, int(timing["new_trials"])),
        "share": outside / float(timing["search_seconds"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    machine("start")
    runs: dict[str, list[dict[str, float]]] = {"old": [], "new": []}
    with tempfile.TemporaryDirectory() as tmp:
        cfg = write_config(Path(tmp) / "race.yaml", args.seed, 20)
        for index in range(args.rounds):
            for side in ("old", "new"):
                root = Path(tmp) / f"{side}{index}"
                root.mkdir()
                result = run(getattr(args, side).resolve(), cfg, root)
                runs[side].append(result)
                print(
                    f"  round {index} {side}: search {result['search']:.1f}s, training "
                    f"{result['training']:.1f}s, outside training {result['per_trial_ms']:.0f} "
                    f"ms/trial ({100 * result['share']:.1f}%)",
                    flush=True,
                )
    mid = {s: statistics.median(r["per_trial_ms"] for r in runs[s]) for s in runs}
    share = {s: statistics.median(r["share"] for r in runs[s]) for s in runs}
    print(
        f"== outside training per trial (medians): old {mid['old']:.0f} ms "
        f"({100 * share['old']:.1f}%), new {mid['new']:.0f} ms ({100 * share['new']:.1f}%); "
        f"new/old {mid['new'] / mid['old']:.2f}"
    )
    machine("end")


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    main()
