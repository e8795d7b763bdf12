"""A study opened by hpolab names its objective by the study's metric.

optuna-dashboard and Optuna's plots then show ``val_loss`` instead of "Objective 0", for
new studies and for stored ones opened again (resume).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from types import SimpleNamespace

import optuna
from helpers import small_config, write_csv

from hpolab.config import load_config
from hpolab.search.setup import open_study
from hpolab.search.space import SearchSpace


def _open(tmp_path: Path, metric: str = "val_loss") -> str:
    """Open study ``s`` (model type mlp) with hpolab; return its storage URL."""
    cfg = load_config(small_config(tmp_path / "s.yaml", write_csv(tmp_path / "d.csv")))
    cfg = load_config(cfg, metric=metric)
    url = f"sqlite:///{tmp_path / 's.db'}"
    data = SimpleNamespace(fingerprint="fp")  # open_study reads only the fingerprint
    space = SearchSpace(cfg.models["mlp"].params())
    open_study(cfg, optuna.storages.RDBStorage(url), "mlp", space, data, None)
    return url


def test_a_new_study_is_named_by_its_metric(tmp_path):
    url = _open(tmp_path)
    assert optuna.load_study(study_name="s.mlp", storage=url).metric_names == ["val_loss"]


def test_a_stored_study_without_names_gets_them_when_opened_again(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    # As stored before hpolab named objectives.
    optuna.create_study(study_name="s.mlp", storage=url, direction="maximize")
    assert optuna.load_study(study_name="s.mlp", storage=url).metric_names is None
    with warnings.catch_warnings():
        warnings.simplefilter("error", optuna.exceptions.ExperimentalWarning)
        _open(tmp_path, metric="val_accuracy")  # no experimental-API warning reaches users
    study = optuna.load_study(study_name="s.mlp", storage=url)
    assert study.metric_names == ["val_accuracy"]
