"""Optuna storage: open it, name studies inside it, read and check study metadata."""

from __future__ import annotations

import contextlib
import random
import time
import warnings
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
from optuna.storages import (
    BaseStorage,
    JournalStorage,
    RDBStorage,
    RetryHeartbeatStaleTrialCallback,
)

from hpolab.errors import StorageError
from hpolab.interrupts import shield, shield_methods
from hpolab.layout import file_lock
from hpolab.search.names import (  # noqa: F401 - re-exported for the write side
    JOURNAL_SCHEMES,
    META,
    get_meta,
    is_sql_url,
    model_types_from,
    optuna_study_name,
    redact,
)
from hpolab.sqlite_tuning import write_ahead_log

STORAGE_HINT = (
    "give a SQLAlchemy URL such as sqlite:///path/to/study.db or "
    "postgresql://user@host:5432/dbname, redis://host:6379 or grpc://host:13000"
)


def open_storage(
    url: str, heartbeat_interval: int, grace_period: int | None, max_retries: int
) -> BaseStorage:
    """Open (creating if needed) the study storage at ``url``.

    SQLAlchemy URLs give Optuna's RDB storage; ``redis://`` its journal storage on Redis;
    ``grpc://host:port`` a client of Optuna's gRPC storage proxy (``hpolab storage-proxy``).
    Heartbeats (RDB storage) let a resumed or parallel worker recognise trials whose
    process died: such trials are failed and their parameters re-queued (up to
    ``max_retries`` times).
    """
    # A Ctrl-C never lands inside a storage call (it would leave SQLite locked).
    return shield_methods(
        _open_storage(url, heartbeat_interval, grace_period, max_retries), BaseStorage
    )


def _open_storage(
    url: str, heartbeat_interval: int, grace_period: int | None, max_retries: int
) -> BaseStorage:
    try:
        if url.startswith(JOURNAL_SCHEMES):
            return _journal_storage(url)
        if url.startswith("grpc://"):
            return _grpc_storage(url)
    except StorageError:
        raise
    except Exception as exc:  # the client libraries raise many types; all mean "cannot open".
        raise _cannot_open(url, exc) from None
    engine_kwargs: dict[str, Any] = {}
    lock: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # e.g. under /proc, or a file in the way
            raise _cannot_open(url, exc) from None
        # Waits for a lock held by another local worker instead of failing at once.
        engine_kwargs["connect_args"] = {"timeout": 60}
        # Local workers starting together on a new file would race to create its tables.
        lock = file_lock(path)
    else:
        engine_kwargs["pool_pre_ping"] = True
    try:
        with lock:
            return _rdb_storage(url, engine_kwargs, heartbeat_interval, grace_period, max_retries)
    except OSError as exc:  # the folder cannot hold the database (or its lock)
        raise _cannot_open(url, exc) from None


def _cannot_open(url: str, exc: BaseException) -> StorageError:
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return StorageError(
        f"study.storage (--storage): cannot open {redact(url)}: {reason[:200]}; {STORAGE_HINT}"
    )


def _journal_storage(url: str) -> JournalStorage:
    """Optuna's journal storage on Redis: an append-only log every worker replays."""
    from optuna.storages.journal import JournalRedisBackend

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        backend = JournalRedisBackend(url)
    backend._redis.ping()  # fail now, with the URL in the message, not at the first trial
    return JournalStorage(backend)


def _grpc_storage(url: str) -> BaseStorage:
    """A client of Optuna's gRPC storage proxy (``grpc://host:port``)."""
    from optuna.storages import GrpcStorageProxy

    host, _, port = url.removeprefix("grpc://").rstrip("/").rpartition(":")
    if not host or not port.isdigit():
        raise StorageError(
            f"study.storage (--storage): {url!r} needs a host and a port, e.g. grpc://localhost:13000"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        proxy = GrpcStorageProxy(host=host, port=int(port))
    proxy.wait_server_ready(timeout=10)
    return proxy


def _rdb_storage(
    url: str,
    engine_kwargs: dict[str, Any],
    heartbeat_interval: int,
    grace_period: int | None,
    max_retries: int,
) -> RDBStorage:
    for attempt in range(3):
        try:
            with warnings.catch_warnings():
                # Heartbeats are marked experimental by Optuna; they make resume safe.
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                storage = RDBStorage(
                    url,
                    engine_kwargs=engine_kwargs,
                    heartbeat_interval=heartbeat_interval,
                    grace_period=grace_period or 3 * heartbeat_interval,
                    heartbeat_stale_trial_callback=RequeueStaleTrial(max_retry=max_retries),
                )
            break
        except Exception as exc:  # SQLAlchemy raises many types; all mean "cannot open".
            # Workers starting together on a new database race to create its schema; the
            # loser sees an IntegrityError and succeeds on a second try.
            if "IntegrityError" in type(exc).__name__ and attempt < 2:
                time.sleep(0.5 + random.random())
                continue
            raise _cannot_open(url, exc) from None
    if url.startswith("sqlite"):
        _serialize_sqlite_writes(storage.engine)
    return storage


def _serialize_sqlite_writes(engine: sqlalchemy.engine.Engine) -> None:
    """Make each SQLite transaction take the write lock when it begins.

    Optuna reads a trial, then updates it (taking a waiting trial, failing a stale one).
    With SQLite's default deferred transactions two local workers can both read "waiting"
    and both take the trial, or deadlock on the upgrade to a write lock ("database is
    locked"). ``BEGIN IMMEDIATE`` serializes those read-then-write steps; the 60 s busy
    timeout makes the other workers wait their turn. The SQLAlchemy documentation's
    recipe for pysqlite transaction control.
    """

    @sqlalchemy.event.listens_for(engine, "connect")
    def _no_implicit_begin(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        write_ahead_log(dbapi_connection)  # a pruning report is a commit: make it cheap

    @sqlalchemy.event.listens_for(engine, "begin")
    def _begin_immediate(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    # The connection Optuna opened to create the tables predates these settings.
    engine.dispose()


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


def take_recovered(storage: BaseStorage, study_name: str) -> list[int]:
    """Numbers of the study's trials failed as stale since the last call (in this process)."""
    if not isinstance(storage, RDBStorage):
        return []
    callback = storage.get_heartbeat_stale_trial_callback()
    if not isinstance(callback, RequeueStaleTrial):
        return []
    mine = [n for name, n in callback.recovered if name == study_name]
    callback.recovered[:] = [r for r in callback.recovered if r[0] != study_name]
    return mine


@shield
def heartbeats(storage: BaseStorage, study_name: str, numbers: list[int]) -> dict[int, Any]:
    """Last heartbeat (database time) of each trial of ``numbers`` that has one."""
    if not numbers or not isinstance(storage, RDBStorage):
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


def write_user_attrs(trial: optuna.Trial, attrs: dict[str, Any]) -> None:
    """``trial.set_user_attr`` for each of ``attrs``, in one storage transaction.

    Optuna commits each attribute on its own; an RDB storage takes them here in one,
    through the per-row writer Optuna's own batch paths use. Other storages (journal,
    gRPC) get one call each.
    """
    _write_user_attrs(trial.storage, trial._trial_id, attrs)
    frozen = getattr(trial, "_cached_frozen_trial", None)
    if frozen is not None:  # what trial.user_attrs shows, as set_user_attr keeps it
        frozen.user_attrs.update(attrs)


@shield
def _write_user_attrs(storage: BaseStorage, trial_id: int, attrs: dict[str, Any]) -> None:
    writers = _rdb_writers(storage)
    if writers is None:
        for key, value in attrs.items():
            storage.set_trial_user_attr(trial_id, key, value)
        return
    rdb, session_of, models = writers
    with session_of(rdb.scoped_session, True) as session:
        for key, value in attrs.items():
            rdb._set_trial_attr_without_commit(
                session, models.TrialUserAttributeModel, trial_id, key, value
            )


def _rdb_writers(storage: BaseStorage) -> tuple[RDBStorage, Any, Any] | None:
    """The RDB storage behind ``storage``, Optuna's session maker and table models, when
    this Optuna version has them (None: write one value per call)."""
    # A study wraps an RDB storage in a cache of finished trials; its writes pass through.
    rdb = getattr(storage, "_backend", storage)
    if not isinstance(rdb, RDBStorage) or not hasattr(rdb, "_set_trial_attr_without_commit"):
        return None
    try:
        from optuna.storages._rdb import models
        from optuna.storages._rdb.storage import _create_scoped_session
    except ImportError:
        return None
    return rdb, _create_scoped_session, models


def study_names(storage: BaseStorage) -> list[str]:
    """Names of every Optuna study in ``storage``."""
    return [
        s.study_name
        for s in optuna.study.get_all_study_summaries(storage, include_best_trial=False)
    ]


def model_types_in(storage: BaseStorage, study: str) -> list[str]:
    """Model types of hpolab study ``study`` present in ``storage``."""
    return model_types_from(study_names(storage), study)


def set_meta(study: optuna.Study, meta: dict[str, Any]) -> None:
    study.set_user_attr(META, meta)
