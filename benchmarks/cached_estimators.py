"""Time of a first (grid-search) fit and of a cached fit of the estimators, same data.

    python benchmarks/cached_estimators.py            # in a temporary model_dir

Data: scikit-learn's bundled diabetes set (442 x 10). The Autoencoder searches its default
grid, the ResidualRegressor trains the single configuration of configs/cached_residual.yaml.
The cached fit is timed in the same process and in a fresh one (a restarted notebook
kernel); only the fit calls are timed, not importing TensorFlow.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

HERE = Path(__file__).resolve().parent.parent
SCRIPT = """
import sys, time
from sklearn.datasets import load_diabetes
from sklearn.model_selection import train_test_split
from hpolab.estimators import Autoencoder, ResidualRegressor, load_fit_config
X, y = load_diabetes(return_X_y=True)
Xt, Xv, yt, yv = train_test_split(X, y, test_size=0.25, random_state=0)
model_dir, residual_config = sys.argv[1], load_fit_config(sys.argv[2])
for _ in range(2):  # the second round is a cached fit in the same process
    t1 = time.perf_counter()
    ae = Autoencoder(model_dir=model_dir, cache_prefix="ae").fit(Xt, Xv)
    t2 = time.perf_counter()
    reg = ResidualRegressor(pretrained_model=ae, model_dir=model_dir, cache_prefix="rr")
    reg.fit(Xt, Xv, yt, yv, **residual_config)
    t3 = time.perf_counter()
    print(f"{t2 - t1:.3f} {t3 - t2:.3f} {ae.n_configs_trained_} {reg.n_configs_trained_} "
          f"{reg.score(Xv, yv):.4f}")
"""


def run(model_dir: str) -> list[list[str]]:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, model_dir, str(HERE / "configs/cached_residual.yaml")],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [line.split() for line in out.splitlines()]


def main() -> None:
    with tempfile.TemporaryDirectory() as model_dir:
        first_process, second_process = run(model_dir), run(model_dir)
    rows = [
        ("first fit (grid search)", first_process[0]),
        ("cached fit, same process", first_process[1]),
        ("cached fit, new process", second_process[0]),
    ]
    print(f"{'':26} {'Autoencoder':>12} {'Residual':>10}  configs trained  R2 (val)")
    for label, (ae_s, rr_s, ae_n, rr_n, r2) in rows:
        print(f"{label:26} {float(ae_s):11.2f}s {float(rr_s):9.2f}s  {ae_n} + {rr_n}{r2:>16}")
    first, cached = rows[0][1], rows[1][1]
    print(
        "cached / first: Autoencoder "
        f"{float(cached[0]) / float(first[0]):.4f}, ResidualRegressor "
        f"{float(cached[1]) / float(first[1]):.4f}"
    )


if __name__ == "__main__":
    main()
