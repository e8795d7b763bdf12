"""The SQLite reader of read-only commands reads exactly what Optuna reads.

Pinned against Optuna itself on a real study file: an Optuna release that changes what it
stores fails here (or is refused by the schema check and read by Optuna), never silently.
"""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import optuna
import pytest

from hpolab.layout import Layout
from hpolab.search import sqlite_reader
from hpolab.search.catalog import model_type_status, open_stored, trial_rows
from hpolab.search.storage import set_meta

FIELDS = (
    "number",
    "value",
    "params",
    "user_attrs",
    "system_attrs",
    "intermediate_values",
    "datetime_start",
    "datetime_complete",
    "duration",
)


def _objective(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", 1e-4, 1.0, log=True)
    n = trial.suggest_int("n", 1, 8)
    layers = trial.suggest_categorical("layers", ["[32]", "[64, 32]"])
    flag = trial.suggest_categorical("flag", [True, False, None])
    trial.set_user_attr("val_metrics", {"val_accuracy": x, "layers": layers})
    for step in range(1, 4):
        trial.report(float("nan") if step == 2 and n == 3 else x * step, step)
        if trial.should_prune():
            raise optuna.TrialPruned
    if n == 8:
        raise RuntimeError("diverged")
    return math.inf if flag is None and n == 1 else x + n


def _study_file(tmp_path: Path, direction: str) -> tuple[Path, optuna.Study]:
    """A study with every state, infinite and NaN values, attributes of every kind."""
    path = tmp_path / "hpo_studies" / "s.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    study = optuna.create_study(
        study_name="s.mlp",
        storage=f"sqlite:///{path}",
        direction=direction,
        sampler=optuna.samplers.RandomSampler(seed=3),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=4),
    )
    optuna.create_study(study_name="s:lease", storage=f"sqlite:///{path}")  # bookkeeping
    optuna.create_study(study_name="other.mlp", storage=f"sqlite:///{path}")
    study.enqueue_trial({"x": 0.5, "n": 1, "layers": "[32]", "flag": None})  # value inf
    study.enqueue_trial({"x": 0.5, "n": 3, "layers": "[32]", "flag": True})  # a NaN report
    study.enqueue_trial({"x": 0.5, "n": 8, "layers": "[32]", "flag": True})  # fails
    study.optimize(_objective, n_trials=30, catch=(RuntimeError,))
    running = study.ask()
    running.set_user_attr("worker", {"host": "h", "pid": 1})
    study.enqueue_trial({"x": 0.5, "n": 2, "layers": "[32]", "flag": True})
    return path, study


@pytest.mark.filterwarnings("ignore::FutureWarning")
@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_the_reader_reads_what_optuna_reads(tmp_path: Path, direction: str) -> None:
    path, study = _study_file(tmp_path, direction)
    states = {t.state.name for t in study.trials}
    assert states == {"COMPLETE", "PRUNED", "FAIL", "WAITING", "RUNNING"}, states
    snapshot = sqlite_reader.load(path, ["s.mlp"])["s.mlp"]
    assert snapshot.direction == direction
    assert sqlite_reader.study_names(path) == ["s.mlp", "s:lease", "other.mlp"]
    ours, theirs = snapshot.get_trials(), study.get_trials()
    assert [t.state.name for t in ours] == [t.state.name for t in theirs]
    for mine, optunas in zip(ours, theirs, strict=True):
        for name in FIELDS:
            a, b = getattr(mine, name), getattr(optunas, name)
            assert (
                a == b
                or (a != a and b != b)
                or (  # NaN
                    name == "intermediate_values" and str(a) == str(b)
                )
            ), (mine.number, name, a, b)
        assert [type(v) for v in mine.params.values()] == [type(v) for v in optunas.params.values()]
    assert snapshot.best_trial.number == study.best_trial.number
    assert math.isinf(ours[0].value) and math.isnan(ours[1].intermediate_values[2])
    pruned = snapshot.get_trials(states=(optuna.trial.TrialState.PRUNED,))
    assert [t.number for t in pruned] == [
        t.number for t in study.get_trials(states=(optuna.trial.TrialState.PRUNED,))
    ]


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_read_only_commands_see_the_same_study_with_and_without_optuna(tmp_path: Path) -> None:
    path, study = _study_file(tmp_path, "maximize")
    config = {
        "study": {"name": "s", "metric": "val_accuracy", "n_trials": 40},
        "data": {"source": "builtin:leak"},
        "models": {"mlp": {}},
    }
    from hpolab.config import StudyConfig

    set_meta(study, {"config": StudyConfig.model_validate(config).model_dump(mode="json")})
    layout = Layout.from_root(tmp_path)
    fast = open_stored(layout, "s", read_only=True)
    full = open_stored(layout, "s")
    assert fast.storage is None and full.storage is not None, "the fast path was taken"
    assert fast.model_types == full.model_types == ["mlp"]
    assert model_type_status(fast, "mlp") == model_type_status(full, "mlp")
    space = full.space("mlp")
    assert str(trial_rows(fast.studies["mlp"], space)) == str(
        trial_rows(full.studies["mlp"], space)
    )


def test_a_file_of_another_schema_is_left_to_optuna(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    optuna.create_study(study_name="s.mlp", storage=f"sqlite:///{path}")
    with sqlite3.connect(path) as con:
        con.execute("UPDATE version_info SET schema_version = 99")
    with pytest.raises(sqlite_reader.UnknownSchema, match="schema"):
        sqlite_reader.study_names(path)
    (tmp_path / "junk.db").write_text("not a database")
    with pytest.raises(sqlite_reader.UnknownSchema):
        sqlite_reader.study_names(tmp_path / "junk.db")


def test_a_study_open_for_writing_is_read_whole_from_its_write_ahead_log(tmp_path: Path) -> None:
    """hpolab's study files journal in a write-ahead log: what a running search committed
    (not yet checkpointed into the file) is what a reader sees, with or without Optuna."""
    from hpolab.search.storage import open_storage

    path = tmp_path / "hpo_studies" / "w.db"
    path.parent.mkdir()
    storage = open_storage(f"sqlite:///{path}", 60, None, 0)
    study = optuna.create_study(study_name="w.mlp", storage=storage, direction="maximize")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=5)
    running = study.ask()
    running.report(0.5, 1)
    with sqlite3.connect(path) as con:
        assert con.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert Path(f"{path}-wal").exists(), "the writer's connection is still open"
    snapshot = sqlite_reader.load(path, ["w.mlp"])["w.mlp"]
    assert [t.state.name for t in snapshot.get_trials()] == ["COMPLETE"] * 5 + ["RUNNING"]
    assert snapshot.get_trials()[-1].intermediate_values == {1: 0.5}
    assert snapshot.best_trial.value == study.best_value
