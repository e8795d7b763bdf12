"""Chaos: a study killed (SIGKILL) again and again at random moments, then finished.

The kills land wherever the run happens to be: start-up, training, the final retrain, the
final model's MLflow logging, the plots. Whatever they hit, the finished study must have
lost no completed trial, left nothing running in Optuna or MLflow, made exactly one final
run and one registered version per model type, left no temporary file, and spent its
whole budget. ``HPOLAB_CHAOS_KILLS`` (default 4, the reduced form CI runs) and
``HPOLAB_CHAOS_SEED`` choose how many kills and when.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml
from helpers import RUN_HPO, small_config, write_csv
from mlflow.tracking import MlflowClient

import hpolab
from hpolab.layout import is_temp_file

pytestmark = pytest.mark.slow

KILLS = int(os.environ.get("HPOLAB_CHAOS_KILLS", "4"))
SEED = int(os.environ.get("HPOLAB_CHAOS_SEED", "7"))
MODEL_TYPES = ("mlp", "random_forest")
N_TRIALS = 4


def _config(tmp_path: Path) -> Path:
    config = small_config(tmp_path / "c.yaml", write_csv(tmp_path / "d.csv", n=200), "chaos")
    raw = yaml.safe_load(config.read_text())
    raw["study"].update(n_trials=N_TRIALS, plots=True, heartbeat_interval=2, grace_period=6)
    raw["training"].update(epochs=6, patience=6)
    raw["models"]["random_forest"] = {"search_space": {"n_estimators": [10, 20]}}
    config.write_text(yaml.safe_dump(raw))
    return config


def _start(config: Path, root: Path) -> subprocess.Popen:
    log = (root / "run.log").open("a")
    return subprocess.Popen(
        [sys.executable, str(RUN_HPO), "--config", str(config), "--root", str(root), "-q"],
        cwd=root,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def _completed(storage: str) -> set[tuple[str, int]]:
    names = {s.study_name for s in optuna.get_all_study_summaries(storage)}
    return {
        (mt, t.number)
        for mt in MODEL_TYPES
        if f"chaos.{mt}" in names
        for t in optuna.load_study(study_name=f"chaos.{mt}", storage=storage).trials
        if t.state == optuna.trial.TrialState.COMPLETE
    }


def test_random_kills_lose_nothing_and_leave_nothing_behind(tmp_path: Path) -> None:
    config = _config(tmp_path)
    storage = f"sqlite:///{tmp_path / 'hpo_studies' / 'chaos.db'}"
    rng = random.Random(SEED)
    kills, runs, seen = 0, 0, set()
    while kills < KILLS and runs < 4 * KILLS:  # a run may finish before its kill
        runs += 1
        proc = _start(config, tmp_path)
        try:
            proc.wait(timeout=rng.uniform(2.0, 25.0))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            kills += 1
        if (tmp_path / "hpo_studies" / "chaos.db").exists():
            completed = _completed(storage)
            assert seen <= completed, f"completed trials lost: {sorted(seen - completed)}"
            seen = completed
    final = _start(config, tmp_path)
    assert final.wait(timeout=600) == 0, (tmp_path / "run.log").read_text()[-3000:]
    print(f"chaos: {kills} kills in {runs} runs, seed {SEED}")
    assert kills == KILLS

    for mt in MODEL_TYPES:
        trials = optuna.load_study(study_name=f"chaos.{mt}", storage=storage).trials
        states = [t.state for t in trials]
        assert optuna.trial.TrialState.RUNNING not in states, mt
        assert states.count(optuna.trial.TrialState.COMPLETE) == N_TRIALS, mt  # whole budget
    assert seen <= _completed(storage)

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("chaos")
    runs = client.search_runs([experiment.experiment_id])
    assert not [r.info.run_name for r in runs if r.info.status == "RUNNING"]
    finals = [r for r in runs if r.data.tags.get("hpolab.role") == "final_model"]
    assert sorted(r.data.tags["hpolab.model_type"] for r in finals) == sorted(MODEL_TYPES)
    for mt in MODEL_TYPES:
        versions = client.search_model_versions(f"name = 'chaos-{mt}'")
        assert [v.tags["hpolab.model_type"] for v in versions] == [mt]

    leftovers = [p for p in tmp_path.rglob("*") if is_temp_file(p)]
    assert not leftovers, leftovers
    # Trials resumed from their checkpoints; none is left once the study is done.
    assert not list((tmp_path / "hpo_results").rglob("resume")), "resume points left behind"
    resumed = [
        t.number
        for t in optuna.load_study(study_name="chaos.mlp", storage=storage).trials
        if "resumed_from_epoch" in t.user_attrs
    ]
    print(f"chaos: mlp trials resumed from a checkpoint: {resumed}")
    for mt in MODEL_TYPES:
        model = hpolab.load_final_model("chaos", mt, root=tmp_path)
        assert model.metadata["mlflow_run_id"] in {r.info.run_id for r in finals}
        json.loads((tmp_path / "hpo_results" / "chaos" / f"hpo_results_{mt}.json").read_text())
    json.loads((tmp_path / "hpo_results" / "chaos" / "hpo_combined_results.json").read_text())
