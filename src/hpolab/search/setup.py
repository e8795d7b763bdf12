"""Study set-up before the search: checks that change nothing, reset, parent run, studies.

Order matters for "nothing is lost": the config, the data and every stored study are
checked before anything is written, so a bad input leaves existing work untouched.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import optuna
from optuna.storages import BaseStorage

from hpolab.config import StudyConfig
from hpolab.data import Dataset
from hpolab.errors import ConfigError, StudyMismatchError
from hpolab.layout import Layout
from hpolab.progress import Reporter
from hpolab.search.define_by_run import DefineByRunSpace
from hpolab.search.samplers import make_pruner, make_sampler
from hpolab.search.space import SearchSpace
from hpolab.search.storage import (
    get_meta,
    model_types_in,
    optuna_study_name,
    set_meta,
    study_names,
)
from hpolab.search.workers import Elections, bookkeeping_study_name
from hpolab.tracking import StudyTracker
from hpolab.version import __version__


def check_stored(
    cfg: StudyConfig, storage: BaseStorage, spaces: dict[str, SearchSpace], data: Dataset
) -> None:
    """Refuse to resume a stored study with a different metric, direction, data or space."""
    stored = set(model_types_in(storage, cfg.study.name))
    fix = "use --reset to start over, or a new --study-name"
    for mt, space in spaces.items():
        if mt not in stored:
            continue
        study = optuna.load_study(study_name=optuna_study_name(cfg.study.name, mt), storage=storage)
        meta = get_meta(study)
        checks = [
            ("metric", meta.get("metric"), cfg.study.metric),
            ("direction", meta.get("direction"), cfg.study.resolved_direction),
            ("data fingerprint", meta.get("data_fingerprint"), data.fingerprint),
            ("search space", meta.get("space_signature"), space.signature()),
        ]
        for what, old, new in checks:
            if old is not None and old != new:
                shown = "" if what == "search space" else f" ({old} -> {new})"
                raise StudyMismatchError(
                    f"study {cfg.study.name!r} ({mt}) was created with a different {what}"
                    f"{shown}; {fix}"
                )


def check_deletable(name: str, layout: Layout, what: str = "--reset") -> None:
    """Refuse, before anything is deleted, folders of ``name`` that are symbolic links.

    Removing a link's target would delete files outside the root; removing only the link
    would leave the old results where the next run does not look.

    Raises:
        ConfigError: naming the link.
    """
    for path in (layout.results_dir(name), layout.final_model_dir(name)):
        if path.is_symlink():
            raise ConfigError(
                f"{what}: {path} is a symbolic link; hpolab does not delete through links: "
                "remove the link (or its contents) yourself, then run again"
            )


class _NoTrackingStore(Exception):
    """The root has no MLflow store: there are no runs to delete."""


def delete_study(
    name: str,
    storage: BaseStorage,
    layout: Layout,
    reporter: Reporter,
    what: str = "--reset",
    tracking_uri: str | None = None,
) -> list[str]:
    """Remove a study's trials, results, final models and MLflow runs; say and return what."""
    check_deletable(name, layout, what)
    removed = []
    for mt in model_types_in(storage, name):
        optuna.delete_study(study_name=optuna_study_name(name, mt), storage=storage)
        removed.append(f"Optuna study {name}.{mt}")
    bookkeeping = bookkeeping_study_name(name)
    if bookkeeping in study_names(storage):
        optuna.delete_study(study_name=bookkeeping, storage=storage)
    for path in (layout.results_dir(name), layout.final_model_dir(name)):
        if path.exists():
            shutil.rmtree(path)
            removed.append(str(path))
    try:
        uri = tracking_uri or layout.tracking_uri
        if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
            raise _NoTrackingStore  # nothing was ever tracked here: do not create a store
        tracker = StudyTracker(uri, layout.artifacts_dir, name, create=False)
        n_runs = tracker.delete_runs()
        if n_runs:
            removed.append(f"{n_runs} MLflow runs of experiment {name}")
        if tracker.delete_registered_model():
            removed.append(f"registered models of {name} ({name}-<model type>)")
    except _NoTrackingStore:
        pass
    except Exception as exc:  # a broken tracking store must not block a reset
        removed.append(f"(MLflow runs not removed: {exc})")
    reporter.message(
        f"{what} removed: " + ("; ".join(removed) if removed else "nothing (no stored study)")
    )
    return removed


def parent_run(
    cfg: StudyConfig,
    storage: BaseStorage,
    tracker: StudyTracker | None,
    spaces: dict[str, SearchSpace],
    elections: Elections,
) -> str | None:
    """The study's one MLflow parent run, whichever worker creates it.

    A stored study knows its parent run. For a new one, workers starting together elect
    the one that creates it; the others wait for its id (see :class:`Elections`).
    """
    if tracker is None:
        return None
    known = None
    for mt in model_types_in(storage, cfg.study.name):
        study = optuna.load_study(study_name=optuna_study_name(cfg.study.name, mt), storage=storage)
        known = known or get_meta(study).get("mlflow_parent_run_id")
    if known is None:
        _, known = elections.elect_or_wait(_PARENT, _RUN_ID)
    parent_id, created = tracker.parent_run(known, f"hpolab study {cfg.study.name}")
    if created:
        elections.publish(_PARENT, _RUN_ID, parent_id)
        elections.done(_PARENT)
    tracker.log_study_params(
        parent_id,
        {
            "metric": cfg.study.metric,
            "direction": cfg.study.resolved_direction,
            "sampler": cfg.study.sampler,
            "pruner": cfg.study.pruner,
            "model_types": ",".join(spaces),
            "data_source": cfg.data.source,
        },
    )
    return parent_id


_PARENT, _RUN_ID = "mlflow_parent_run", "run_id"


def open_study(
    cfg: StudyConfig,
    storage: BaseStorage,
    model_type: str,
    space: SearchSpace,
    data: Dataset,
    parent_id: str | None,
) -> optuna.Study:
    name = optuna_study_name(cfg.study.name, model_type)
    # Seeded samplers are seeded per trial number, so neither a resumed run nor a second
    # worker replays earlier suggestions; grid's seed fixes the order of its points.
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        sampler=make_sampler(
            cfg.study.sampler,
            space,
            cfg.study.seed,
            startup_trials=cfg.study.resolved_startup_trials,
            center_first=cfg.study.center_first,
        ),
        # With cross-validation the pruner's steps are folds, not epochs.
        pruner=make_pruner(
            cfg.study.pruner,
            cfg.data.cv.n_splits if cfg.data.cv else cfg.training.epochs,
            warmup_steps=cfg.study.resolved_pruner_warmup(cfg.data.cv is not None),
        ),
        direction=cfg.study.resolved_direction,
        load_if_exists=True,
    )
    if study.metric_names is None:  # new, or stored before hpolab named the objective
        # optuna-dashboard and Optuna's plots show this name instead of "Objective 0".
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names([cfg.study.metric])
    meta = get_meta(study)
    meta.update(
        {
            "study": cfg.study.name,
            "model_type": model_type,
            "metric": cfg.study.metric,
            "direction": cfg.study.resolved_direction,
            "data_fingerprint": data.fingerprint,
            "space_signature": space.signature(),
            "define_by_run": isinstance(space, DefineByRunSpace),
            "config": json.loads(cfg.model_dump_json()),
            "hpolab_version": __version__,
        }
    )
    if parent_id is not None:
        meta["mlflow_parent_run_id"] = parent_id
    set_meta(study, meta)
    return study
