"""Bad input: one readable line on stderr, exit code 2, and no damage to an existing study."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import optuna
import pytest
import yaml
from helpers import completed_in_process, run_cli, small_config, write_csv

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
    "pruner_warmup without a pruner": (
        lambda t, d: [
            "--config",
            _bad_config(t, d, lambda c: c["study"].update(pruner="none", pruner_warmup=3)),
        ],
        "study: pruner_warmup: there is no pruner to warm up",
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


def _err(proc) -> str:
    """The one ``error:`` line of a command that failed with exit 2 and no traceback."""
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


def test_a_root_or_storage_that_cannot_be_a_folder_is_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    from helpers import RUN_HPO

    data = write_csv(tmp_path / "d.csv", n=60)
    (tmp_path / "afile").write_text("")
    base = ["--data", str(data), "--target", "label", "--n-trials", "1", "--no-mlflow"]

    def run(*args: str):
        return subprocess.run(
            [sys.executable, str(RUN_HPO), *base, *args],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=300,
        )

    err = _err(run("--root", str(tmp_path / "afile")))
    assert "--root" in err and "is a file" in err
    assert "--root: cannot create '/proc/hpolab'" in _err(
        completed_in_process(run_main, *base, "--root", "/proc/hpolab", cwd=tmp_path)
    )
    elsewhere = tmp_path / "new_root"
    args = [*base, "--storage", "sqlite:////proc/x/y.db", "--root", str(elsewhere)]
    err = _err(completed_in_process(run_main, *args, cwd=tmp_path))
    assert "study.storage" in err and not elsewhere.exists()  # nothing made


def test_fetch_to_a_file_is_one_line(workspace: dict, tmp_path: Path) -> None:
    from hpolab.cli.main import main

    (tmp_path / "dest").write_text("keep me")
    proc = completed_in_process(
        main, "fetch", STUDY, "--dest", str(tmp_path / "dest"), "--root", str(workspace["root"])
    )
    assert "--dest" in _err(proc) and (tmp_path / "dest").read_text() == "keep me"


def test_reset_refuses_a_symlinked_results_folder_and_keeps_everything(tmp_path: Path) -> None:
    data = write_csv(tmp_path / "d.csv", n=60)
    cfg = small_config(tmp_path / "c.yaml", data, name="linked", n_trials=1)
    run_cli("--config", str(cfg), "--no-mlflow", root=tmp_path, check=True)
    results = tmp_path / "hpo_results" / "linked"
    target = tmp_path / "elsewhere"
    results.rename(target)
    results.symlink_to(target)
    before = sorted(p.name for p in target.rglob("*"))
    err = _err(run_cli("--config", str(cfg), "--no-mlflow", "--reset", root=tmp_path))
    assert err.startswith("error: --reset:") and "symbolic link" in err
    assert sorted(p.name for p in target.rglob("*")) == before
    storage = f"sqlite:///{tmp_path / 'hpo_studies' / 'linked.db'}"
    assert len(optuna.load_study(study_name="linked.mlp", storage=storage).trials) == 1
