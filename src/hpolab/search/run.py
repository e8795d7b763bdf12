"""Run a whole study: every model type searched, resumed if stored, best retrained.

Order matters for "nothing is lost": the config, the data and every stored study are
checked before anything is written, so a bad input leaves existing work untouched.
"""

from __future__ import annotations

import json
import shutil
import time
import warnings
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback, fail_stale_trials
from optuna.trial import TrialState

import hpolab
from hpolab.config import StudyConfig
from hpolab.data import Dataset, load_dataset
from hpolab.errors import StudyMismatchError, TrialFailed
from hpolab.layout import Layout, atomic_write_json
from hpolab.models import build_model, model_file_suffix
from hpolab.progress import QuietReporter, Reporter
from hpolab.reporting import param_importance, write_combined_results, write_results
from hpolab.reporting.plots import PlotSet, build_plots
from hpolab.search.catalog import best_trial, trial_rows
from hpolab.search.objective import Objective
from hpolab.search.retrain import FinalModelInfo, existing_final, release, retrain_best
from hpolab.search.samplers import make_pruner, make_sampler
from hpolab.search.space import SearchSpace
from hpolab.search.storage import (
    get_meta,
    heartbeats,
    model_types_in,
    open_storage,
    optuna_study_name,
    redact,
    set_meta,
    take_recovered,
)
from hpolab.tracking import StudyTracker

# Optuna logs every failed trial with a traceback; failures are reported in one line instead.
optuna.logging.set_verbosity(optuna.logging.ERROR)
_FINISHED_STATES = (TrialState.COMPLETE, TrialState.PRUNED)


@dataclass
class ModelTypeResult:
    """Outcome of one model type of a study."""

    model_type: str
    best_value: float | None
    best_params: dict[str, Any]
    best_trial: int | None
    states: dict[str, int]
    results_path: Path
    final_model_path: Path | None = None
    sidecar_path: Path | None = None
    test_metrics: dict[str, float] = field(default_factory=dict)
    mlflow_run_id: str | None = None
    registered_version: str | None = None


@dataclass
class StudyResult:
    """Outcome of :func:`run_study`: best configurations and where everything is."""

    study: str
    metric: str
    direction: str
    storage_url: str
    tracking_uri: str
    parent_run_id: str | None
    combined_results_path: Path
    models: dict[str, ModelTypeResult]
    seconds: float
    new_trials: int
    mean_overhead_seconds: float | None

    @property
    def best_model_type(self) -> str | None:
        """The model type with the best value."""
        scored = [m for m in self.models.values() if m.best_value is not None]
        if not scored:
            return None
        pick = max if self.direction == "maximize" else min
        return pick(scored, key=lambda m: m.best_value).model_type  # type: ignore[arg-type,return-value]

    @property
    def best_params(self) -> dict[str, dict[str, Any]]:
        return {name: m.best_params for name, m in self.models.items()}

    @property
    def best_values(self) -> dict[str, float | None]:
        return {name: m.best_value for name, m in self.models.items()}


def run_study(
    cfg: StudyConfig,
    layout: Layout,
    reporter: Reporter | None = None,
    reset: bool = False,
    track: bool = True,
) -> StudyResult:
    """Search every model type of ``cfg``, retrain the best of each, write results."""
    reporter = reporter or QuietReporter()
    started = time.perf_counter()
    name = cfg.study.name
    data = load_dataset(cfg.data, layout.preprocessing_cache_dir)
    cfg = cfg.for_task(data.task)
    spaces = {mt: SearchSpace(spec.params()) for mt, spec in cfg.models.items()}
    for mt, space in spaces.items():
        make_sampler(cfg.study.sampler, space, cfg.study.seed)  # fails early (e.g. gp w/o torch)
        # A builder that cannot take this data's shape fails now, before anything is stored.
        release(build_model(mt, {}, data.input_shape, data.task, data.n_outputs))
    url = cfg.study.storage or layout.default_storage_url(name)
    storage = open_storage(
        url, cfg.study.heartbeat_interval, cfg.study.grace_period, cfg.study.max_retries
    )
    if reset:
        delete_study(name, storage, layout, reporter)
    _check_stored(cfg, storage, spaces, data)

    reporter.message(f"study [bold]{name}[/]: {data.summary()}")
    done = data.info.get("preprocessing")
    if done:
        settings = ", ".join(f"{k} {v}" for k, v in done["settings"].items() if v is not None)
        where = f" (cache {layout.preprocessing_cache_dir})" if cfg.data.cache else ""
        reporter.message(
            f"spectrograms ({settings}): {done['source']} in {done['seconds']:.2f} s{where}"
        )
    if data.info.get("task_inferred"):
        reporter.message(f"task inferred from the target: {data.task} (set data.task to override)")
    reporter.message(
        f"metric {cfg.study.metric} ({cfg.study.resolved_direction}), sampler {cfg.study.sampler}, "
        f"pruner {cfg.study.pruner}, storage {redact(url)}"
    )
    tracker = StudyTracker(layout.tracking_uri, layout.artifacts_dir, name) if track else None
    parent_id = _parent_run(cfg, storage, tracker, spaces)

    results: dict[str, ModelTypeResult] = {}
    summaries: dict[str, dict[str, Any]] = {}
    opened: dict[str, optuna.Study] = {}
    new_trials = 0
    fit_seconds = 0.0
    hook_seconds = 0.0
    search_seconds = 0.0
    try:
        for mt, space in spaces.items():
            study = _open_study(cfg, storage, mt, space, data, parent_id)
            before = len(study.trials)
            t0 = time.perf_counter()
            objective = Objective(cfg, mt, space, data, tracker, parent_id)
            objective.trial_dir = partial(layout.trial_dir, name, mt)
            _search(cfg, study, storage, objective, space, tracker, reporter)
            search_seconds += time.perf_counter() - t0
            fit_seconds += sum(objective.fit_seconds)
            hook_seconds += objective.hook_seconds
            added = len(study.trials) - before
            new_trials += added
            summary = _summary(cfg, mt, study, space)
            elapsed = time.perf_counter() - t0
            training = sum(objective.fit_seconds) - objective.hook_seconds
            summary["last_run_timing"] = {
                "new_trials": added,
                "search_seconds": round(elapsed, 3),
                "training_seconds": round(training, 3),
                "bookkeeping_seconds": round(elapsed - training, 3),
            }
            final = final_model(cfg, mt, study, space, data, layout, tracker, parent_id, reporter)
            if final is not None:
                summary["final_model"] = {
                    "model": str(final.model_path),
                    "sidecar": str(final.sidecar_path),
                    "mlflow_run_id": final.mlflow_run_id,
                }
                summary["test_metrics"] = final.test_metrics
            results_path = layout.results_file(name, mt)
            write_results(results_path, summary)
            if (
                tracker is not None
                and final is not None
                and final.mlflow_run_id
                and not final.reused
            ):
                tracker.log_artifact(final.mlflow_run_id, results_path, "results")
            summaries[mt] = summary
            opened[mt] = study
            results[mt] = _model_result(mt, summary, results_path, final)
    except KeyboardInterrupt:
        reporter.stop()
        if tracker is not None and parent_id is not None:
            tracker.finish_parent(parent_id, status="KILLED")
        raise
    finally:
        reporter.stop()
    combined = layout.combined_results_file(name)
    write_combined_results(combined, name, summaries)
    if cfg.study.plots:
        for mt, study in opened.items():
            importance = summaries[mt]["param_importance"].get("values", {})
            draw_plots(layout, name, mt, study, cfg.study.metric, importance, tracker, parent_id)
            reporter.message(f"{mt}: plots in {layout.visualizations_dir(name, mt)}")
    if tracker is not None and parent_id is not None:
        _log_parent_summary(tracker, parent_id, summaries, combined)
    # Per trial: everything but model training (storage, sampler, MLflow, artifacts).
    overhead = (search_seconds - fit_seconds + hook_seconds) / new_trials if new_trials else None
    return StudyResult(
        study=name,
        metric=cfg.study.metric,
        direction=cfg.study.resolved_direction,
        storage_url=url,
        tracking_uri=layout.tracking_uri,
        parent_run_id=parent_id,
        combined_results_path=combined,
        models=results,
        seconds=time.perf_counter() - started,
        new_trials=new_trials,
        mean_overhead_seconds=overhead,
    )


# -- before anything is written ----------------------------------------------------------
def _check_stored(
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


# -- study setup ---------------------------------------------------------------------------
def _parent_run(
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


def _open_study(
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
            "hpolab_version": hpolab.__version__,
        }
    )
    if parent_id is not None:
        meta["mlflow_parent_run_id"] = parent_id
    set_meta(study, meta)
    return study


# -- the search loop ----------------------------------------------------------------------
def counted_trials(study: optuna.Study) -> int:
    """Trials that use up the budget: finished, running, or failed and not re-queued."""
    trials = study.get_trials(deepcopy=False)
    retried = {n for t in trials for n in t.system_attrs.get("retry_history", [])}
    return sum(
        1
        for t in trials
        if t.state in (*_FINISHED_STATES, TrialState.RUNNING)
        or (t.state == TrialState.FAIL and t.number not in retried)
    )


def _search(
    cfg: StudyConfig,
    study: optuna.Study,
    storage: RDBStorage,
    objective: Objective,
    space: SearchSpace,
    tracker: StudyTracker | None,
    reporter: Reporter,
) -> None:
    mt = objective.model_type
    target = cfg.study.n_trials
    grid = isinstance(study.sampler, optuna.samplers.GridSampler)
    if grid:
        grid_total = 1
        for values in space.grid().values():
            grid_total *= len(values)
        target = min(target, grid_total)
    _settle_running(study, storage, tracker, reporter)
    reporter.start(mt, target, min(counted_trials(study), target))
    deadline = time.monotonic() + cfg.study.timeout if cfg.study.timeout else None

    def on_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        _report_recovered(study, storage, tracker, reporter)
        if trial.state == TrialState.FAIL:
            reason = trial.user_attrs.get("error", "see the trial's MLflow run")
            reporter.message(f"{mt}: trial {trial.number} failed: {reason}")
        counted = counted_trials(study)
        reporter.trial_done(mt, min(counted, target), _best_or_none(study))
        # Other workers sharing the storage also add trials: stop at the shared budget.
        if counted >= target and not study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            study.stop()

    reporter.trial_done(mt, min(counted_trials(study), target), _best_or_none(study))
    while True:
        _recover_stale(study, storage, tracker, reporter)
        remaining = target - counted_trials(study)
        waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
        if remaining <= 0 and not waiting:
            break
        if grid and study.sampler.is_exhausted(study) and not waiting:
            break
        time_left = None if deadline is None else deadline - time.monotonic()
        if time_left is not None and time_left <= 0:
            reporter.message(f"{mt}: timeout of {cfg.study.timeout:g}s reached")
            break
        before = len(study.trials)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                study.optimize(
                    objective,
                    n_trials=max(remaining, len(waiting), 1),
                    timeout=time_left,
                    catch=(TrialFailed,),
                    callbacks=[on_trial],
                    gc_after_trial=False,
                )
        except KeyboardInterrupt:
            _requeue_interrupted(study, objective, tracker)
            raise
        if len(study.trials) == before:
            break


def _recover_stale(
    study: optuna.Study, storage: RDBStorage, tracker: StudyTracker | None, reporter: Reporter
) -> None:
    """Fail trials whose worker died (no heartbeat), re-queue them, mirror it in MLflow."""
    if study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            fail_stale_trials(study)
    _report_recovered(study, storage, tracker, reporter)


def _report_recovered(
    study: optuna.Study, storage: RDBStorage, tracker: StudyTracker | None, reporter: Reporter
) -> None:
    """Report the stale trials failed and re-queued in this process (see RequeueStaleTrial).

    That includes those Optuna failed on its own when a trial started, so nothing more
    than this in-memory check is needed after each trial.
    """
    numbers = take_recovered(storage, study.study_name)
    if not numbers:
        return
    trials = study.get_trials(deepcopy=False)
    for number in numbers:
        run_id = trials[number].user_attrs.get("mlflow_run_id")
        if tracker is not None and run_id:
            tracker.mark_failed(run_id, "the worker stopped during this trial; re-queued")
    reporter.message(
        f"{study.study_name}: trial(s) {', '.join(map(str, numbers))} were left running by a "
        "stopped process; marked failed and their parameters re-queued"
    )


def _running_numbers(study: optuna.Study) -> set[int]:
    return {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}


def _settle_running(
    study: optuna.Study, storage: RDBStorage, tracker: StudyTracker | None, reporter: Reporter
) -> None:
    """Before searching, tell trials of a live worker from those of a stopped process.

    A trial left running counts against the budget. Right after a crash its heartbeat is
    still fresh, so wait until each such trial either beats again (its worker is alive),
    finishes, or goes stale (it is then failed and re-queued): at most the grace period.
    """
    _recover_stale(study, storage, tracker, reporter)
    pending = _running_numbers(study)
    if not pending:
        return
    first = heartbeats(storage, study.study_name, sorted(pending))
    interval, grace = storage.get_heartbeat_interval() or 1, storage.grace_period or 0
    reporter.message(
        f"{study.study_name}: trial(s) {', '.join(map(str, sorted(pending)))} marked running; "
        f"checking whether their worker is alive (up to {grace}s)"
    )
    deadline = time.monotonic() + grace + interval
    while pending and time.monotonic() < deadline:
        time.sleep(min(1.0, interval / 2))
        _recover_stale(study, storage, tracker, reporter)
        pending &= _running_numbers(study)
        beats = heartbeats(storage, study.study_name, sorted(pending))
        pending = {n for n in pending if beats.get(n) == first.get(n)}


def _requeue_interrupted(
    study: optuna.Study, objective: Objective, tracker: StudyTracker | None
) -> None:
    """After Ctrl-C, queue the interrupted configuration again so it is not lost."""
    if objective.current_trial is None:
        return
    trial = study.trials[objective.current_trial]
    if trial.state == TrialState.FAIL:
        RetryHeartbeatStaleTrialCallback()(study, trial)
        if tracker is not None and objective.current_run_id:
            tracker.mark_failed(objective.current_run_id, "interrupted; re-queued")


def _best_or_none(study: optuna.Study) -> float | None:
    try:
        return float(study.best_value)
    except ValueError:
        return None


# -- after the search ---------------------------------------------------------------------
def _summary(
    cfg: StudyConfig, model_type: str, study: optuna.Study, space: SearchSpace
) -> dict[str, Any]:
    rows = trial_rows(study, space)
    states: dict[str, int] = {}
    for row in rows:
        states[row["state"]] = states.get(row["state"], 0) + 1
    best = best_trial(study)
    return {
        "study": cfg.study.name,
        "model_type": model_type,
        "metric": cfg.study.metric,
        "direction": cfg.study.resolved_direction,
        "sampler": cfg.study.sampler,
        "pruner": cfg.study.pruner,
        "best_value": None if best is None else best.value,
        "best_trial": None if best is None else best.number,
        "best_params": {} if best is None else space.replay(best.params),
        "best_val_metrics": {} if best is None else best.user_attrs.get("val_metrics", {}),
        "n_trials": len(rows),
        "states": states,
        "param_importance": param_importance(study, cfg.study.seed),
        "trials": rows,
    }


def final_model(
    cfg: StudyConfig,
    model_type: str,
    study: optuna.Study,
    space: SearchSpace,
    data: Dataset,
    layout: Layout,
    tracker: StudyTracker | None,
    parent_id: str | None,
    reporter: Reporter,
    trial: optuna.trial.FrozenTrial | None = None,
    force: bool = False,
) -> FinalModelInfo | None:
    """Retrain ``trial`` (default: the best) into the final model, unless it is up to date."""
    best = trial or best_trial(study)
    if best is None:
        reporter.message(f"{model_type}: no complete trial, so no final model")
        return None
    reuse = None if force else existing_final(layout, cfg.study.name, model_type, best.number)
    if reuse is not None:
        reporter.message(f"{model_type}: final model of trial {best.number} is up to date")
        return reuse
    reporter.message(
        f"{model_type}: retraining trial {best.number} on train+validation "
        f"({best.user_attrs.get('best_epoch', cfg.training.epochs)} epochs)"
    )
    model, sidecar, seconds = retrain_best(cfg, model_type, study, space, data, layout, best)
    release(model)
    model_path = layout.final_model_path(cfg.study.name, model_type, model_file_suffix(model_type))
    sidecar_path = layout.final_sidecar_path(cfg.study.name, model_type)
    run_id = version = None
    if tracker is not None and parent_id is not None:
        run_id, version = tracker.log_final_model(
            parent_id,
            model_type,
            [model_path, sidecar_path],
            [],
            sidecar["params"],
            sidecar["test_metrics"],
            best.number,
        )
        sidecar["mlflow_run_id"] = run_id
        sidecar["registered_model"] = {"name": cfg.study.name, "version": version}
        atomic_write_json(sidecar_path, sidecar)
    return FinalModelInfo(
        model_path, sidecar_path, sidecar["test_metrics"], best.number, run_id, seconds
    )


def _model_result(
    mt: str, summary: dict[str, Any], results_path: Path, final: FinalModelInfo | None
) -> ModelTypeResult:
    return ModelTypeResult(
        model_type=mt,
        best_value=summary["best_value"],
        best_params=summary["best_params"],
        best_trial=summary["best_trial"],
        states=summary["states"],
        results_path=results_path,
        final_model_path=final.model_path if final else None,
        sidecar_path=final.sidecar_path if final else None,
        test_metrics=final.test_metrics if final else {},
        mlflow_run_id=final.mlflow_run_id if final else None,
    )


def draw_plots(
    layout: Layout,
    name: str,
    model_type: str,
    study: optuna.Study,
    metric: str,
    importance: dict[str, float],
    tracker: StudyTracker | None,
    parent_id: str | None,
) -> PlotSet:
    """Draw one model type's visualizations and log them to the study's parent run."""
    plots = build_plots(
        study, layout.visualizations_dir(name, model_type), metric=metric, importance=importance
    )
    if tracker is not None and parent_id is not None and (plots.png or plots.html):
        tracker.log_artifacts(parent_id, plots.directory, f"visualizations/{model_type}")
    return plots


def _log_parent_summary(
    tracker: StudyTracker, parent_id: str, summaries: dict[str, dict[str, Any]], combined: Path
) -> None:
    metrics = {}
    for mt, summary in summaries.items():
        if summary["best_value"] is not None:
            metrics[f"best_{summary['metric']}_{mt}"] = summary["best_value"]
        metrics[f"n_trials_{mt}"] = summary["n_trials"]
    tracker.log_summary(parent_id, metrics)
    tracker.set_description(parent_id, study_markdown(summaries))
    tracker.log_artifact(parent_id, combined, "results")
    for summary in summaries.values():
        path = combined.parent / f"hpo_results_{summary['model_type']}.json"
        if path.exists():
            tracker.log_artifact(parent_id, path, "results")
    tracker.finish_parent(parent_id)


def study_markdown(summaries: dict[str, dict[str, Any]]) -> str:
    """A short markdown summary of a study, shown as the parent run's description."""
    lines = [
        "| model type | best | trial | trials | complete / pruned / failed | test metrics |",
        "|---|---|---|---|---|---|",
    ]
    for mt, s in summaries.items():
        states = s.get("states", {})
        counts = " / ".join(str(states.get(k, 0)) for k in ("complete", "pruned", "fail"))
        tests = ", ".join(f"{k} {v:.4g}" for k, v in (s.get("test_metrics") or {}).items())
        best = "-" if s.get("best_value") is None else f"{s['best_value']:.5g}"
        lines.append(
            f"| {mt} | {best} | {s.get('best_trial')} | {s.get('n_trials')} | {counts} | {tests} |"
        )
    first = next(iter(summaries.values()), {})
    header = f"**{first.get('metric', '')}** ({first.get('direction', '')}), best per model type:"
    return header + "\n\n" + "\n".join(lines)
