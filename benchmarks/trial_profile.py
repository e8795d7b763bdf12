"""Where a trial's time outside training goes: the race's study under cProfile.

    python benchmarks/trial_profile.py [--trials 20] [--seed 0] [--no-mlflow] [--save FILE]

Runs the race's study (``benchmarks/race.py``: ``builtin:digits``, an MLP of two dense
layers, TPE, median pruning, up to 30 epochs, MLflow on) in this process under cProfile,
in a temporary root, and prints the cumulative milliseconds per trial of the calls that
make up a trial's bookkeeping (sampling, pruning reports, storage and MLflow writes, Keras
clean-up), next to the time inside ``model.fit``. The profiler itself slows Python code, so
compare the parts with each other rather than with an unprofiled run.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from race import STUDY, write_config  # noqa: E402

# (label, file suffix, first line or None, function name): cumulative time, per trial.
LIBRARY_PARTS = [
    ("whole trial (Optuna _run_trial)", "optuna/study/_optimize.py", "_run_trial"),
    ("model.fit", "keras/src/backend/tensorflow/trainer.py", "fit"),
    ("TPE sampling (ask + suggest)", "optuna/study/study.py", "ask"),
    ("  should_prune", "optuna/trial/_trial.py", "should_prune"),
    ("trial user attributes, one at a time", "optuna/trial/_trial.py", "set_user_attr"),
    ("Optuna tell", "optuna/study/_tell.py", "_tell_with_warning"),
]


def own_parts() -> list[tuple[str, object]]:
    """hpolab's functions by object (several share a name, e.g. ``__call__``)."""
    from hpolab.models import build_model
    from hpolab.search.loop import _TrialEnded
    from hpolab.search.objective import PruningHook
    from hpolab.search.storage import write_user_attrs
    from hpolab.tracking.mlflow_tracker import StudyTracker, TrialRun
    from hpolab.training.fit import clear_keras
    from hpolab.training.resume import ResumeCheckpoint

    return [
        ("pruning hook (report + should_prune)", PruningHook.__call__),
        ("trial outcome attributes, one write", write_user_attrs),
        ("MLflow trial run start", StudyTracker.start_trial),
        ("MLflow epoch flushes", TrialRun.flush),
        ("MLflow trial run end", TrialRun.end),
        ("after-trial callback", _TrialEnded.__call__),
        ("clear_keras", clear_keras),
        ("model building", build_model),
        ("resume checkpoint saves", ResumeCheckpoint.save),
    ]


def cumulative(stats: pstats.Stats, match: object) -> float:
    """Seconds inside the functions ``match`` selects: a function, or (suffix, name)."""
    total = 0.0
    for (path, line, name), row in stats.stats.items():  # type: ignore[attr-defined]
        if callable(match):
            code = getattr(match, "__wrapped__", match).__code__
            hit = (path, line, name) == (code.co_filename, code.co_firstlineno, code.co_name)
        else:
            hit = name == match[1] and path.endswith(match[0])
        total += row[3] if hit else 0.0
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-mlflow", action="store_true")
    parser.add_argument("--save", metavar="FILE", help="also write the profile (pstats) here")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from hpolab.cli.run import main as run_main

    with tempfile.TemporaryDirectory(prefix="profile-") as tmp:
        root = Path(tmp)
        config = write_config(root / "race.yaml", args.seed, args.trials)
        argv = ["--config", str(config), "--root", str(root), "--quiet", "--no-plots"]
        argv += ["--no-mlflow"] if args.no_mlflow else []
        profile = cProfile.Profile()
        profile.runcall(run_main, argv)
        results = json.loads((root / "hpo_results" / STUDY / "hpo_results_mlp.json").read_text())
    stats = pstats.Stats(profile)
    if args.save:
        stats.dump_stats(args.save)
    per_trial = 1000 / args.trials
    print(f"{args.trials} trials; last_run_timing: {json.dumps(results.get('last_run_timing'))}")
    parts = [(label, (suffix, name)) for label, suffix, name in LIBRARY_PARTS] + own_parts()
    for label, match in parts:
        print(f"{label:40s} {per_trial * cumulative(stats, match):8.1f} ms per trial")


if __name__ == "__main__":
    main()
