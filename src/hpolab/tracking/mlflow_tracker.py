"""MLflow mirror of a study: one experiment, one parent run, a child run per trial.

The study state lives in Optuna storage; MLflow mirrors it. Runs carry the trial number
as a tag and trials carry the run id as a user attribute, so either side can be
reconciled from the other when a study resumes.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
import time
import warnings
from collections.abc import Mapping
from concurrent.futures import Future
from contextlib import nullcontext, suppress
from pathlib import Path
from typing import Any

os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

from mlflow.entities import (  # noqa: E402
    Dataset,
    DatasetInput,
    InputTag,
    Metric,
    Param,
    RunStatus,
    RunTag,
    ViewType,
)
from mlflow.exceptions import MlflowException  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

from hpolab.errors import TrackingError, redact  # noqa: E402
from hpolab.interrupts import shield_methods  # noqa: E402
from hpolab.layout import atomic_path, file_lock, is_temp_file  # noqa: E402
from hpolab.sqlite_tuning import tune_engine  # noqa: E402

ROLE_TAG = "hpolab.role"
STATE_TAG = "hpolab.state"
TRIAL_TAG = "hpolab.trial_number"
MODEL_TYPE_TAG = "hpolab.model_type"
PARENT_TAG = "mlflow.parentRunId"
WORKER_TAG = "hpolab.worker"
WEIGHTS_TAG = "hpolab.weights_sha256"
CHAMPION = "champion"  # alias of the newest final model of a study and model type

_STATUS = {
    "complete": RunStatus.to_string(RunStatus.FINISHED),
    # A pruned trial did its job (it ended early on purpose): not a red cross like a failure.
    "pruned": RunStatus.to_string(RunStatus.FINISHED),
    "failed": RunStatus.to_string(RunStatus.FAILED),
}
# Per-epoch metrics of a trial are written together at most this often (seconds).
EPOCH_FLUSH_SECONDS = 2.0
# MLflow limits parameter values to 6000 characters.
_MAX_PARAM = 6000


class TrialRun:
    """The child run of one trial: per-epoch metrics, then a final state."""

    def __init__(self, client: MlflowClient, run_id: str | Future[str], writes: Any = None) -> None:
        """``run_id``: the run's id, or the future of it while ``writes`` creates it.
        ``writes``: where the writes go, in order, off this thread (``submit`` as
        :class:`hpolab.search.writes.Writes`); None: written here, now."""
        self.client = client
        self._run_id = run_id
        self._writes = writes
        self._buffer: list[Metric] = []
        self._written = time.monotonic()
        self._ended = False

    @property
    def run_id(self) -> str:
        """The run's id (waits for the run to be created if that is still queued)."""
        if isinstance(self._run_id, Future):
            return self._run_id.result()
        return self._run_id

    def _write(self, function: Any, *args: Any) -> None:
        if self._writes is None:
            function(*args)
        else:
            self._writes.submit(function, *args)

    def log_epoch(self, epoch: int, logs: Mapping[str, float]) -> None:
        """Log every metric of one epoch (step = epoch).

        Epochs are written together at most every :data:`EPOCH_FLUSH_SECONDS` (and when the
        run ends): one database write per epoch of a short epoch costs as much as the
        epoch. The curves in the MLflow UI lag by at most that much.
        """
        now = int(time.time() * 1000)
        self._buffer.extend(Metric(k, float(v), now, epoch) for k, v in logs.items() if _finite(v))
        if self._ended or time.monotonic() - self._written >= EPOCH_FLUSH_SECONDS:
            self.flush()  # after the end (e.g. test metrics), nothing else would write it

    def log_history(self, history: Mapping[str, list[float]]) -> None:
        """Log the epochs of ``history`` (per metric, one value per epoch from epoch 1),
        e.g. those a stopped attempt trained before its resume point."""
        epochs = max((len(values) for values in history.values()), default=0)
        for epoch in range(epochs):
            self.log_epoch(epoch + 1, {k: v[epoch] for k, v in history.items() if len(v) > epoch})
        self.flush()

    def flush(self) -> None:
        """Write the epochs logged since the last write."""
        metrics, self._buffer = self._buffer, []
        self._written = time.monotonic()
        if metrics:
            self._write(self._log_metrics, metrics)

    def _log_metrics(self, metrics: list[Metric]) -> None:
        # MLflow takes at most 1000 metrics per batch.
        for start in range(0, len(metrics), 1000):
            self.client.log_batch(self.run_id, metrics=metrics[start : start + 1000])

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        """Attach a file (report, model, JSON) to the run."""
        self.client.log_artifact(self.run_id, str(path), artifact_path)

    def end(
        self,
        state: str,
        value: float | None = None,
        attrs: Mapping[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        """Record the trial's final value and state (complete, pruned or failed)."""
        self._ended = True
        now = int(time.time() * 1000)
        # The epochs not yet written go in the same write: the curves are whole before
        # the run is marked ended.
        metrics, self._buffer = self._buffer, []
        if _finite(value):
            metrics.append(Metric("objective_value", float(value), now, 0))
        params = [Param(k, _param_text(v)) for k, v in (attrs or {}).items()]
        tags = {STATE_TAG: state}
        if error:
            tags["hpolab.error"] = error[:5000]
        self._write(self._end, metrics, params, [RunTag(k, v) for k, v in tags.items()], state)

    def _end(
        self, metrics: list[Metric], params: list[Param], tags: list[RunTag], state: str
    ) -> None:
        while len(metrics) > 1000:  # MLflow takes at most 1000 metrics per batch
            self.client.log_batch(self.run_id, metrics=metrics[:1000])
            metrics = metrics[1000:]
        self.client.log_batch(self.run_id, metrics=metrics, params=params, tags=tags)
        self.client.set_terminated(self.run_id, status=_STATUS[state])


class StudyTracker:
    """MLflow experiment of one study, in a root's ``mlruns/`` store or a shared one."""

    def __init__(
        self, tracking_uri: str, artifacts_dir: Path, study: str, create: bool = True
    ) -> None:
        """Open (``create=False``: only find) the study's experiment; without one,
        ``experiment_id`` is ``None`` and :meth:`delete_runs` has nothing to delete."""
        self.tracking_uri = tracking_uri
        self.study = study
        self._create = create
        # An MLflow server keeps artifacts where its own settings say; with a database
        # store they go under the root (for many hosts, use a server: --serve-artifacts).
        artifact_dir = None
        if not tracking_uri.startswith(("http://", "https://", "databricks")):
            artifacts_dir.mkdir(parents=True, exist_ok=True)
            artifact_dir = artifacts_dir / study
        # MLflow creates (migrates) its database on first use; two processes doing it at
        # once leave a local SQLite store half-built, so one goes first.
        local = tracking_uri.startswith("sqlite:///")
        lock = file_lock(Path(tracking_uri.removeprefix("sqlite:///"))) if local else nullcontext()
        with lock:
            if local:
                _create_sqlite_store(Path(tracking_uri.removeprefix("sqlite:///")))
            for attempt in range(5):
                try:
                    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
                    if local:
                        _tune_local_store(client)
                    self.client = shield_methods(client, MlflowClient)
                    self.experiment_id = self._experiment(artifact_dir)
                    break
                except Exception as exc:
                    # A shared database store being created by another worker right now:
                    # its migrations are transactional there, so a retry finds it whole.
                    if attempt == 4 or tracking_uri.startswith("sqlite:"):
                        raise _unreachable(tracking_uri, exc) from None
                    time.sleep(0.5 + random.random() * (attempt + 1))

    def _experiment(self, artifact_dir: Path | None) -> str | None:
        for _ in range(2):
            found = self.client.get_experiment_by_name(self.study)
            if found is not None:
                if found.lifecycle_stage == "deleted" and self._create:
                    self.client.restore_experiment(found.experiment_id)
                return found.experiment_id
            if not self._create:  # deleting a study must not leave an empty experiment
                return None
            try:
                location = artifact_dir.as_uri() if artifact_dir is not None else None
                return self.client.create_experiment(self.study, artifact_location=location)
            except MlflowException:
                continue  # another worker created it just now: look it up again
        raise MlflowException(f"cannot create or find MLflow experiment {self.study!r}")

    # -- parent run ---------------------------------------------------------------------
    def parent_run(self, known_id: str | None, description: str) -> tuple[str, bool]:
        """The study's parent run: ``known_id`` if it still exists, else the one a killed
        process created before it could record it (adopted), else a new one.

        Returns the run id and whether it was created or adopted now (to be recorded).
        """
        if known_id:
            try:
                run = self.client.get_run(known_id)
                if run.info.lifecycle_stage == "active":
                    self.client.update_run(known_id, status="RUNNING")
                    return known_id, False
            except MlflowException:
                pass
        orphans = self.client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.`{ROLE_TAG}` = 'study'",
            run_view_type=ViewType.ACTIVE_ONLY,
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        if orphans:  # one parent per study, even across crashes
            self.client.update_run(orphans[0].info.run_id, status="RUNNING")
            return orphans[0].info.run_id, True
        run = self.client.create_run(
            self.experiment_id,
            run_name=f"{self.study}",
            tags={ROLE_TAG: "study", "mlflow.note.content": description},
        )
        return run.info.run_id, True

    def log_study_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        """Log study settings on the parent run (existing keys with equal values are kept)
        and describe the experiment: what it optimizes, in which direction, on which data."""
        existing = self.client.get_run(run_id).data.params
        fresh = [Param(k, _param_text(v)) for k, v in params.items() if k not in existing]
        if fresh:
            try:
                self.client.log_batch(run_id, params=fresh)
            except MlflowException:
                # Workers starting together log the same settings at the same moment:
                # fine if what is there now is what this one would have logged.
                now = self.client.get_run(run_id).data.params
                if any(now.get(p.key) != p.value for p in fresh):
                    raise
        if self.experiment_id is None:
            return
        tags = {
            f"hpolab.{k}": str(params[k])
            for k in ("metric", "direction", "data_source")
            if k in params
        }
        tags["mlflow.note.content"] = (
            f"hpolab study **{self.study}**: {params.get('direction', '')} "
            f"`{params.get('metric', '')}` on `{params.get('data_source', '')}`; "
            "the parent run holds the study, each trial is a child run, the final model "
            "is registered."
        )
        current = self.client.get_experiment(self.experiment_id).tags
        for key, value in tags.items():
            if current.get(key) != value:
                self.client.set_experiment_tag(self.experiment_id, key, value)

    def log_summary(self, run_id: str, metrics: Mapping[str, float]) -> None:
        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, 0) for k, v in metrics.items() if _finite(v)]
        if batch:
            self.client.log_batch(run_id, metrics=batch)

    def finish_parent(self, run_id: str, status: str = "FINISHED") -> None:
        self.client.set_terminated(run_id, status=status)

    def log_artifact(self, run_id: str, path: Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(run_id, str(path), artifact_path)

    def log_artifacts(self, run_id: str, directory: Path, artifact_path: str) -> None:
        """Log every file of ``directory`` under ``artifact_path`` of run ``run_id``, except
        temporary files of a write in progress or of a killed writer."""
        for path in sorted(directory.rglob("*")):
            if path.is_file() and not is_temp_file(path):
                folder = path.parent.relative_to(directory).as_posix()
                where = artifact_path if folder == "." else f"{artifact_path}/{folder}"
                self.client.log_artifact(run_id, str(path), where)

    def set_description(self, run_id: str, markdown: str) -> None:
        """The run's description in the MLflow UI (markdown)."""
        self.client.set_tag(run_id, "mlflow.note.content", markdown)

    # -- trials -------------------------------------------------------------------------
    def start_trial(
        self,
        parent_id: str,
        model_type: str,
        trial_number: int,
        params: Mapping[str, Any],
        worker: Mapping[str, Any] | None = None,
        dataset: Mapping[str, Any] | None = None,
        writes: Any = None,
    ) -> TrialRun:
        """Create the child run of a trial, with its parameters (the whole effective
        configuration), the worker running it and its ``dataset`` (name, digest, source,
        schema, profile: see :func:`_dataset_input`). With ``writes`` (see
        :class:`TrialRun`), the run is created and written to off this thread."""
        args = (parent_id, model_type, trial_number, params, worker, dataset)
        if writes is not None:
            return TrialRun(self.client, writes.submit(self._create_trial, *args), writes)
        return TrialRun(self.client, self._create_trial(*args))

    def _create_trial(
        self,
        parent_id: str,
        model_type: str,
        trial_number: int,
        params: Mapping[str, Any],
        worker: Mapping[str, Any] | None,
        dataset: Mapping[str, Any] | None,
    ) -> str:
        tags = {
            PARENT_TAG: parent_id,
            ROLE_TAG: "trial",
            TRIAL_TAG: str(trial_number),
            MODEL_TYPE_TAG: model_type,
            STATE_TAG: "running",
        }
        for key, value in (worker or {}).items():
            if value is not None:
                tags[f"{WORKER_TAG}.{key}"] = str(value)
        run = self.client.create_run(
            self.experiment_id, run_name=f"{model_type}-trial-{trial_number}", tags=tags
        )
        params_batch = [Param(k, _param_text(v)) for k, v in params.items()]
        if params_batch:  # one write for every parameter
            self.client.log_batch(run.info.run_id, params=params_batch)
        if dataset is not None:
            self.client.log_inputs(run.info.run_id, datasets=[_dataset_input(dataset)])
        return str(run.info.run_id)

    def start_run(self, run_name: str, params: Mapping[str, Any], role: str) -> TrialRun:
        """A stand-alone run (no parent) with its parameters, e.g. a manual training."""
        run = self.client.create_run(
            self.experiment_id, run_name=run_name, tags={ROLE_TAG: role, STATE_TAG: "running"}
        )
        params_batch = [Param(k, _param_text(v)) for k, v in params.items()]
        if params_batch:
            self.client.log_batch(run.info.run_id, params=params_batch)
        return TrialRun(self.client, run.info.run_id)

    def resume_run(self, run_id: str) -> TrialRun | None:
        """Continue logging to an existing run (a resumed manual run); None if it is gone."""
        try:
            run = self.client.get_run(run_id)
        except MlflowException:
            return None
        if run.info.lifecycle_stage == "deleted":
            return None
        self.client.update_run(run_id, status="RUNNING")
        self.client.set_tag(run_id, STATE_TAG, "running")
        return TrialRun(self.client, run_id)

    def resume_trial(
        self,
        run_id: str,
        trial_number: int,
        epoch: int,
        worker: Mapping[str, Any] | None = None,
    ) -> TrialRun | None:
        """Reopen the run of an interrupted trial for its retry (trial ``trial_number``),
        which continues after ``epoch``; None if the run is gone."""
        run = self.resume_run(run_id)
        if run is None:
            return None
        tags = {TRIAL_TAG: str(trial_number), "hpolab.resumed_from_epoch": str(epoch)}
        for key, value in (worker or {}).items():
            if value is not None:
                tags[f"{WORKER_TAG}.{key}"] = str(value)
        self.client.log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()])
        with suppress(MlflowException):  # no error tag: nothing to drop
            self.client.delete_tag(run_id, "hpolab.error")
        return run

    def mark_failed(self, run_id: str, reason: str) -> bool:
        """Mark a run still RUNNING (its process died) as failed; True if it changed."""
        try:
            run = self.client.get_run(run_id)
        except MlflowException:
            return False
        if run.info.status != "RUNNING":
            return False
        self.client.set_tag(run_id, STATE_TAG, "failed")
        self.client.set_tag(run_id, "hpolab.error", reason)
        self.client.set_terminated(run_id, status="FAILED")
        return True

    def running_trial_runs(self, model_type: str, trial_number: int) -> list[str]:
        """Runs of trial ``trial_number`` still RUNNING: a process killed between creating a
        trial's run and recording its id in the trial leaves one nothing else points at."""
        if self.experiment_id is None:
            return []
        found = self._runs_of("trial", model_type, trial_number, "attributes.status = 'RUNNING'")
        return [run.info.run_id for run in found]

    def _runs_of(
        self, role: str, model_type: str, trial_number: int, also: str = "", **search: Any
    ) -> list[Any]:
        """Active runs of ``role`` (trial, final_model) made for ``model_type``'s trial."""
        condition = (
            f"tags.`{ROLE_TAG}` = '{role}' and tags.`{MODEL_TYPE_TAG}` = '{model_type}' "
            f"and tags.`{TRIAL_TAG}` = '{trial_number}'" + (f" and {also}" if also else "")
        )
        return self.client.search_runs(
            [self.experiment_id],
            filter_string=condition,
            run_view_type=ViewType.ACTIVE_ONLY,
            **search,
        )

    # -- final model --------------------------------------------------------------------
    def registered_name(self, model_type: str) -> str:
        """Name of the registered model of ``model_type``'s final models."""
        return f"{self.study}-{model_type}"

    def log_final_model(
        self,
        parent_id: str,
        model_type: str,
        files: tuple[Path, Path],
        params: Mapping[str, Any],
        metrics: Mapping[str, float],
        trial_number: int,
    ) -> tuple[str, str | None]:
        """Log the retrained model (``files``: model and sidecar) as an MLflow model in a
        child run, and register it as ``<study>-<model_type>`` with the alias ``champion``.

        Returns the run id and the registered model version (``None`` if registering failed).
        """
        run = self.client.create_run(
            self.experiment_id,
            run_name=f"{model_type}-final",
            tags={
                PARENT_TAG: parent_id,
                ROLE_TAG: "final_model",
                MODEL_TYPE_TAG: model_type,
                TRIAL_TAG: str(trial_number),
            },
        )
        run_id = run.info.run_id
        self._log_final_batch(run_id, params, metrics)
        digest = self._log_mlflow_model(run_id, files)
        version = self._register(run_id, run.info.artifact_uri, model_type, digest)
        self.client.set_terminated(run_id)
        return run_id, version

    def complete_final_model(
        self,
        parent_id: str,
        model_type: str,
        files: tuple[Path, Path],
        params: Mapping[str, Any],
        metrics: Mapping[str, float],
        trial_number: int,
    ) -> tuple[str, str | None]:
        """Finish logging a final model that a killed process left half done.

        The final run of this model type and trial, if one was started, is completed:
        its missing parameters and model logged, registered once, ended. Without one, the
        model is logged as by :meth:`log_final_model`. Returns the run id and the version.
        """
        run = self._final_run(model_type, trial_number)
        if run is None:
            return self.log_final_model(parent_id, model_type, files, params, metrics, trial_number)
        run_id = run.info.run_id
        if not run.data.params:  # killed before its first batch: log it now, once
            self._log_final_batch(run_id, params, metrics)
        version = self._version_of(run_id)
        if version is None:
            # The MLflow model folder is written whole again (a kill may have cut it).
            digest = self._log_mlflow_model(run_id, files)
            version = self._register(run_id, run.info.artifact_uri, model_type, digest)
        else:
            self.set_champion(model_type, version)  # a kill may have come before the alias
        if run.info.status == "RUNNING":
            self.client.set_terminated(run_id)
        return run_id, version

    def _log_mlflow_model(self, run_id: str, files: tuple[Path, Path]) -> str:
        """Write the MLflow model of ``files`` and log it as the run's ``model`` folder;
        returns the digest of the model's weights."""
        from hpolab.tracking.serving import save_pyfunc, weights_digest

        with tempfile.TemporaryDirectory(prefix="hpolab-model-") as tmp:
            folder = Path(tmp) / "model"
            try:
                digest = save_pyfunc(folder, *files)
            except Exception as exc:  # the model is on disk either way: log its files
                warnings.warn(
                    f"{files[0].name}: not logged as an MLflow model ({type(exc).__name__}: "
                    f"{exc}); its files are logged instead",
                    stacklevel=2,
                )
                for path in files:
                    self.client.log_artifact(run_id, str(path), "model")
                return weights_digest(None, files[0])
            self.client.log_artifacts(run_id, str(folder), "model")
        return digest

    def _log_final_batch(
        self, run_id: str, params: Mapping[str, Any], metrics: Mapping[str, float]
    ) -> None:
        """A final run's parameters and test metrics, in one request."""
        self.client.log_batch(
            run_id,
            params=[Param(k, _param_text(v)) for k, v in params.items()],
            metrics=[
                Metric(f"test_{k}", float(v), int(time.time() * 1000), 0)
                for k, v in metrics.items()
                if _finite(v)
            ],
        )

    def _final_run(self, model_type: str, trial_number: int) -> Any:
        """The newest final-model run of ``model_type`` made from ``trial_number``."""
        found = self._runs_of(
            "final_model",
            model_type,
            trial_number,
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        return found[0] if found else None

    def _version_of(self, run_id: str) -> str | None:
        """The registered version made from run ``run_id``, if there is one."""
        try:
            versions = self.client.search_model_versions(f"run_id = '{run_id}'")
        except MlflowException:
            return None
        return str(versions[0].version) if versions else None

    def _register(self, run_id: str, artifact_uri: str, model_type: str, digest: str) -> str | None:
        """Register the run's model as a version of ``<study>-<model_type>`` (none if the
        newest version has the same weights) and point the alias ``champion`` at it."""
        name = self.registered_name(model_type)
        try:
            existing = self._registered_model(name)
            if existing is not None and existing.tags.get("hpolab.study", self.study) != self.study:
                return None  # another study's model of the same name: never mixed
            if existing is None:
                self.client.create_registered_model(
                    name,
                    tags={MODEL_TYPE_TAG: model_type, "hpolab.study": self.study},
                    description=f"Final {model_type} models of hpolab study {self.study}",
                )
            newest = self._newest_version(name)
            if newest is not None and newest.tags.get(WEIGHTS_TAG) == digest:
                version = str(newest.version)  # the same model again: no new version
            else:
                version = str(
                    self.client.create_model_version(
                        name,
                        source=f"{artifact_uri}/model",
                        run_id=run_id,
                        tags={MODEL_TYPE_TAG: model_type, WEIGHTS_TAG: digest},
                        await_creation_for=0,
                    ).version
                )
        except MlflowException:
            return None
        self.set_champion(model_type, version)
        return version

    def set_champion(self, model_type: str, version: str) -> bool:
        """Point the alias ``champion`` of ``model_type``'s registered model at ``version``;
        False if the registry does not take it (the version stays registered)."""
        try:
            self.client.set_registered_model_alias(
                self.registered_name(model_type), CHAMPION, version
            )
        except MlflowException:
            return False
        return True

    def _registered_model(self, name: str) -> Any:
        try:
            return self.client.get_registered_model(name)
        except MlflowException:
            return None

    def _newest_version(self, name: str) -> Any:
        versions = self.client.search_model_versions(f"name = '{name}'")
        return max(versions, key=lambda v: int(v.version), default=None)

    # -- reset ----------------------------------------------------------------------------
    def delete_runs(self) -> int:
        """Delete every run of the study's experiment; returns how many."""
        if self.experiment_id is None:
            return 0
        count = 0
        page_token = None
        while True:
            page = self.client.search_runs(
                [self.experiment_id],
                run_view_type=ViewType.ACTIVE_ONLY,
                max_results=1000,
                page_token=page_token,
            )
            for run in page:
                self.client.delete_run(run.info.run_id)
                count += 1
            page_token = page.token
            if not page_token:
                return count

    def delete_registered_model(self) -> bool:
        """Delete the study's registered models (``<study>-<model_type>``, and ``<study>``
        of earlier versions), all versions; True if there was one."""
        try:
            found = self.client.search_registered_models(f"tags.`hpolab.study` = '{self.study}'")
        except MlflowException:
            found = []
        names = {m.name for m in found}
        # The one registered model of earlier versions is named after the study; another
        # study's "<study>-<type>" could have the same name, so its tag must not say so.
        legacy = self._registered_model(self.study)
        if legacy is not None and legacy.tags.get("hpolab.study", self.study) == self.study:
            names.add(self.study)
        deleted = False
        for name in sorted(names):
            try:
                self.client.delete_registered_model(name)
                deleted = True
            except MlflowException:
                continue
        return deleted


def _tune_local_store(client: MlflowClient) -> None:
    """WAL journaling for a local SQLite store (see :mod:`hpolab.sqlite_tuning`): each
    trial's run writes several commits. MLflow has no public handle on its engine; without
    one (another MLflow version) the store keeps its default journal."""
    store = getattr(getattr(client, "_tracking_client", None), "store", None)
    engine = getattr(store, "engine", None)
    if engine is not None:
        tune_engine(engine)


def _create_sqlite_store(path: Path) -> None:
    """Create a local MLflow database whole or not at all.

    MLflow builds its schema with migrations that SQLite cannot roll back: a process
    killed midway would leave a store no later run can open. Built under a temporary name
    and renamed, it appears only once complete.
    """
    if path.exists():
        return
    with atomic_path(path) as tmp:
        client = MlflowClient(tracking_uri=f"sqlite:///{tmp}")
        client.search_experiments(max_results=1)  # runs the migrations


def _unreachable(tracking_uri: str, exc: Exception) -> TrackingError:
    shown = redact(tracking_uri)
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
    return TrackingError(
        f"study.tracking_uri (--tracking-uri, $MLFLOW_TRACKING_URI): cannot use {shown}: "
        f"{reason}; give http://host:5000 (mlflow server), postgresql://user@host/db or "
        "sqlite:////path/mlflow.db, or --no-mlflow"
    )


def _finite(value: Any) -> bool:
    try:
        return (
            value is not None and float(value) == float(value) and abs(float(value)) != float("inf")
        )
    except (TypeError, ValueError):
        return False


def _dataset_input(dataset: Mapping[str, Any]) -> DatasetInput:
    """MLflow's record of the data a run trained on; its digest is hpolab's fingerprint
    (the data and its split), so runs on the same data show the same dataset."""
    entity = Dataset(
        name=str(dataset["name"]),
        digest=str(dataset["digest"])[:36],
        source_type="hpolab",
        source=json.dumps({"uri": str(dataset["source"])}),
        schema=json.dumps(dataset.get("schema") or {}, default=str),
        profile=json.dumps(dataset.get("profile") or {}, default=str),
    )
    return DatasetInput(entity, tags=[InputTag("mlflow.data.context", "training")])


def _param_text(value: Any) -> str:
    text = (
        value
        if isinstance(value, str)
        else repr(value)
        if not isinstance(value, list)
        else str(value)
    )
    return text[:_MAX_PARAM]
