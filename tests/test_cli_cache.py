"""``hpolab cache`` and YAML grids for the cached estimators, end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import REPO

from hpolab.errors import ConfigError
from hpolab.estimators import Autoencoder, ResidualRegressor, load_fit_config
from hpolab.search.grid import grid_points


def hpolab_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "hpolab.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
    )


def test_repository_configs_are_valid_fit_keywords():
    grid = load_fit_config(REPO / "configs/cached_autoencoder.yaml")
    assert set(grid) == {"param_grid"}
    resolved, mode = Autoencoder().resolve_grid(**grid)
    assert mode == "grid" and len(grid_points(resolved)) == 8
    single = load_fit_config(REPO / "configs/cached_residual.yaml")
    resolved, mode = ResidualRegressor().resolve_grid(**single)
    assert mode == "single" and len(grid_points(resolved)) == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("param_grid: {latent_dim: [2]}\nmodel_config: {latent_dim: 2}\n", "exactly one"),
        ("param_grids: {latent_dim: [2]}\n", "unknown key 'param_grids'"),
        ("param_grid: [1, 2]\n", "param_grid must be a non-empty mapping"),
        ("param_grid: {a: [1\n", "not valid YAML"),
    ],
)
def test_bad_fit_config_files_name_the_problem(tmp_path, text, message):
    path = tmp_path / "grid.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_fit_config(path)
    with pytest.raises(ConfigError, match="cannot read"):
        load_fit_config(tmp_path / "missing.yaml")


@pytest.mark.slow
def test_cache_command_lists_shows_and_clears(tmp_path):
    (tmp_path / "grid.yaml").write_text("param_grid:\n  latent_dim: [2, 3]\n  epochs: [2]\n")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 5)).astype(np.float32)
    model_dir = tmp_path / "models" / "cached"
    ae = Autoencoder(model_dir=model_dir, cache_prefix="ae_v1")
    ae.fit(X[:60], X[60:], **load_fit_config(tmp_path / "grid.yaml"))
    (model_dir / "broken_model.keras").write_bytes(b"not a model")

    listed = hpolab_cli("cache", "--root", str(tmp_path), cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "ae_v1" in listed.stdout and "valid" in listed.stdout
    assert "broken" in listed.stdout and "incomplete" in listed.stdout

    as_json = json.loads(hpolab_cli("cache", "--json", cwd=tmp_path).stdout)
    by_prefix = {c["prefix"]: c for c in as_json["caches"]}
    assert by_prefix["ae_v1"]["estimator"] == "Autoencoder"
    assert by_prefix["ae_v1"]["n_configs"] == 2
    assert by_prefix["ae_v1"]["best_score"] == pytest.approx(ae.best_score_)
    assert by_prefix["broken"]["status"] == "incomplete"

    shown = hpolab_cli("cache", "ae_v1", cwd=tmp_path)
    assert (
        shown.returncode == 0 and "latent_dim=2" in shown.stdout and "latent_dim=3" in shown.stdout
    )

    unknown = hpolab_cli("cache", "nope", cwd=tmp_path)
    assert unknown.returncode == 2
    assert unknown.stderr.strip().startswith("error: prefix: no cache 'nope'")
    assert "ae_v1" in unknown.stderr and "Traceback" not in unknown.stderr

    no_yes = hpolab_cli("cache", "ae_v1", "--clear", cwd=tmp_path)
    assert no_yes.returncode == 2 and "--yes" in no_yes.stderr
    assert ae.artifacts.inspect().valid

    cleared = hpolab_cli("cache", "ae_v1", "--clear", "--yes", cwd=tmp_path)
    assert cleared.returncode == 0 and "removed" in cleared.stdout
    assert not list(model_dir.glob("ae_v1_*"))
    assert (model_dir / "broken_model.keras").exists()
