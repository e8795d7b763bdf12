"""Bad input: one readable line on stderr, exit code 2, and no damage to an existing study."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import optuna
import pytest
import yaml
from helpers import small_config, write_csv

from hpolab.cli.run import main as run_main

STUDY = "keep"
# One worker runs the whole module: its tests share the study made by the fixture.
pytestmark = pytest.mark.xdist_group(name="cli_errors")


# Session scope: with tests of other modules interleaved on the worker, a module-scoped
# fixture would be torn down and built again; the xdist group keeps it on one worker.
@pytest.fixture(scope="session")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """An existing finished study that every bad command below must leave untouched."""
    import hpolab

    root = tmp_path_factory.mktemp("ws")
    data = write_csv(root / "data.csv")
    cfg = small_config(root / "good.yaml", data, name=STUDY, n_trials=2)
    hpolab.run_study(cfg, root=root, quiet=True)
    return {"root": root, "data": data, "config": cfg}


def _snapshot(root: Path) -> dict:
    storage = f"sqlite:///{root / 'hpo_studies' / f'{STUDY}.db'}"
    study = optuna.load_study(study_name=f"{STUDY}.mlp", storage=storage)
    files = sorted(p for p in (root / "models").rglob("*") if p.is_file())
    files += sorted(p for p in (root / "hpo_results").rglob("*") if p.is_file())
    return {
        "trials": [(t.number, t.state.name, t.value, t.params) for t in study.trials],
        "files": {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files},
    }


def _write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def _bad_config(tmp: Path, data: Path, mutate) -> str:
    cfg = yaml.safe_load(small_config(tmp / "base.yaml", data, name=STUDY).read_text())
    mutate(cfg)
    return _write(tmp / "bad.yaml", yaml.safe_dump(cfg))


CASES = {
    "unknown config key": (
        lambda t, d: ["--config", _bad_config(t, d, lambda c: c["study"].update(n_trial=3))],
        "study.n_trial: unknown key; did you mean 'n_trials'?",
    ),
    "unknown sampler": (
        lambda t, d: ["--config", _bad_config(t, d, lambda c: None), "--sampler", "bayes"],
        "study.sampler",
    ),
    "missing target column": (
        lambda t, d: ["--data", str(d), "--target", "nope", "--study-name", STUDY],
        "column 'nope' not found",
    ),
    "empty csv": (
        lambda t, d: [
            "--data",
            _write(t / "empty.csv", ""),
            "--target",
            "label",
            "--study-name",
            STUDY,
        ],
        "is empty",
    ),
    "non-numeric feature": (
        lambda t, d: [
            "--data",
            _write(t / "text.csv", "a,b,label\n" + "x,1,0\n" * 20),
            "--target",
            "label",
            "--study-name",
            STUDY,
        ],
        "column 'a'",
    ),
    "study name with ../": (
        lambda t, d: ["--config", _bad_config(t, d, lambda c: None), "--study-name", "../evil"],
        "study.name",
    ),
    "study name with /": (
        lambda t, d: ["--config", _bad_config(t, d, lambda c: None), "--study-name", "a/b"],
        "study.name",
    ),
    "study name with a trailing newline": (
        lambda t, d: ["--config", _bad_config(t, d, lambda c: None), "--study-name", "nl\n"],
        "study.name",
    ),
    "loss that does not exist": (
        lambda t, d: [
            "--config",
            _bad_config(t, d, lambda c: c["training"].update(loss="leak_awre_loss")),
        ],
        "training.loss: unknown loss 'leak_awre_loss'",
    ),
    "n_trials 0": (
        lambda t, d: ["--config", _bad_config(t, d, lambda c: None), "--n-trials", "0"],
        "study.n_trials",
    ),
    "log range with low <= 0": (
        lambda t, d: [
            "--config",
            _bad_config(
                t,
                d,
                lambda c: c["models"]["mlp"]["search_space"].update(
                    learning_rate={"low": 0.0, "high": 0.1, "log": True}
                ),
            ),
        ],
        "log range needs low > 0",
    ),
    "low above high": (
        lambda t, d: [
            "--config",
            _bad_config(
                t,
                d,
                lambda c: c["models"]["mlp"]["search_space"].update(units={"low": 64, "high": 8}),
            ),
        ],
        "must be <= high",
    ),
    "unknown model type": (
        lambda t, d: ["--config", _bad_config(t, d, lambda c: c["models"].update(transformer={}))],
        "unknown model type 'transformer'",
    ),
    "unknown search parameter": (
        lambda t, d: [
            "--config",
            _bad_config(
                t, d, lambda c: c["models"]["mlp"]["search_space"].update(dropuot=[0.1, 0.2])
            ),
        ],
        "dropuot",
    ),
    "metric does not fit the task": (
        lambda t, d: ["--config", _bad_config(t, d, lambda c: None), "--metric", "val_rmse"],
        "does not apply to classification",
    ),
    "missing config file": (lambda t, d: ["--config", str(t / "nope.yaml")], "does not exist"),
    "missing data file": (
        lambda t, d: ["--data", str(t / "nope.csv"), "--target", "label"],
        "does not exist",
    ),
    "yaml syntax error": (
        lambda t, d: ["--config", _write(t / "broken.yaml", "study: {name: x\n  bad")],
        "YAML syntax error",
    ),
    "grid over a float range without step": (
        lambda t, d: ["--config", _bad_config(t, d, lambda c: None), "--sampler", "grid"],
        "grid search needs finite values",
    ),
    "bad storage url": (
        lambda t, d: [
            "--config",
            _bad_config(t, d, lambda c: None),
            "--study-name",
            "other",
            "--storage",
            "nosuchdb://x",
        ],
        "--storage",
    ),
    "non-integer n-trials flag": (
        lambda t, d: ["--n-trials", "many"],
        "--n-trials",
    ),
    "resume with another metric": (
        lambda t, d: [
            "--config",
            _bad_config(t, d, lambda c: c["study"].update(metric="val_accuracy")),
        ],
        "different metric",
    ),
    "resume with another data file": (
        lambda t, d: [
            "--config",
            _bad_config(t, write_csv(t / "other.csv", seed=5), lambda c: None),
        ],
        "different data fingerprint",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_clear_line_and_exit_2(
    case: str, workspace: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _snapshot(workspace["root"])
    make_args, expected = CASES[case]
    args = make_args(tmp_path, workspace["data"]) + ["--root", str(workspace["root"]), "-q"]
    try:
        code = run_main(args)
    except SystemExit as exc:  # argparse errors
        code = exc.code
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.startswith("error: ") and "\n" not in err, err
    assert "Traceback" not in err
    assert expected in err, err
    assert _snapshot(workspace["root"]) == before


def test_at_least_ten_bad_inputs_are_covered() -> None:
    assert len(CASES) >= 10


def test_results_json_is_valid_after_bad_inputs(workspace: dict) -> None:
    path = workspace["root"] / "hpo_results" / STUDY / "hpo_results_mlp.json"
    assert json.loads(path.read_text())["n_trials"] == 2
