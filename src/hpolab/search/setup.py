"""Study set-up before the search: checks that change nothing, reset, parent run, studies.

Order matters for "nothing is lost": the config, the data and every stored study are
checked before anything is written, so a bad input leaves existing work untouched.
"""

from __future__ import annotations

import json
import shutil

import optuna
from optuna.storages import RDBStorage

from hpolab.config import StudyConfig
from hpolab.data import Dataset
from hpolab.errors import StudyMismatchError
from hpolab.layout import Layout
from hpolab.progress import Reporter
from hpolab.search.samplers import make_pruner, make_sampler
from hpolab.search.space import SearchSpace
from hpolab.search.storage import get_meta, model_types_in, optuna_study_name, set_meta
from hpolab.tracking import StudyTracker
from hpolab.version import __version__


def check_stored(
    cfg: StudyConfig, storage: RDBStorage, spaces: dict[str, SearchSpace], data: Dataset
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


def delete_study(
    name: str, storage: RDBStorage, layout: Layout, reporter: Reporter, what: str = "--reset"
) -> list[str]:
    """Remove a study's trials, results, final models and MLflow runs; say and return what."""
    removed = []
    for mt in model_types_in(storage, name):
        optuna.delete_study(study_name=optuna_study_name(name, mt), storage=storage)
        removed.append(f"Optuna study {name}.{mt}")
    for path in (layout.results_dir(name), layout.final_model_dir(name)):
        if path.exists():
            shutil.rmtree(path)
            removed.append(str(path))
    try:
        tracker = StudyTracker(layout.tracking_uri, layout.artifacts_dir, name)
        n_runs = tracker.delete_runs()
        if n_runs:
            removed.append(f"{n_runs} MLflow runs of experiment {name}")
        if tracker.delete_registered_model():
            removed.append(f"registered model {name}")
    except Exception as exc:  # a broken tracking store must not block a reset
        removed.append(f"(MLflow runs not removed: {exc})")
    reporter.message(
        f"{what} removed: " + ("; ".join(removed) if removed else "nothing (no stored study)")
    )
    return removed


def parent_run(
    cfg: StudyConfig,
    storage: RDBStorage,
    tracker: StudyTracker | None,
    spaces: dict[str, SearchSpace],
) -> str | None:
    if tracker is None:
        return None
    known = None
    for mt in model_types_in(storage, cfg.study.name):
        study = optuna.load_study(study_name=optuna_study_name(cfg.study.name, mt), storage=storage)
        known = known or get_meta(study).get("mlflow_parent_run_id")
    parent_id, _ = tracker.parent_run(known, f"hpolab study {cfg.study.name}")
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


def open_study(
    cfg: StudyConfig,
    storage: RDBStorage,
    model_type: str,
    space: SearchSpace,
    data: Dataset,
    parent_id: str | None,
) -> optuna.Study:
    name = optuna_study_name(cfg.study.name, model_type)
    existing = model_type in model_types_in(storage, cfg.study.name)
    n_existing = 0
    if existing:
        n_existing = len(optuna.load_study(study_name=name, storage=storage).trials)
    # Offset the seed on resume, or a seeded sampler would replay its first suggestions.
    # Not for grid: its seed fixes the order of grid points, which must stay the same.
    seed = cfg.study.seed
    if seed is not None and cfg.study.sampler != "grid":
        seed += n_existing
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        sampler=make_sampler(cfg.study.sampler, space, seed),
        # With cross-validation the pruner's steps are folds, not epochs.
        pruner=make_pruner(
            cfg.study.pruner,
            cfg.data.cv.n_splits if cfg.data.cv else cfg.training.epochs,
            warmup_steps=1 if cfg.data.cv else 2,
        ),
        direction=cfg.study.resolved_direction,
        load_if_exists=True,
    )
    meta = get_meta(study)
    meta.update(
        {
            "study": cfg.study.name,
            "model_type": model_type,
            "metric": cfg.study.metric,
            "direction": cfg.study.resolved_direction,
            "data_fingerprint": data.fingerprint,
            "space_signature": space.signature(),
            "config": json.loads(cfg.model_dump_json()),
            "hpolab_version": __version__,
        }
    )
    if parent_id is not None:
        meta["mlflow_parent_run_id"] = parent_id
    set_meta(study, meta)
    return study
