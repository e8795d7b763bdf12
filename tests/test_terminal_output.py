"""What a user reads in a terminal or a log: progress lines, quiet libraries, tables at
80 columns, commands that answer without TensorFlow."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import optuna
import pytest
from helpers import REPO, completed_in_process, small_config, write_csv
from rich.console import Console

from hpolab.progress import QuietReporter, Reporter, RichReporter

STUDY = "term"
N_TRIALS = 3


# --- progress without a terminal -------------------------------------------------------


def _run_with_reporter(tmp_path: Path, reporter: Reporter) -> optuna.Study:
    """A real Optuna study (SQLite) whose callback reports each trial as the search loop
    does: ``trial_done`` with the count, ``trial_finished`` with the trial's data."""

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -1.0, 1.0)
        if trial.number == 1:
            raise optuna.TrialPruned()
        if trial.number == 2:
            raise ValueError("diverged")
        return x * x

    def best_or_none(study: optuna.Study) -> float | None:
        try:
            return float(study.best_value)
        except ValueError:
            return None

    def on_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        # The call src/hpolab/search/loop.py makes in its own on_trial callback.
        reporter.trial_finished(
            "mlp",
            trial.number,
            trial.state.name.lower(),
            trial.value,
            best_or_none(study),
            trial.duration.total_seconds() if trial.duration else None,
        )
        reporter.trial_done("mlp", len(study.trials), best_or_none(study))

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(
        storage=f"sqlite:///{tmp_path / 'progress.db'}",
        sampler=optuna.samplers.RandomSampler(seed=0),
    )
    reporter.start("mlp", 4, 0)
    study.optimize(objective, n_trials=4, catch=(ValueError,), callbacks=[on_trial])
    reporter.stop()
    return study


def test_without_a_terminal_each_finished_trial_is_one_plain_line(tmp_path: Path) -> None:
    out = io.StringIO()
    console = Console(file=out, width=80)
    assert not console.is_terminal
    study = _run_with_reporter(tmp_path, RichReporter(console))
    lines = out.getvalue().splitlines()
    assert lines[0] == "mlp: 0/4 trials done, searching"
    trial_lines = lines[1:]
    assert len(trial_lines) == 4, lines  # one per trial, and no bar drawn at the end
    for trial, line in zip(study.trials, trial_lines, strict=True):
        assert line.startswith("mlp ") and f"trial {trial.number:>3}" in line, line
        assert trial.state.name.lower() in line, line
        assert line.rstrip().endswith("s"), line  # the duration
        assert "\x1b" not in line and "━" not in line  # plain text for a log
    assert "complete" in trial_lines[0] and f"value {study.trials[0].value:.4g}" in trial_lines[0]
    assert "pruned" in trial_lines[1] and "value -" in trial_lines[1]
    assert "fail" in trial_lines[2]
    best = f"best {study.best_value:.4g}"
    assert best in trial_lines[-1]


def test_on_a_terminal_the_bar_shows_progress_without_trial_lines(tmp_path: Path) -> None:
    out = io.StringIO()
    console = Console(file=out, width=100, force_terminal=True)
    _run_with_reporter(tmp_path, RichReporter(console))
    shown = out.getvalue()
    assert "4/4" in shown and "trials  best" in shown
    assert "trial   0" not in shown and "searching" not in shown


def test_quiet_reporter_takes_trial_results_silently(tmp_path: Path, capsys) -> None:
    _run_with_reporter(tmp_path, QuietReporter())
    assert capsys.readouterr().out == ""


# --- library noise ---------------------------------------------------------------------


# What TensorFlow 2.21 writes to descriptor 2 while it is imported, and what must stay.
NOISY_LINES = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1795493376.147140   16126 port.cc:153] oneDNN custom operations are on.",
    "W0000 00:00:1795493376.2   16126 cuda.cc:12] no GPU found",
    "E0000 00:00:1795493376.3   16126 io.cc:7] a real error",
    "plain text a library wrote",
]
_NOISE_BYTES = ("\n".join(NOISY_LINES) + "\n").encode()
NOISY_MODULE = f"import os\nos.write(2, {_NOISE_BYTES!r})\n"


def _python(code: str, cwd: Path, *path: Path) -> subprocess.CompletedProcess:
    env_path = ":".join(str(p) for p in path)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": env_path, "HOME": str(cwd)},
        timeout=300,
    )


@pytest.mark.parametrize("verbose", [False, True])
def test_native_start_up_lines_are_dropped_unless_verbose(tmp_path: Path, verbose) -> None:
    (tmp_path / "noisy_native.py").write_text(NOISY_MODULE)
    proc = _python(
        f"""
        from hpolab.cli.common import quiet_libraries
        from hpolab.cli.native_noise import filter_import
        quiet_libraries({verbose})
        if not {verbose}:
            filter_import("noisy_native")
        import noisy_native
        print("imported")
        """,
        tmp_path,
        tmp_path,
        REPO / "src",
    )
    assert proc.returncode == 0 and proc.stdout == "imported\n", proc.stderr
    assert proc.stderr.splitlines()[-2:] == NOISY_LINES[-2:]  # errors and the rest are kept
    noisy = "absl::InitializeLog" in proc.stderr and "port.cc:153" in proc.stderr
    assert noisy == verbose and ("cuda.cc" in proc.stderr) == verbose


def test_importing_tensorflow_after_quiet_libraries_prints_nothing(tmp_path: Path) -> None:
    proc = _python(
        """
        from hpolab.cli.common import quiet_libraries
        quiet_libraries()
        import keras  # imports TensorFlow, as the training core does
        import tensorflow as tf
        print(type(tf.__spec__.loader).__name__)
        """,
        tmp_path,
        REPO / "src",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "SourceFileLoader"  # the real loader is left in place
    assert "I0000" not in proc.stderr and "absl" not in proc.stderr, proc.stderr


# --- a real small study ----------------------------------------------------------------


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201 - (root, StudyResult)
    """A study of mlp and random_forest, then one failed mlp trial over its budget."""
    import hpolab

    root = tmp_path_factory.mktemp("term")
    config = small_config(root / "study.yaml", write_csv(root / "data.csv"), name=STUDY)
    result = hpolab.run_study(
        config,
        root=root,
        track=False,
        quiet=True,
        n_trials=N_TRIALS,
        epochs=1,
        models="mlp,random_forest",
    )
    # A configuration that failed and was run again: one more trial than the budget.
    stored = optuna.load_study(
        study_name=f"{STUDY}.mlp", storage=f"sqlite:///{root / 'hpo_studies' / f'{STUDY}.db'}"
    )
    stored.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL))
    return root, result


def hpolab_cli(root: Path, *args: str) -> subprocess.CompletedProcess:
    """``hpolab ARGS --root ROOT`` in this process, laid out for an 80-column window."""
    from hpolab.cli.main import main

    return completed_in_process(main, *args, "--root", str(root), cwd=root, columns=80)


def _readable_at_80(text: str) -> None:
    assert text.strip()
    assert "…" not in text, text  # no header or value cut short
    # Paths (storage, files) are printed whole, never broken: only they may be longer.
    lines = [line for line in text.splitlines() if "/" not in line or "│" in line]
    assert max(len(line) for line in lines) <= 80, text


def test_status_is_readable_at_80_columns_and_never_over_budget(study) -> None:
    root, _ = study
    proc = hpolab_cli(root, "status", STUDY)
    assert proc.returncode == 0, proc.stderr
    _readable_at_80(proc.stdout)
    for header in ("model", "done", "c/p/f/r", "best", "trial", "spent", "ETA", "state"):
        assert f" {header} " in proc.stdout, header
    assert "c/p/f/r: complete/pruned/failed/running" in proc.stdout
    table = "\n".join(line for line in proc.stdout.splitlines() if "│" in line)
    assert f"{N_TRIALS}/{N_TRIALS}" in table and f"{N_TRIALS + 1}/" not in table
    raw = json.loads(hpolab_cli(root, "status", STUDY, "--json").stdout)
    # Counted as the budget counts: a trial failed by a crash (no error) does not use it.
    assert raw["model_types"]["mlp"]["trials_done"] == N_TRIALS
    assert raw["model_types"]["mlp"]["fail"] == 1  # and the state counts stay exact


def test_studies_never_shows_more_done_than_planned(study) -> None:
    root, _ = study
    proc = hpolab_cli(root, "studies")
    assert proc.returncode == 0, proc.stderr
    _readable_at_80(proc.stdout)
    assert f"{N_TRIALS + 1}/{N_TRIALS}" not in proc.stdout
    assert proc.stdout.count(f"{N_TRIALS}/{N_TRIALS}") == 2  # mlp and random_forest


def test_trials_compare_and_best_are_readable_at_80_columns(study) -> None:
    root, _ = study
    trials = hpolab_cli(root, "trials", STUDY)
    _readable_at_80(trials.stdout)
    assert "learning_rate=" in trials.stdout and "hidden_layers=" in trials.stdout
    compared = hpolab_cli(root, "compare", STUDY, STUDY)
    _readable_at_80(compared.stdout)
    assert "c/p/f: complete/pruned/failed" in compared.stdout
    assert f"{N_TRIALS + 1}/" not in compared.stdout
    best = hpolab_cli(root, "best", STUDY)
    assert best.returncode == 0, best.stderr
    # Paths are never broken across lines: the terminal wraps them, whole, for copying.
    final = next(line for line in best.stdout.splitlines() if "final model:" in line)
    assert final.split("final model: ")[1].split(" (trial")[0].endswith(".keras"), final


def test_study_summary_marks_the_best_model_type_with_a_legend(study) -> None:
    from hpolab.cli.run import summary_table

    _, result = study
    out = io.StringIO()
    Console(file=out, width=80).print(summary_table(result))
    text = out.getvalue()
    _readable_at_80(text)
    assert f"{result.best_model_type} *" in text
    assert "* the model type with the lowest val_loss" in text


def test_parent_run_description_explains_its_mark() -> None:
    from hpolab.reporting.summary import ModelTypeSummary, study_markdown

    def summary(mt: str, best: float) -> ModelTypeSummary:
        return ModelTypeSummary(
            STUDY, mt, "val_loss", "minimize", "tpe", "none", best, 0, {}, {}, 1, {}, {}, []
        )

    both = study_markdown({"mlp": summary("mlp", 0.5), "cnn1d": summary("cnn1d", 0.2)})
    assert "| cnn1d \\* |" in both and "| mlp |" in both
    assert both.endswith("\\* the model type with the lowest val_loss")
    alone = study_markdown({"mlp": summary("mlp", 0.5)})
    assert "*" not in alone.replace("**val_loss**", "")


# --- commands that do not train --------------------------------------------------------

PROBE = """
import contextlib, io, sys
sys.argv = {argv!r}
from {module} import main
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    code = main()
HEAVY = ("tensorflow", "keras", "mlflow", "sklearn", "matplotlib", "optuna", "sqlalchemy")
heavy = sorted(m for m in HEAVY if m in sys.modules)
print(code, ",".join(heavy) or "none")
"""


def _probe(root: Path, module: str, *argv: str) -> tuple[str, str]:
    """Run a command's ``main`` in a fresh interpreter; its exit code and heavy imports."""
    code = PROBE.format(argv=["prog", *argv, "--root", str(root)], module=module)
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=root, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    exit_code, heavy = proc.stdout.split()
    return exit_code, heavy


@pytest.mark.parametrize(
    "command",
    [
        ("studies",),
        ("status", STUDY),
        ("best", STUDY),
        ("trials", STUDY),
        ("compare", STUDY, STUDY),
        ("delete", "nope", "--yes"),
    ],
    ids=lambda c: c[0],
)
def test_commands_that_do_not_train_never_import_tensorflow(study, command) -> None:
    root, _ = study
    exit_code, heavy = _probe(root, "hpolab.cli.main", *command)
    assert exit_code == ("2" if command[0] == "delete" else "0")
    assert heavy == "none"


def test_deleting_a_study_never_imports_tensorflow(tmp_path: Path) -> None:
    """A real deletion (the study's storage, results and MLflow experiment) loads no
    TensorFlow or Keras: it has no model to build."""
    import optuna

    from hpolab.config import StudyConfig
    from hpolab.search.storage import set_meta

    db = tmp_path / "hpo_studies" / "gone.db"
    db.parent.mkdir()
    study = optuna.create_study(study_name="gone.mlp", storage=f"sqlite:///{db}")
    cfg = {"study": {"name": "gone"}, "data": {"source": "builtin:leak"}, "models": {"mlp": {}}}
    set_meta(study, {"config": StudyConfig.model_validate(cfg).model_dump(mode="json")})
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=2)
    exit_code, heavy = _probe(tmp_path, "hpolab.cli.main", "delete", "gone", "--yes")
    assert exit_code == "0"
    assert "tensorflow" not in heavy.split(",") and "keras" not in heavy.split(","), heavy
    assert optuna.study.get_all_study_names(f"sqlite:///{db}") == [] or not db.exists()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("epochs: 3", "epochs: three"), "training.epochs"),
        (("batch_size: 32", "batch_sise: 32"), "unknown key"),
    ],
    ids=["wrong type", "unknown key"],
)
def test_config_errors_are_reported_without_tensorflow(tmp_path: Path, change, expected) -> None:
    good = small_config(tmp_path / "good.yaml", write_csv(tmp_path / "data.csv"))
    bad = tmp_path / "bad.yaml"
    bad.write_text(good.read_text().replace(*change))
    exit_code, heavy = _probe(tmp_path, "hpolab.cli.run", "--config", str(bad))
    assert (exit_code, heavy) == ("2", "none")
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", str(REPO / "run_hpo.py"), "--config", str(bad)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert proc.returncode == 2 and "error: " in proc.stderr and "bad.yaml" in proc.stderr
    assert expected in proc.stderr
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    assert "optuna" not in imported and "tensorflow" not in imported and "keras" not in imported
