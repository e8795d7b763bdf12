"""What a killed process leaves behind is cleaned up and never shipped."""

from __future__ import annotations

import os
import time
from pathlib import Path

from helpers import small_config, write_csv
from mlflow.tracking import MlflowClient

import hpolab


def _artifacts(client: MlflowClient, run_id: str, path: str = "") -> list[str]:
    found = []
    for item in client.list_artifacts(run_id, path):
        found.extend(_artifacts(client, run_id, item.path) if item.is_dir else [item.path])
    return found


def test_stale_temp_files_are_removed_on_start_and_never_logged(tmp_path: Path):
    data = write_csv(tmp_path / "d.csv", n=80)
    config = small_config(tmp_path / "c.yaml", data, name="tmpfiles", n_trials=1, plots=True)
    hpolab.run_study(config, root=tmp_path, quiet=True)
    plots = tmp_path / "hpo_results" / "tmpfiles" / "mlp_visualizations"
    assert any(plots.glob("*.png"))
    # A plot writer killed mid-write left this (an hour ago), another one is writing now.
    stale = plots / ".slice.png.k3j2h1g0.tmp.png"
    stale.write_bytes(b"half a png")
    hour_ago = time.time() - 3600
    os.utime(stale, (hour_ago, hour_ago))
    in_flight = plots / ".contour.png.a1b2c3d4.tmp.png"
    in_flight.write_bytes(b"being written")

    result = hpolab.run_study(config, root=tmp_path, quiet=True, n_trials=2)
    assert result.new_trials == 1
    assert not stale.exists()  # removed on start
    assert in_flight.exists()  # another writer's file is left alone
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("tmpfiles")
    logged = [
        path
        for run in client.search_runs([experiment.experiment_id])
        for path in _artifacts(client, run.info.run_id)
    ]
    assert any(p.endswith(".png") for p in logged)
    assert not [p for p in logged if ".tmp" in Path(p).name]
