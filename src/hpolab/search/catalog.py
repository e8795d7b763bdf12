"""Stored studies, read back: which studies a root holds, their trials, state and ETA.

The write side is :mod:`hpolab.search.run` (with :mod:`~hpolab.search.setup` and
:mod:`~hpolab.search.loop`); everything here only reads Optuna storage (except
:func:`open_stored` creating no study: an unknown name is an error that lists the known ones).

Optuna is imported only when needed: SQLite study files are listed, and read for
``read_only`` uses, with :mod:`hpolab.search.sqlite_reader`, so that ``hpolab studies /
status / best / trials`` answer in a fraction of a second.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from hpolab.config import StudyConfig
from hpolab.errors import StorageError, StudyNotFoundError
from hpolab.layout import Layout, check_name
from hpolab.search import sqlite_reader
from hpolab.search.budget import counted_trials, stopped_early
from hpolab.search.define_by_run import DefineByRunSpace
from hpolab.search.names import (
    get_meta,
    is_sql_url,
    model_types_from,
    optuna_study_name,
    redact,
)
from hpolab.search.space import SearchSpace

_FINISHED = ("COMPLETE", "PRUNED", "FAIL")


@dataclass
class StoredStudy:
    """One hpolab study: its model types' Optuna studies and the config it ran with.

    Opened ``read_only`` from a SQLite file, ``studies`` are snapshots with the attributes
    of Optuna's studies that the catalog reads, and ``storage`` is None.
    """

    name: str
    storage_url: str
    storage: Any  # Optuna's BaseStorage
    studies: dict[str, Any] = field(default_factory=dict)  # optuna.Study or a snapshot

    @property
    def model_types(self) -> list[str]:
        return list(self.studies)

    def meta(self, model_type: str) -> dict[str, Any]:
        return get_meta(self.studies[model_type])

    def config(self, model_type: str | None = None) -> StudyConfig:
        """The validated config the study (or one model type of it) last ran with."""
        mt = model_type or self.model_types[0]
        return StudyConfig.model_validate(self.meta(mt)["config"])

    def space(self, model_type: str) -> SearchSpace | DefineByRunSpace:
        """The space trials are replayed with (a define-by-run one needs no builder)."""
        if self.meta(model_type).get("define_by_run"):
            return DefineByRunSpace(None)
        return SearchSpace(self.config(model_type).models[model_type].params())

    def check_model_type(self, model_type: str | None) -> list[str]:
        """``[model_type]`` if the study has it, every model type for ``None``."""
        if model_type is None:
            return self.model_types
        if model_type not in self.studies:
            raise StudyNotFoundError(
                f"--model-type: study {self.name!r} has no model type {model_type!r}; "
                f"it has {', '.join(self.model_types)}"
            )
        return [model_type]


def _open_rdb(url: str) -> Any:
    from optuna.storages import RDBStorage

    from hpolab.search.storage import open_storage

    if not is_sql_url(url):
        return open_storage(url, heartbeat_interval=60, grace_period=None, max_retries=0)
    # Reading must not upgrade or lock anything for long; no heartbeat is needed.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        return RDBStorage(url, skip_table_creation=True)
    except Exception as exc:  # SQLAlchemy raises many types; all mean "cannot open"
        raise StorageError(f"--storage: cannot open {redact(url)}: {str(exc)[:200]}") from None


def known_studies(layout: Layout, storage_url: str | None = None) -> dict[str, str]:
    """Study name -> storage URL, for every study under the root (or in ``storage_url``)."""
    found: dict[str, str] = {}
    urls = (
        [storage_url]
        if storage_url
        else [f"sqlite:///{p}" for p in sorted(layout.studies_dir.glob("*.db"))]
    )
    for url in urls:
        try:
            names = _study_names(url)
        except StorageError:
            if storage_url:
                raise
            continue  # a foreign or broken .db file is not a study
        for optuna_name in names:
            study, _, _ = optuna_study_name_parts(optuna_name)
            if study and ":" not in optuna_name:  # ":" marks hpolab's bookkeeping studies
                found.setdefault(study, url)
    return dict(sorted(found.items()))


def _sqlite_file(url: str) -> Path | None:
    """The file of a plain ``sqlite:///`` URL (no options), if it exists."""
    path = url.removeprefix("sqlite:///")
    if path == url or "?" in path or not path or not Path(path).is_file():
        return None
    return Path(path)


def _study_names(url: str) -> list[str]:
    """Optuna study names in the storage at ``url``; SQLite files without Optuna."""
    path = _sqlite_file(url)
    if path is not None:
        try:
            return sqlite_reader.study_names(path)
        except sqlite_reader.UnknownSchema:
            pass  # Optuna says what it is (or upgrades it)
    from hpolab.search.storage import study_names

    return study_names(_open_rdb(url))


def optuna_study_name_parts(optuna_name: str) -> tuple[str, str, str]:
    """``"leak_v1.cnn1d"`` -> ``("leak_v1", ".", "cnn1d")``; no dot gives empty parts."""
    study, dot, model_type = optuna_name.rpartition(".")
    return study, dot, model_type


def open_stored(
    layout: Layout, name: str, storage_url: str | None = None, read_only: bool = False
) -> StoredStudy:
    """Open study ``name`` of the root (or of ``storage_url``), read-only in spirit.

    ``read_only``: the caller only reads trials and metadata (no plots, no writes), so a
    SQLite file is read as a snapshot without Optuna.

    Raises:
        StudyNotFoundError: listing the studies that exist.
    """
    check_name(name, "study")
    url = storage_url or layout.default_storage_url(name)
    exists = storage_url is not None or layout.study_db(name).exists()
    if read_only and exists:
        snapshot = _read_snapshot(name, url)
        if snapshot is not None:
            return snapshot
    storage = _open_rdb(url) if exists else None
    mts = _model_types(storage, name) if storage is not None else []
    if not mts:
        _not_found(layout, name, storage_url)
    import optuna

    stored = StoredStudy(name, url, storage)
    for mt in mts:
        stored.studies[mt] = optuna.load_study(
            study_name=optuna_study_name(name, mt), storage=storage
        )
    return stored


def _model_types(storage: Any, name: str) -> list[str]:
    from hpolab.search.storage import model_types_in

    return model_types_in(storage, name)


def _read_snapshot(name: str, url: str) -> StoredStudy | None:
    """Study ``name`` read from its SQLite file without Optuna; None to use Optuna."""
    path = _sqlite_file(url)
    if path is None:
        return None
    try:
        mts = model_types_from(sqlite_reader.study_names(path), name)
        if not mts:
            return None  # Optuna's path says it is not found, the same way
        studies = sqlite_reader.load(path, [optuna_study_name(name, mt) for mt in mts])
    except sqlite_reader.UnknownSchema:
        return None
    stored = StoredStudy(name, url, None)
    stored.studies = {mt: studies[optuna_study_name(name, mt)] for mt in mts}
    return stored


def _not_found(layout: Layout, name: str, storage_url: str | None) -> NoReturn:
    """Raise that study ``name`` does not exist, listing those that do."""
    known = list(known_studies(layout, storage_url))
    where = redact(storage_url) if storage_url else str(layout.studies_dir)
    listing = ", ".join(known) if known else "none yet (run_hpo.py creates one)"
    raise StudyNotFoundError(f"study: no study {name!r} in {where}; known studies: {listing}")


def state_counts(study: Any) -> dict[str, int]:
    """Trials per state: complete, pruned, fail, running, waiting."""
    counts = {"complete": 0, "pruned": 0, "fail": 0, "running": 0, "waiting": 0}
    for t in study.get_trials(deepcopy=False):
        counts[t.state.name.lower()] = counts.get(t.state.name.lower(), 0) + 1
    return counts


def best_trial(study: Any) -> Any:
    """The best complete trial, or ``None`` when there is none yet."""
    try:
        return study.best_trial
    except ValueError:
        return None


def trial_rows(study: Any, space: SearchSpace | DefineByRunSpace) -> list[dict[str, Any]]:
    """Every trial as plain data (decoded params, state, value, timing, MLflow run)."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        duration = t.duration.total_seconds() if t.duration is not None else None
        rows.append(
            {
                "number": t.number,
                "state": t.state.name.lower(),
                "value": t.value,
                "params": space.replay(t.params),
                "duration_seconds": None if duration is None else round(duration, 3),
                "best_epoch": t.user_attrs.get("best_epoch"),
                "epochs_run": t.user_attrs.get("epochs_run"),
                "fit_seconds": t.user_attrs.get("fit_seconds"),
                "mlflow_run_id": t.user_attrs.get("mlflow_run_id"),
                "error": t.user_attrs.get("error"),
                "retry_of": t.system_attrs.get("failed_trial"),
                "duplicate_of": t.user_attrs.get("duplicate_of"),
                "intermediate_values": {str(k): v for k, v in t.intermediate_values.items()},
                "started": t.datetime_start.isoformat(timespec="seconds")
                if t.datetime_start
                else None,
            }
        )
    return rows


def model_type_status(stored: StoredStudy, model_type: str) -> dict[str, Any]:
    """Progress of one model type: counts, best so far, time spent and an ETA."""
    study = stored.studies[model_type]
    cfg = stored.config(model_type)
    counts = state_counts(study)
    finished = [
        t
        for t in study.get_trials(deepcopy=False)
        if t.state.name in _FINISHED and t.duration is not None
    ]
    spent = sum(t.duration.total_seconds() for t in finished)  # type: ignore[union-attr]
    # As the budget counts: a trial failed because its worker died (re-queued) does not.
    done = counted_trials(study) - counts["running"]
    target = cfg.study.n_trials
    remaining = max(target - done - counts["running"], 0)
    mean = spent / len(finished) if finished else None
    best = best_trial(study)
    last = max((t.datetime_complete for t in finished if t.datetime_complete), default=None)
    stopped = stopped_early(study)
    if counts["running"]:
        state = "running"
    elif done >= target:
        state = "finished"
    elif stopped:
        state = "stopped early"
    else:
        state = "incomplete"
    return {
        "model_type": model_type,
        "state": state,
        "n_trials_target": target,
        "trials_done": done,
        **counts,
        "metric": cfg.study.metric,
        "direction": cfg.study.resolved_direction,
        "best_value": None if best is None else best.value,
        "best_trial": None if best is None else best.number,
        "seconds_spent": round(spent, 1),
        "mean_trial_seconds": None if mean is None else round(mean, 2),
        "eta_seconds": None if mean is None or stopped else round(mean * remaining, 1),
        "last_trial_finished": None if last is None else _iso(last),
        "stopped_early": stopped,
    }


def _iso(value: dt.datetime) -> str:
    return value.isoformat(timespec="seconds")
