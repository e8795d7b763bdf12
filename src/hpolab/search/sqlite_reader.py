"""Read an Optuna SQLite study file with the standard library, for read-only commands.

``hpolab studies / status / best / trials`` only read a study. Importing Optuna (with
SQLAlchemy, Alembic and the storages' optional clients) costs most of a second; reading the
tables with :mod:`sqlite3` costs milliseconds. The objects returned have the attributes of
Optuna's ``Study`` and ``FrozenTrial`` that :mod:`hpolab.search.catalog` reads, so the
catalog works on either.

Only a schema this module knows is read this way (:data:`KNOWN_SCHEMA`, pinned by
``tests/test_sqlite_reader.py`` against Optuna itself); any other file is left to Optuna
(:class:`UnknownSchema`), which upgrades or explains.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import math
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# (version_info.schema_version, alembic_version.version_num) of the files Optuna 4-5 writes.
KNOWN_SCHEMA = (12, "v3.2.0.a")
_INFINITE = {"INF_POS": math.inf, "INF_NEG": -math.inf, "NAN": math.nan}


class UnknownSchema(Exception):
    """The file is not an Optuna study file of a schema this module reads."""


class State(enum.Enum):
    """Trial states, named as Optuna's ``TrialState`` (compare by ``.name``)."""

    RUNNING = 0
    COMPLETE = 1
    PRUNED = 2
    FAIL = 3
    WAITING = 4


@dataclass
class StoredTrial:
    """The part of Optuna's ``FrozenTrial`` the catalog reads."""

    number: int
    state: State
    datetime_start: dt.datetime | None
    datetime_complete: dt.datetime | None
    value: float | None = None
    params: dict[str, Any] = field(default_factory=dict)
    user_attrs: dict[str, Any] = field(default_factory=dict)
    system_attrs: dict[str, Any] = field(default_factory=dict)
    intermediate_values: dict[int, float] = field(default_factory=dict)

    @property
    def duration(self) -> dt.timedelta | None:
        if self.datetime_start and self.datetime_complete:
            return self.datetime_complete - self.datetime_start
        return None


@dataclass
class StoredStudyFile:
    """The part of Optuna's ``Study`` the catalog reads, loaded at once (a snapshot)."""

    study_name: str
    direction: str  # "minimize" or "maximize"
    user_attrs: dict[str, Any]
    trials: list[StoredTrial]

    def get_trials(
        self, deepcopy: bool = False, states: Iterable[Any] | None = None
    ) -> list[StoredTrial]:
        """Trials by number; ``states`` (Optuna's or :class:`State`) filters by name."""
        del deepcopy  # a snapshot already
        if states is None:
            return list(self.trials)
        names = {s.name for s in states}
        return [t for t in self.trials if t.state.name in names]

    @property
    def best_trial(self) -> StoredTrial:
        """The complete trial with the best value (the first of equals), as Optuna's."""
        done = [t for t in self.trials if t.state is State.COMPLETE and t.value is not None]
        if not done:
            raise ValueError("no complete trial yet")
        sign = -1.0 if self.direction == "maximize" else 1.0
        return min(done, key=lambda t: (sign * t.value, t.number))  # type: ignore[operator]


def connect(path: Path) -> sqlite3.Connection:
    """A read-only connection to an Optuna study file of the known schema."""
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        version = con.execute("SELECT schema_version FROM version_info").fetchone()
        alembic = con.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.Error as exc:
        raise UnknownSchema(str(exc)) from None
    if (version and version[0], alembic and alembic[0]) != KNOWN_SCHEMA:
        con.close()
        raise UnknownSchema(f"schema {version}, {alembic}")
    return con


def study_names(path: Path) -> list[str]:
    """Names of every Optuna study in the file."""
    con = connect(path)
    try:
        return [name for (name,) in con.execute("SELECT study_name FROM studies")]
    finally:
        con.close()


def load(path: Path, names: list[str]) -> dict[str, StoredStudyFile]:
    """Studies ``names`` of the file, read in one transaction (a consistent snapshot)."""
    con = connect(path)
    try:
        con.execute("BEGIN")
        return {name: _study(con, name) for name in names}
    except sqlite3.Error as exc:
        raise UnknownSchema(str(exc)) from None
    finally:
        con.close()


def _study(con: sqlite3.Connection, name: str) -> StoredStudyFile:
    study_id, direction = con.execute(
        "SELECT s.study_id, d.direction FROM studies s JOIN study_directions d "
        "ON d.study_id = s.study_id AND d.objective = 0 WHERE s.study_name = ?",
        (name,),
    ).fetchone()
    attrs = _attrs(con, "study_user_attributes", "study_id", study_id)
    trials = {
        trial_id: StoredTrial(number, State[state], _time(start), _time(end))
        for trial_id, number, state, start, end in con.execute(
            "SELECT trial_id, number, state, datetime_start, datetime_complete FROM trials "
            "WHERE study_id = ? ORDER BY number",
            (study_id,),
        )
    }
    _fill_trials(con, study_id, trials)
    return StoredStudyFile(name, direction.lower(), attrs.get(study_id, {}), list(trials.values()))


def _fill_trials(con: sqlite3.Connection, study_id: int, trials: dict[int, StoredTrial]) -> None:
    """Values, parameters, attributes and intermediate values, one query each."""
    of_study = "trial_id IN (SELECT trial_id FROM trials WHERE study_id = ?)"
    for trial_id, value, kind in con.execute(
        f"SELECT trial_id, value, value_type FROM trial_values WHERE objective = 0 AND {of_study}",
        (study_id,),
    ):
        trials[trial_id].value = _INFINITE.get(kind, value)
    for trial_id, name, value, dist in con.execute(
        f"SELECT trial_id, param_name, param_value, distribution_json FROM trial_params "
        f"WHERE {of_study} ORDER BY param_id",
        (study_id,),
    ):
        trials[trial_id].params[name] = _external(value, dist)
    for trial_id, step, value, kind in con.execute(
        f"SELECT trial_id, step, intermediate_value, intermediate_value_type "
        f"FROM trial_intermediate_values WHERE {of_study} ORDER BY step",
        (study_id,),
    ):
        trials[trial_id].intermediate_values[step] = _INFINITE.get(kind, value)
    for table, attr in (
        ("trial_user_attributes", "user_attrs"),
        ("trial_system_attributes", "system_attrs"),
    ):
        for trial_id, values in _attrs(con, table, "trial_id", study_id, of_study).items():
            setattr(trials[trial_id], attr, values)


def _attrs(
    con: sqlite3.Connection, table: str, key: str, study_id: int, where: str | None = None
) -> dict[int, dict[str, Any]]:
    found: dict[int, dict[str, Any]] = {}
    condition = where or f"{key} = ?"
    for owner, name, value in con.execute(
        f'SELECT {key}, "key", value_json FROM {table} WHERE {condition}', (study_id,)
    ):
        found.setdefault(owner, {})[name] = json.loads(value)
    return found


def _external(value: float, distribution_json: str) -> Any:
    """A parameter as the trial saw it (Optuna stores a categorical's index, ints as floats)."""
    dist = json.loads(distribution_json)
    kind, attrs = dist["name"], dist["attributes"]
    if kind == "CategoricalDistribution":
        return attrs["choices"][int(value)]
    if kind in ("IntDistribution", "IntUniformDistribution", "IntLogUniformDistribution"):
        return int(value)
    if kind in (
        "FloatDistribution",
        "UniformDistribution",
        "LogUniformDistribution",
        "DiscreteUniformDistribution",
    ):
        return float(value)
    raise UnknownSchema(f"distribution {kind}")


def _time(text: str | None) -> dt.datetime | None:
    return None if text is None else dt.datetime.fromisoformat(text)
