"""Run a whole study: every model type searched, resumed if stored, best retrained.

:func:`run_study` is a pipeline of named steps: check everything (nothing written yet),
open the study and its MLflow parent run, search each model type and finish it (summary,
final model, results file), then write the combined results, plots and the parent run's
summary. Each step lives in :mod:`~hpolab.search.setup`, :mod:`~hpolab.search.loop` or
:mod:`~hpolab.search.finish`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import optuna

from hpolab.config import StudyConfig
from hpolab.data import Dataset, load_dataset
from hpolab.errors import ConfigError, FinalModelError
from hpolab.layout import Layout, remove_stale_temp_files
from hpolab.models.custom import register_config
from hpolab.progress import QuietReporter, Reporter
from hpolab.reporting import ModelTypeSummary, write_combined_results, write_results
from hpolab.reporting.plots import PageSection
from hpolab.search.catalog import best_trial
from hpolab.search.define_by_run import AnySpace, DefineByRunSpace, first_values, make_space
from hpolab.search.finish import (
    draw_page,
    draw_plots,
    final_model,
    log_parent_summary,
    summarize,
)
from hpolab.search.loop import search_trials
from hpolab.search.objective import Objective
from hpolab.search.pool import POOL_INDEX_ENV, Pool, apply_thread_limits, limit_this_process
from hpolab.search.retrain import FinalModelInfo
from hpolab.search.samplers import make_sampler
from hpolab.search.setup import (
    check_deletable,
    check_stored,
    delete_study,
    open_study,
    parent_run,
)
from hpolab.search.space import SearchSpace
from hpolab.search.storage import open_storage, redact
from hpolab.search.workers import WORKER, Elections, WorkerId
from hpolab.tracking import StudyTracker
from hpolab.training.fit import check_builds, training_params

# Optuna logs every failed trial with a traceback; failures are reported in one line instead.
optuna.logging.set_verbosity(optuna.logging.ERROR)


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
    # The final model's test score beside a trivial model's (majority class / mean).
    baseline: dict[str, Any] | None = None
    stopped_early: str | None = None  # why the search ended before its budget, if it did


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
    new_trials: int  # trials this process ran (a pool: all its workers)
    mean_overhead_seconds: float | None
    study_new_trials: int = 0  # trials added to the study meanwhile, by any worker
    finished_by: str | None = None  # the worker that writes the results, if not this one

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

    def final_model(self, model_type: str | None = None) -> Any:
        """The final model of ``model_type`` (default: the best model type), loaded as
        :func:`hpolab.load_final_model` does."""
        from hpolab.api import load_final_model

        chosen = model_type or self.best_model_type
        found = self.models.get(chosen) if chosen else None
        if found is None or found.final_model_path is None:
            raise FinalModelError(f"study {self.study!r}: no final model for {chosen!r}")
        return load_final_model(found.final_model_path)

    def predict(self, X: Any, model_type: str | None = None) -> Any:
        """Predictions of the final model for raw features: original labels, or target
        values in their units (the study's scaling and spectrograms applied)."""
        return self.final_model(model_type).predict(X)

    @property
    def best_values(self) -> dict[str, float | None]:
        return {name: m.best_value for name, m in self.models.items()}


@dataclass
class _Timing:
    """Where this run's search time went, over every model type."""

    new_trials: int = 0
    study_new_trials: int = 0
    search: float = 0.0
    training: float = 0.0  # inside model.fit, minus time spent in pruning/tracking hooks

    def add(self, mine: int, study_new: int, seconds: float, training: float) -> None:
        """Account one model type's search: trials run here, added by anyone, times."""
        self.new_trials += mine
        self.study_new_trials += study_new
        self.search += seconds
        self.training += training

    def overhead_per_trial(self) -> float | None:
        """Mean per-trial time outside training (storage, sampler, MLflow, artifacts)."""
        return (self.search - self.training) / self.new_trials if self.new_trials else None


def run_study(
    cfg: StudyConfig,
    layout: Layout,
    reporter: Reporter | None = None,
    reset: bool = False,
    track: bool = True,
    *,
    worker_index: int | None = None,
    finish: bool = True,
) -> StudyResult:
    """Search every model type of ``cfg``, retrain the best of each, write results.

    Several processes may run this on one study (shared storage): they share the trial
    budget, and one of them (elected) retrains each final model and writes the results.
    With ``study.workers`` > 1 this process starts that many local workers and finishes
    the study itself. ``finish=False`` only searches (a pool's worker).
    """
    reporter = reporter or QuietReporter()
    started = time.perf_counter()
    local_pool = cfg.study.workers > 1 and worker_index is None
    if local_pool:
        limit_this_process(cfg.study.workers)  # before TensorFlow starts its thread pools
        worker_index = 0
    elif os.environ.get(POOL_INDEX_ENV):  # a worker started by a local pool
        apply_thread_limits()
    _only_in_this_process(cfg, local_pool)
    data = load_dataset(cfg.data, layout.preprocessing_cache_dir, cfg.study.code_path)
    cfg = cfg.for_task(data.task)
    register_config(cfg)  # the user's builders, imported before anything is stored
    pool = Pool(cfg, layout, reporter, track) if local_pool else None
    if pool is not None and not reset:
        pool.start()  # their start-up overlaps this process's checks and set-up
    try:
        context, spaces = _set_up(cfg, data, layout, reporter, reset, track, worker_index)
        context.finish = finish
        if pool is not None and not pool.workers:
            pool.start()  # after the reset, which they must not race
        try:
            outcome = context.search_all(spaces)
            if pool is not None:
                pool.wait()
            if finish:
                context.write_study_results(outcome)
        finally:
            context.elections.release()  # nothing of this worker's holds up a later run
    except BaseException:
        if pool is not None:
            pool.stop()
        raise
    return StudyResult(
        study=cfg.study.name,
        metric=cfg.study.metric,
        direction=cfg.study.resolved_direction,
        storage_url=context.storage_url,
        tracking_uri=context.tracking_uri,
        parent_run_id=context.parent_id,
        combined_results_path=layout.combined_results_file(cfg.study.name),
        models=outcome.results,
        seconds=time.perf_counter() - started,
        new_trials=outcome.timing.new_trials,
        mean_overhead_seconds=outcome.timing.overhead_per_trial(),
        study_new_trials=outcome.timing.study_new_trials,
        finished_by=outcome.finished_by,
    )


def _set_up(
    cfg: StudyConfig,
    data: Dataset,
    layout: Layout,
    reporter: Reporter,
    reset: bool,
    track: bool,
    worker_index: int | None,
) -> tuple[_StudyContext, dict[str, SearchSpace]]:
    """Check everything, then reset if asked, open the storage and the MLflow parent run."""
    name = cfg.study.name
    spaces = _check_model_types(cfg, data)
    if reset:
        check_deletable(name, layout)  # before a storage file is made for nothing
    if cfg.study.storage is None:  # the default storage lives in the root
        layout.check_root()
    url = cfg.study.storage or layout.default_storage_url(name)
    storage = open_storage(
        url, cfg.study.heartbeat_interval, cfg.study.grace_period, cfg.study.max_retries
    )
    layout.check_root()  # after a given storage opened: a bad one leaves no root behind
    for folder in (layout.results_dir(name), layout.final_model_dir(name)):
        remove_stale_temp_files(folder)  # left by a writer killed mid-write
    remove_stale_temp_files(layout.mlruns_dir, recursive=False)  # a store being created
    tracking_uri = resolve_tracking_uri(cfg, layout)
    if cfg.study.sampler == "cmaes" and cfg.study.storage is not None:
        reporter.message(
            "warning: the cmaes sampler keeps its state in the storage as a pickle: whoever "
            "can write to that database can run code in every worker; share it only with "
            "hosts you trust"
        )
    if reset:
        delete_study(name, storage, layout, reporter, tracking_uri=tracking_uri)
    check_stored(cfg, storage, spaces, data)
    _announce(cfg, data, layout, url, reporter)
    elections = Elections(storage, name, WorkerId.current(worker_index))
    tracker = StudyTracker(tracking_uri, layout.artifacts_dir, name) if track else None
    parent_id = parent_run(cfg, storage, tracker, spaces, elections)
    context = _StudyContext(
        cfg,
        data,
        layout,
        storage,
        tracker,
        parent_id,
        reporter,
        elections,
        storage_url=url,
        tracking_uri=tracking_uri,
    )
    return context, spaces


def resolve_tracking_uri(cfg: StudyConfig, layout: Layout) -> str:
    """Where MLflow runs go: ``study.tracking_uri``, ``$MLFLOW_TRACKING_URI``, or the root."""
    return cfg.study.tracking_uri or layout.tracking_uri


def _check_model_types(cfg: StudyConfig, data: Dataset) -> dict[str, AnySpace]:
    """Each model type's space, its sampler and its builder checked before anything is stored."""
    spaces = {mt: make_space(cfg, mt, data) for mt in cfg.models}
    for mt, space in spaces.items():
        if cfg.study.sampler == "grid" and isinstance(space, DefineByRunSpace):
            space.grid_points()  # discovered now: a range without finite values fails here
        make_sampler(cfg.study.sampler, space, cfg.study.seed)  # fails early (e.g. gp w/o torch)
        # A builder that cannot take this data's shape, or a loss / optimizer / schedule
        # that does not exist, fails now, before anything is stored. A model of the user's
        # is also saved and loaded back, as its final model will be.
        own = cfg.models[mt].builder is not None
        check_builds(
            mt,
            data,
            _training_variants(space, cfg),
            params=first_values(space) if own else None,
            round_trip=f"models.{mt}.builder" if own else None,
        )
    return spaces


def _only_in_this_process(cfg: StudyConfig, local_pool: bool) -> None:
    """In-memory data and callables cannot reach the worker processes of a pool."""
    here = [f"models.{mt}.builder" for mt, s in cfg.models.items() if callable(s.builder)]
    if cfg.data.source.startswith("memory:"):
        here.append("data")
    if local_pool and here:
        raise ConfigError(
            f"study.workers: {here[0]} lives in this Python process only; with workers, "
            "name it as module:function (or a file) so every worker can load it"
        )


def _training_variants(space: SearchSpace, cfg: StudyConfig) -> list[dict[str, Any]]:
    """The config's training settings, once per loss / optimizer / schedule a space names."""
    base = training_params({}, cfg.training)
    variants = [base]
    for key in ("loss", "optimizer", "lr_schedule"):
        spec = space.params.get(key)
        if spec is not None and spec.type in ("categorical", "fixed"):
            variants += [{**base, key: value} for value in spec.grid_values()]
    return variants


def _announce(
    cfg: StudyConfig, data: Dataset, layout: Layout, url: str, reporter: Reporter
) -> None:
    """Say what is about to run: data, preprocessing, inferred task, metric and storage."""
    reporter.message(f"study [bold]{cfg.study.name}[/]: {data.summary()}")
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


@dataclass
class _Outcome:
    """What the search of every model type produced, by model type."""

    studies: dict[str, optuna.Study] = field(default_factory=dict)
    summaries: dict[str, ModelTypeSummary] = field(default_factory=dict)
    results: dict[str, ModelTypeResult] = field(default_factory=dict)
    timing: _Timing = field(default_factory=_Timing)
    finished_here: set[str] = field(default_factory=set)
    finished_by: str | None = None


@dataclass
class _StudyContext:
    """What every step of one study run shares."""

    cfg: StudyConfig
    data: Dataset
    layout: Layout
    storage: Any
    tracker: StudyTracker | None
    parent_id: str | None
    reporter: Reporter
    elections: Elections
    finish: bool = True
    storage_url: str = ""
    tracking_uri: str = ""

    def search_all(self, spaces: dict[str, SearchSpace]) -> _Outcome:
        """Search and finish each model type in turn; Ctrl-C ends the parent run as KILLED."""
        outcome = _Outcome()
        with self._interruptible():
            for mt, space in spaces.items():
                self.search_model_type(mt, space, outcome)
        return outcome

    @contextmanager
    def _interruptible(self) -> Iterator[None]:
        try:
            yield
        except KeyboardInterrupt:
            self.reporter.stop()
            if self.tracker is not None and self.parent_id is not None:
                self.tracker.finish_parent(self.parent_id, status="KILLED")
            raise
        finally:
            self.reporter.stop()

    def search_model_type(self, mt: str, space: SearchSpace, outcome: _Outcome) -> None:
        """Search one model type, then summarize it, retrain its best and write its results."""
        cfg, layout, name = self.cfg, self.layout, self.cfg.study.name
        study = open_study(cfg, self.storage, mt, space, self.data, self.parent_id)
        before = len(study.trials)
        t0 = time.perf_counter()
        objective = Objective(cfg, mt, space, self.data, self.tracker, self.parent_id)
        objective.trial_dir = partial(layout.trial_dir, name, mt)
        objective.worker = self.elections.worker.as_dict()
        objective.notify = self.reporter.message
        try:
            waited = search_trials(
                cfg, study, self.storage, objective, space, self.tracker, self.reporter
            )
        finally:
            objective.writes.close()
        training = sum(objective.fit_seconds) - objective.hook_seconds
        # Waiting for other workers' last trials is neither training nor bookkeeping.
        t0 += waited
        seconds = time.perf_counter() - t0
        added = objective.trials_run
        outcome.timing.add(added, len(study.trials) - before, seconds, training)
        outcome.studies[mt] = study
        if self.finish:
            self.finish_model_type(mt, space, study, outcome, added, seconds, training)

    def finish_model_type(
        self,
        mt: str,
        space: SearchSpace,
        study: optuna.Study,
        outcome: _Outcome,
        added: int,
        seconds: float,
        training: float,
    ) -> None:
        """Summary, final model, results file and plots: by one worker only (elected)."""
        outcome.studies[mt] = study
        started = time.perf_counter()
        key = f"finish:{mt}"
        done_elsewhere = self._finished_elsewhere(study)
        if done_elsewhere is not None:
            won, who = False, done_elsewhere
        else:
            won, who = self.elections.elect(key)
        summary = summarize(self.cfg, mt, study, space)
        # The election and the summary (trial rows, importance) happen once per study, not
        # per trial: their time is given apart from the search's.
        summary.set_timing(added, seconds, training, time.perf_counter() - started)
        results_path = self.layout.results_file(self.cfg.study.name, mt)
        if not won:
            self.reporter.message(f"{mt}: {who} retrains the final model and writes the results")
            outcome.finished_by = str(who)
            outcome.summaries[mt] = summary
            outcome.results[mt] = _model_result(summary, results_path, None)
            return
        with self.elections.holding(key):
            final = self._final_model(mt, space, study, summary, results_path)
            if self.cfg.study.plots:
                self._plots(mt, study, summary)
            # For the combined results, written by whichever worker wins that election.
            if summary.final_model:
                published = {
                    "where": summary.final_model,
                    "test_metrics": summary.test_metrics,
                    "baseline": summary.baseline,
                }
                self.elections.publish(key, _FINAL, published)
            study.set_user_attr(_FINISHED, self._finish_record(study))
        outcome.finished_here.add(mt)
        outcome.summaries[mt] = summary
        outcome.results[mt] = _model_result(summary, results_path, final)

    def _finish_record(self, study: optuna.Study) -> dict[str, Any]:
        """What was finished (best trial, finished trials) by whom, on which root."""
        best = best_trial(study)
        return {
            "best_trial": None if best is None else best.number,
            "finished_trials": _finished_count(study),
            "worker": self.elections.worker.as_dict(),
            "root": str(self.layout.root),
        }

    def _finished_elsewhere(self, study: optuna.Study) -> WorkerId | None:
        """The worker that already finished this very state of the study on another root.

        A worker arriving after the study was finished (it started late) must not retrain
        and register the same final model again on its own root; on the same root a
        rerun refreshes the results and reuses the final model.
        """
        record = study.user_attrs.get(_FINISHED)
        if not record:
            return None
        mine = self._finish_record(study)
        same_state = all(record.get(k) == mine[k] for k in ("best_trial", "finished_trials"))
        if not same_state or record.get("root") == mine["root"]:
            return None
        return WorkerId.from_dict(record.get("worker", {}))

    def _final_model(
        self,
        mt: str,
        space: SearchSpace,
        study: optuna.Study,
        summary: ModelTypeSummary,
        results_path: Path,
    ) -> FinalModelInfo | None:
        cfg, layout = self.cfg, self.layout
        final = final_model(
            cfg, mt, study, space, self.data, layout, self.tracker, self.parent_id, self.reporter
        )
        if final is not None:
            summary.set_final_model(
                str(final.model_path),
                str(final.sidecar_path),
                final.mlflow_run_id,
                final.test_metrics,
                final.baseline,
            )
        write_results(results_path, summary)
        # A reused final model's run already holds the results of the run that made it.
        if (
            self.tracker is not None
            and final is not None
            and final.mlflow_run_id
            and not final.reused
        ):
            self.tracker.log_artifact(final.mlflow_run_id, results_path, "results")
        return final

    def _plots(self, mt: str, study: optuna.Study, summary: ModelTypeSummary) -> None:
        importance = summary.param_importance.get("values", {})
        name = self.cfg.study.name
        draw_plots(
            self.layout,
            name,
            mt,
            study,
            self.cfg.study.metric,
            importance,
            self.tracker,
            self.parent_id,
        )
        self.reporter.message(f"{mt}: plots in {self.layout.visualizations_dir(name, mt)}")

    def _plots_page(self, outcome: _Outcome) -> None:
        """The study's interactive plots, every model type of this run on one page."""
        metric, name = self.cfg.study.metric, self.cfg.study.name
        sections = [
            PageSection(mt, study, metric, summary.param_importance.get("values", {}))
            for mt, study in outcome.studies.items()
            if (summary := outcome.summaries.get(mt)) is not None
        ]
        if sections:
            page = draw_page(self.layout, name, sections, self.tracker, self.parent_id)
            self.reporter.message(f"interactive plots: {page}")

    def write_study_results(self, outcome: _Outcome) -> None:
        """Combined results and the parent run's summary, by one worker only (elected).

        Model types finished by other workers are summarized again once they are done.
        """
        key = "finish:study"
        won, who = self.elections.elect(key)
        if not won:
            self.reporter.message(f"{who} writes the study's combined results")
            outcome.finished_by = str(who)
            return
        with self.elections.holding(key):
            self._refresh_others(outcome)
            name = self.cfg.study.name
            write_combined_results(self.layout.combined_results_file(name), name, outcome.summaries)
            if self.cfg.study.plots:
                self._plots_page(outcome)
            if self.tracker is not None and self.parent_id is not None:
                log_parent_summary(
                    self.tracker, self.parent_id, outcome.summaries, self.layout, name
                )

    def _refresh_others(self, outcome: _Outcome) -> None:
        """Wait for the finishers of the other model types, then summarize them anew.

        Their final models may be on another host: what they published is used.
        """
        for mt, study in outcome.studies.items():
            if mt in outcome.finished_here:
                continue
            key = f"finish:{mt}"
            finisher = self.elections.winner(key)
            if finisher is not None:
                who = WorkerId.from_dict(finisher.user_attrs.get(WORKER, {}))
                self.reporter.message(f"waiting for {who} to finish {mt}")
            while self.elections.winner(key) is not None:  # a dead finisher's claim lapses
                time.sleep(1.0)
            summary = summarize(self.cfg, mt, study, make_space(self.cfg, mt))
            final = self.elections.published(key, _FINAL, newest=True)
            if final:
                summary.final_model = final["where"]
                summary.test_metrics = final["test_metrics"]
                summary.baseline = final.get("baseline")
            outcome.summaries[mt] = summary


_FINAL = "final_model"
_FINISHED = "hpolab_finished"


def _finished_count(study: optuna.Study) -> int:
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return len(study.get_trials(deepcopy=False, states=states))


def _model_result(
    summary: ModelTypeSummary, results_path: Path, final: FinalModelInfo | None
) -> ModelTypeResult:
    return ModelTypeResult(
        model_type=summary.model_type,
        best_value=summary.best_value,
        best_params=summary.best_params,
        best_trial=summary.best_trial,
        states=summary.states,
        results_path=results_path,
        final_model_path=final.model_path if final else None,
        sidecar_path=final.sidecar_path if final else None,
        test_metrics=final.test_metrics if final else {},
        mlflow_run_id=final.mlflow_run_id if final else None,
        registered_version=final.registered_version if final else None,
        baseline=final.baseline if final else None,
        stopped_early=summary.stopped_early,
    )
