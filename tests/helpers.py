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
    *args: str, root: Path, timeout: float = 600, check: bool = False
) -> subprocess.CompletedProcess:
    """Run ``python run_hpo.py ARGS --root ROOT`` as a user would, capturing output."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(
        [sys.executable, str(RUN_HPO), *args, "--root", str(root)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=root,
    )
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
