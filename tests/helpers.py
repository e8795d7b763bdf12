"""Helpers shared by tests: small data files and running the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
RUN_HPO = REPO / "run_hpo.py"


def write_csv(
    path: Path, n: int = 160, seed: int = 0, labels: tuple[str, str] = ("no", "yes")
) -> Path:
    """A small learnable binary classification CSV with string labels."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    y = (X[:, 0] + 0.5 * X[:, 1] + 0.3 * rng.normal(size=n) > 0).astype(int)
    lines = ["f1,f2,f3,f4,label"]
    lines += [
        ",".join(f"{v:.5f}" for v in row) + f",{labels[t]}" for row, t in zip(X, y, strict=True)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def run_cli(
    *args: str,
    root: Path,
    timeout: float = 600,
    check: bool = False,
    process: bool = False,
) -> subprocess.CompletedProcess:
    """Run ``python run_hpo.py ARGS --root ROOT`` from ``ROOT``, capturing output.

    By default the command's ``main(argv)`` runs in this process (from ``ROOT`` as the
    working directory), the same code path as the script without a new interpreter and
    TensorFlow import per call. ``process=True`` starts the real script in a subprocess:
    tests of signals, exit codes and concurrent workers need that.
    """
    argv = [*args, "--root", str(root)]
    if process:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        proc = subprocess.run(
            [sys.executable, str(RUN_HPO), *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            cwd=root,
        )
    else:
        from hpolab.cli.run import main

        proc = completed_in_process(main, *argv, cwd=root)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc


def small_config(path: Path, data: Path, name: str = "s", **study: object) -> Path:
    """A tiny study config (mlp, 3 epochs) written to ``path``."""
    import yaml

    cfg = {
        "study": {
            "name": name,
            "metric": "val_loss",
            "n_trials": 3,
            "sampler": "tpe",
            "pruner": "none",
            "seed": 1,
            # Plots are tested on their own; skipping them keeps the suite fast.
            "plots": False,
            **study,
        },
        "data": {"source": str(data), "target": "label"},
        "training": {"epochs": 3, "batch_size": 32, "patience": 2},
        "models": {
            "mlp": {
                "search_space": {
                    "hidden_layers": [[8], [16, 8]],
                    "learning_rate": {"low": 1e-3, "high": 3e-2, "log": True},
                }
            }
        },
    }
    path.write_text(yaml.safe_dump(cfg))
    return path


def start_and_wait_for_running_trial(config: Path, root: Path, study: str, timeout: float = 180):
    """Start ``run_hpo.py --config`` in the background; return it and a trial in mid-training.

    Waits until a trial of ``<study>.mlp`` is RUNNING and has reported two epochs, so a
    signal sent next lands in the middle of a trial.
    """
    import sqlite3
    import time

    import optuna

    proc = subprocess.Popen(
        [sys.executable, str(RUN_HPO), "--config", str(config), "--root", str(root), "-q"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=root,
    )
    db = root / "hpo_studies" / f"{study}.db"
    deadline = time.monotonic() + timeout
    # Poll read-only with sqlite3: opening the storage with Optuna while the study process
    # is still creating its tables would race it for the schema.
    query = (
        "SELECT t.number, COUNT(v.trial_intermediate_value_id) FROM trials t "
        "JOIN studies s ON s.study_id = t.study_id "
        "LEFT JOIN trial_intermediate_values v ON v.trial_id = t.trial_id "
        "WHERE s.study_name = ? AND t.state = 'RUNNING' GROUP BY t.trial_id"
    )
    while time.monotonic() < deadline:
        time.sleep(0.3)
        if proc.poll() is not None:
            raise AssertionError(f"the study ended before a trial was caught: {proc.stderr.read()}")
        if not db.exists():
            continue
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
                rows = conn.execute(query, (f"{study}.mlp",)).fetchall()
        except sqlite3.OperationalError:  # tables not created yet
            continue
        caught = [number for number, n_values in rows if n_values >= 2]
        if caught:
            storage = f"sqlite:///{db}"
            trials = optuna.load_study(study_name=f"{study}.mlp", storage=storage).trials
            return proc, trials[caught[0]]
    proc.kill()
    raise AssertionError("no trial reached its second epoch in time")


def run_in_process(
    main: object, *args: str, cwd: Path | None = None, columns: int | None = None
) -> tuple[int, str, str]:
    """Call a CLI ``main(argv)`` in this process; return (exit code, stdout, stderr).

    Bad-input and follow-up commands run this way: the same code path as the console
    command without paying for a new interpreter and TensorFlow import each time. Like a
    command started without a terminal, stdin is empty; ``cwd`` and ``columns`` (the
    ``COLUMNS`` tables are laid out for) apply during the call only.
    """
    import contextlib
    import io
    from unittest import mock

    out, err = io.StringIO(), io.StringIO()
    saved_cwd, saved_columns = os.getcwd(), os.environ.get("COLUMNS")
    if columns is not None:
        os.environ["COLUMNS"] = str(columns)
    try:
        if cwd is not None:
            os.chdir(cwd)  # relative paths in messages are shown from the working directory
        with (
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
            mock.patch.object(sys, "stdin", io.StringIO("")),
        ):
            try:
                code = main(list(args))  # type: ignore[operator]
            except SystemExit as exc:  # argparse errors exit
                code = exc.code if isinstance(exc.code, int) else 2
    finally:
        os.chdir(saved_cwd)
        if columns is not None:
            if saved_columns is None:
                os.environ.pop("COLUMNS", None)
            else:
                os.environ["COLUMNS"] = saved_columns
    return int(code or 0), out.getvalue(), err.getvalue()


def completed_in_process(
    main: object, *args: str, cwd: Path | None = None, columns: int | None = None
) -> subprocess.CompletedProcess:
    """``run_in_process`` with the result shaped as ``subprocess.run`` returns it."""
    code, out, err = run_in_process(main, *args, cwd=cwd, columns=columns)
    return subprocess.CompletedProcess(list(args), code, out, err)
