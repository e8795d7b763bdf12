"""Optuna storage: open it, name studies inside it, read and check study metadata."""

from __future__ import annotations

import random
import re
import time
import warnings
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

from hpolab.errors import StorageError

# Prefix of hpolab metadata in Optuna study user attributes.
META = "hpolab"


def optuna_study_name(study: str, model_type: str) -> str:
    """Each model type is its own Optuna study inside the study's storage."""
    return f"{study}.{model_type}"


def redact(url: str) -> str:
    """``url`` without its password, for messages."""
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)


def open_storage(
    url: str, heartbeat_interval: int, grace_period: int | None, max_retries: int
) -> RDBStorage:
    """Open (creating if needed) the RDB storage at ``url``.

    Heartbeats let a resumed or parallel worker recognise trials whose process died:
    such trials are failed and their parameters re-queued (up to ``max_retries`` times).
    """
    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        # Waits for a lock held by another local worker instead of failing at once.
        engine_kwargs["connect_args"] = {"timeout": 60}
    else:
        engine_kwargs["pool_pre_ping"] = True
    for attempt in range(3):
        try:
            return _rdb_storage(url, engine_kwargs, heartbeat_interval, grace_period, max_retries)
        except Exception as exc:  # SQLAlchemy raises many types; all mean "cannot open".
            # Workers starting together on a new database race to create its schema; the
            # loser sees an IntegrityError and succeeds on a second try.
            if "IntegrityError" in type(exc).__name__ and attempt < 2:
                time.sleep(0.5 + random.random())
                continue
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise StorageError(
                f"study.storage (--storage): cannot open {redact(url)}: {reason[:200]}; "
                "give a SQLAlchemy URL such as sqlite:///path/to/study.db or postgresql://user@host:5432/dbname"
            ) from None
    raise AssertionError("unreachable")


def _rdb_storage(
    url: str,
    engine_kwargs: dict[str, Any],
    heartbeat_interval: int,
    grace_period: int | None,
    max_retries: int,
) -> RDBStorage:
    with warnings.catch_warnings():
        # Heartbeats are marked experimental by Optuna; they are what makes resume safe.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return RDBStorage(
            url,
            engine_kwargs=engine_kwargs,
            heartbeat_interval=heartbeat_interval,
            grace_period=grace_period or 3 * heartbeat_interval,
            heartbeat_stale_trial_callback=RequeueStaleTrial(max_retry=max_retries),
        )


class RequeueStaleTrial(RetryHeartbeatStaleTrialCallback):
    """Re-queue a trial whose worker died, and remember it so the run can report it.

    Optuna fails stale trials when asked and also on its own at the start of every trial;
    remembering each one here lets the run report it and mirror it in MLflow either way.
    """

    def __init__(self, max_retry: int) -> None:
        super().__init__(max_retry=max_retry)
        self.recovered: list[tuple[str, int]] = []

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        super().__call__(study, trial)
        self.recovered.append((study.study_name, trial.number))


def take_recovered(storage: RDBStorage, study_name: str) -> list[int]:
    """Numbers of the study's trials failed as stale since the last call (in this process)."""
    callback = storage.get_heartbeat_stale_trial_callback()
    if not isinstance(callback, RequeueStaleTrial):
        return []
    mine = [n for name, n in callback.recovered if name == study_name]
    callback.recovered[:] = [r for r in callback.recovered if r[0] != study_name]
    return mine


def heartbeats(storage: RDBStorage, study_name: str, numbers: list[int]) -> dict[int, Any]:
    """Last heartbeat (database time) of each trial of ``numbers`` that has one."""
    if not numbers:
        return {}
    # Optuna has no public reader for heartbeats; its tables are part of the stored schema.
    query = sqlalchemy.text(
        "SELECT t.number, h.heartbeat FROM trial_heartbeats h "
        "JOIN trials t ON t.trial_id = h.trial_id "
        "WHERE t.study_id = :study AND t.number IN :numbers"
    ).bindparams(sqlalchemy.bindparam("numbers", expanding=True))
    study_id = storage.get_study_id_from_name(study_name)
    with storage.engine.connect() as connection:
        rows = connection.execute(query, {"study": study_id, "numbers": list(numbers)})
        return {int(number): beat for number, beat in rows}


def study_names(storage: RDBStorage) -> list[str]:
    """Names of every Optuna study in ``storage``."""
    return [
        s.study_name
        for s in optuna.study.get_all_study_summaries(storage, include_best_trial=False)
    ]


def model_types_in(storage: RDBStorage, study: str) -> list[str]:
    """Model types of hpolab study ``study`` present in ``storage``."""
    prefix = f"{study}."
    return [n.removeprefix(prefix) for n in study_names(storage) if n.startswith(prefix)]


def get_meta(study: optuna.Study) -> dict[str, Any]:
    """hpolab metadata stored on an Optuna study (empty for a new one)."""
    return dict(study.user_attrs.get(META, {}))


def set_meta(study: optuna.Study, meta: dict[str, Any]) -> None:
    study.set_user_attr(META, meta)
