"""``study.stop_early``: a search ends once its best value has stopped improving.

The rule on real Optuna trials (pruned ones count, gains below ``min_delta`` do not), a
real study that stops, says why, keeps the reason in ``status`` and the results, stays
stopped on a resume and goes on when the rule is loosened; two worker processes sharing
the study both stop; bad settings are one ``error:`` line.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml
from helpers import REPO, run_cli, small_config, write_csv

from hpolab.config import StopEarlySection, load_config
from hpolab.search.budget import stagnation

STATES = {"c": optuna.trial.TrialState.COMPLETE, "p": optuna.trial.TrialState.PRUNED}


def _study(direction: str, trials: list[tuple[str, float | None]]) -> optuna.Study:
    study = optuna.create_study(direction=direction)
    for state, value in trials:
        study.add_trial(
            optuna.trial.create_trial(
                state=STATES[state],
                value=value if state == "c" else None,
                intermediate_values={} if state == "c" else {1: 0.0},
            )
        )
    return study


def test_the_rule_counts_pruned_trials_and_ignores_gains_below_min_delta() -> None:
    rule = StopEarlySection(patience=3, min_trials=4)
    # Best at trial 1, then two pruned and one worse: three finished trials without a gain.
    study = _study("maximize", [("c", 0.5), ("c", 0.9), ("p", None), ("p", None), ("c", 0.8)])
    reason = stagnation(study, "maximize", rule)
    assert reason is not None and "last 3 finished trials" in reason and "trial 1" in reason
    # One trial fewer: still patient.
    assert (
        stagnation(
            _study("maximize", [("c", 0.5), ("c", 0.9), ("p", None), ("p", None)]), "maximize", rule
        )
        is None
    )
    # Minimizing, a new best at the last trial resets the count.
    study = _study("minimize", [("c", 0.5), ("p", None), ("p", None), ("p", None), ("c", 0.4)])
    assert stagnation(study, "minimize", rule) is None
    # ... unless the gain is below min_delta.
    assert stagnation(study, "minimize", StopEarlySection(patience=3, min_trials=4, min_delta=0.2))
    # Fewer finished trials than min_trials, or no complete trial: never stops.
    assert stagnation(study, "minimize", StopEarlySection(patience=1, min_trials=6)) is None
    only_pruned = _study("minimize", [("p", None)] * 6)
    assert stagnation(only_pruned, "minimize", StopEarlySection(patience=1, min_trials=1)) is None


def test_stop_early_true_takes_the_defaults_and_the_cli_sets_the_patience() -> None:
    assert load_config({"study": {"stop_early": True}}).study.stop_early == StopEarlySection()
    assert load_config({"study": {"stop_early": False}}).study.stop_early is None
    assert load_config(None).study.stop_early is None
    cfg = load_config({"study": {"stop_early": True}}, stop_early=4)
    assert cfg.study.stop_early == StopEarlySection(patience=4)
    kept = load_config({"study": {"stop_early": {"min_trials": 3}}}, stop_early=4)
    assert kept.study.stop_early == StopEarlySection(patience=4, min_trials=3)


def _stalling_config(tmp_path: Path, **study: object) -> Path:
    """No trial can gain more than 10 in val_loss: the first complete trial stays the best."""
    data = write_csv(tmp_path / "d.csv")
    rule = {"patience": 2, "min_trials": 3, "min_delta": 10.0}
    (tmp_path / "root").mkdir()
    return small_config(tmp_path / "se.yaml", data, name="se", n_trials=9, stop_early=rule, **study)


def _trials(root: Path) -> list[optuna.trial.FrozenTrial]:
    url = f"sqlite:///{root / 'hpo_studies' / 'se.db'}"
    return optuna.load_study(study_name="se.mlp", storage=url).get_trials()


def test_a_stalled_search_stops_says_why_and_stays_stopped_on_resume(tmp_path: Path) -> None:
    cfg, root = _stalling_config(tmp_path), tmp_path / "root"
    first = run_cli("--config", str(cfg), "--no-mlflow", root=root, check=True)
    assert len(_trials(root)) == 3
    assert "mlp: stopped early: no gain above min_delta 10 over trial 0's" in first.stdout
    results = json.loads((root / "hpo_results" / "se" / "hpo_results_mlp.json").read_text())
    assert "last 2 finished trials" in results["stopped_early"]
    assert (root / "models" / "hpo_derived" / "se").is_dir(), "a final model all the same"
    status = subprocess.run(
        [sys.executable, "-m", "hpolab.cli.main", "status", "se", "--root", str(root)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "stopped early" in status.stdout and "3/9" in status.stdout

    again = run_cli("--config", str(cfg), "--no-mlflow", root=root, check=True)
    assert len(_trials(root)) == 3, "a resume keeps a stopped search stopped"
    assert "stopped early" in again.stdout and "new trials this run: 0" in again.stdout

    run_cli("--config", str(cfg), "--no-mlflow", "--stop-early", "4", root=root, check=True)
    assert len(_trials(root)) == 5, "a longer patience runs until it is used up"

    # With the rule off, the budget decides; the recorded reason is cleared.
    raw = yaml.safe_load(cfg.read_text())
    raw["study"]["stop_early"] = False
    cfg.write_text(yaml.safe_dump(raw))
    run_cli("--config", str(cfg), "--no-mlflow", root=root, check=True)
    assert len(_trials(root)) == 9
    status = json.loads(
        subprocess.run(
            [
                sys.executable,
                "-m",
                "hpolab.cli.main",
                "status",
                "se",
                "--root",
                str(root),
                "--json",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )["model_types"]["mlp"]
    assert status["state"] == "finished" and status["stopped_early"] is None


@pytest.mark.slow
def test_two_workers_sharing_a_study_both_stop(tmp_path: Path) -> None:
    cfg, root = _stalling_config(tmp_path), tmp_path / "root"
    proc = run_cli("--config", str(cfg), "--workers", "2", root=root, process=True, timeout=400)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    trials = _trials(root)
    # The rule fires at 3 finished trials; the other worker's trial then running finishes.
    assert 3 <= len(trials) <= 4, [t.state for t in trials]
    assert all(t.state.is_finished() for t in trials)
    assert "stopped early" in proc.stdout


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ({"patience": 0}, "study.stop_early.patience"),
        ({"patiance": 3}, "patiance"),
        ("soon", "study.stop_early"),
    ],
)
def test_a_bad_rule_is_one_error_line_and_creates_nothing(
    tmp_path: Path, setting: object, expected: str
) -> None:
    cfg, root = _stalling_config(tmp_path), tmp_path / "root"
    raw = yaml.safe_load(cfg.read_text())
    raw["study"]["stop_early"] = setting
    cfg.write_text(yaml.safe_dump(raw))
    proc = subprocess.run(
        [sys.executable, str(REPO / "run_hpo.py"), "--config", str(cfg), "--root", str(root)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and expected in lines[0], lines
    assert not any(root.iterdir())


def test_a_zero_patience_from_the_command_line_is_one_error_line(tmp_path: Path) -> None:
    cfg, root = _stalling_config(tmp_path), tmp_path / "root"
    proc = run_cli("--config", str(cfg), "--stop-early", "0", root=root)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error:") and "stop_early.patience" in proc.stderr
