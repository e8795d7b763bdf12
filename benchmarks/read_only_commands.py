"""Wall time of the commands that only read a study, against a bare Optuna load.

    python benchmarks/read_only_commands.py [--trials 60] [--rounds 5]

Builds a study of ``--trials`` trials in a temporary root (Optuna only, no training: the
commands read the same tables either way), then times, interleaved round by round, each of
``hpolab studies / status / best / trials / compare`` and a config error, next to a Python
process that only imports Optuna and loads the study (what any Optuna-based reader pays).
Prints the median and the worst of each, and the ratio to the bare Optuna load.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STUDY = "bench"


def _make_study(root: Path, n_trials: int) -> None:
    import optuna

    from hpolab.config import StudyConfig
    from hpolab.search.storage import set_meta

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    db = root / "hpo_studies" / f"{STUDY}.db"
    db.parent.mkdir(parents=True)
    study = optuna.create_study(study_name=f"{STUDY}.mlp", storage=f"sqlite:///{db}")
    cfg = {
        "study": {"name": STUDY, "n_trials": n_trials},
        "data": {"source": "builtin:leak"},
        "models": {"mlp": {}},
    }
    set_meta(study, {"config": StudyConfig.model_validate(cfg).model_dump(mode="json")})

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("learning_rate", 1e-4, 1e-2, log=True)
        trial.suggest_float("dropout", 0.0, 0.5)
        for epoch in range(1, 21):
            trial.report(x * epoch, epoch)
        trial.set_user_attr("val_metrics", {"val_loss": x})
        trial.set_user_attr("epochs_run", 20)
        return x

    study.optimize(objective, n_trials=n_trials)


def _commands(root: Path) -> dict[str, list[str]]:
    hpolab = [sys.executable, "-m", "hpolab.cli.main"]
    bad = root / "bad.yaml"
    bad.write_text("study:\n  name: x\n  n_trails: 3\n")
    load = (
        "import optuna; optuna.load_study(study_name='bench.mlp', "
        f"storage='sqlite:///{root / 'hpo_studies' / 'bench.db'}').get_trials()"
    )
    return {
        "optuna import + load_study": [sys.executable, "-c", load],
        "hpolab studies": [*hpolab, "studies"],
        "hpolab status": [*hpolab, "status", STUDY],
        "hpolab best": [*hpolab, "best", STUDY],
        "hpolab trials": [*hpolab, "trials", STUDY],
        "hpolab compare": [*hpolab, "compare", STUDY, STUDY],
        "config error": [sys.executable, "run_hpo.py", "--config", str(bad)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    repo = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _make_study(root, args.trials)
        commands = _commands(root)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.rounds):
            for name, argv in commands.items():
                start = time.perf_counter()
                proc = subprocess.run(
                    [*argv, "--root", str(root)] if "hpolab" in name else argv,
                    capture_output=True,
                    cwd=repo,
                )
                times[name].append(time.perf_counter() - start)
                if proc.returncode not in (0, 2):
                    sys.exit(f"{name} failed:\n{proc.stderr.decode()[-2000:]}")
    base = statistics.median(times["optuna import + load_study"])
    print(f"{args.trials} trials, {args.rounds} rounds interleaved; seconds (median, worst)")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:<28} {median:6.3f}  {max(values):6.3f}   {median / base:4.2f}x")


if __name__ == "__main__":
    main()
