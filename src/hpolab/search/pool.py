"""A pool of local worker processes searching one study (``--workers N``).

The launching process sets the study up (storage, MLflow parent run, Optuna studies),
starts N workers that only search (``hpolab worker --no-finish``), shows the progress
of the whole study from the storage, and finishes the study itself once they exit. Each
worker gets a share of the cores (thread limits) and, where GPUs are visible, its own.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import optuna
from optuna.trial import TrialState

from hpolab.config import StudyConfig
from hpolab.errors import WorkersFailed
from hpolab.layout import Layout
from hpolab.progress import Reporter
from hpolab.search.loop import best_or_none, counted_trials
from hpolab.search.workers import plan_devices, thread_budget, visible_gpus, worker_environment

# How long workers get to re-queue their trial and end their runs after Ctrl-C.
STOP_GRACE_SECONDS = 30.0


@dataclass
class _Worker:
    index: int
    process: subprocess.Popen[bytes]
    log_path: Path
    log: IO[bytes]


@dataclass
class Pool:
    """N local workers on one study; :meth:`run` returns when all have exited."""

    cfg: StudyConfig
    layout: Layout
    studies: dict[str, optuna.Study]
    targets: dict[str, int]
    reporter: Reporter
    track: bool = True
    workers: list[_Worker] = field(default_factory=list)

    def run(self) -> None:
        """Start the workers, follow the study until they exit; Ctrl-C stops them all."""
        n = self.cfg.study.workers
        folder = self.layout.results_dir(self.cfg.study.name) / "workers"
        folder.mkdir(parents=True, exist_ok=True)
        config_path = folder / "config.json"
        config_path.write_text(json.dumps(self._worker_config(), indent=1), encoding="utf-8")
        threads = thread_budget(n)
        devices = plan_devices(n, visible_gpus())
        for index in range(n):
            env = worker_environment(index, n, devices, threads)
            self.workers.append(self._start(index, config_path, folder, env))
        device_note = "" if devices[0] is None else f", GPUs {','.join(map(str, devices))}"
        self.reporter.message(
            f"{n} workers started ({threads} thread(s) each{device_note}); logs in {folder}"
        )
        try:
            self._follow()
        except KeyboardInterrupt:
            self.stop()
            raise
        finally:
            for worker in self.workers:
                worker.log.close()
        self._check_exits()

    def _worker_config(self) -> dict[str, object]:
        """The resolved config every worker loads: one process each, same storage."""
        raw = json.loads(self.cfg.model_dump_json())
        raw["study"]["workers"] = 1
        raw["study"]["storage"] = self.cfg.study.storage or self.layout.default_storage_url(
            self.cfg.study.name
        )
        return raw

    def _start(self, index: int, config: Path, folder: Path, env: dict[str, str]) -> _Worker:
        command = [
            sys.executable,
            "-m",
            "hpolab.cli.main",
            "worker",
            "--config",
            str(config),
            "--root",
            str(self.layout.root),
            "--worker-index",
            str(index),
            "--no-finish",
        ]
        if not self.track:
            command.append("--no-mlflow")
        log_path = folder / f"worker-{index}.log"
        log = open(log_path, "ab")  # noqa: SIM115 - closed in run()
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
            # Their own session: Ctrl-C reaches the launcher only, which stops each worker
            # once, so none is interrupted again while it re-queues its trial.
            start_new_session=True,
        )
        return _Worker(index, process, log_path, log)

    def _follow(self) -> None:
        """One progress display for the whole study, read from the storage."""
        for mt, study in self.studies.items():
            self.reporter.start(mt, self.targets[mt], min(counted_trials(study), self.targets[mt]))
        reported: set[tuple[str, int]] = set()
        while True:
            running = any(w.process.poll() is None for w in self.workers)
            for mt, study in self.studies.items():
                self._report(mt, study, reported)
            if not running:
                return
            time.sleep(1.0)

    def _report(self, mt: str, study: optuna.Study, reported: set[tuple[str, int]]) -> None:
        trials = study.get_trials(deepcopy=False)
        for trial in trials:
            if trial.state == TrialState.FAIL and (mt, trial.number) not in reported:
                reported.add((mt, trial.number))
                reason = trial.user_attrs.get("error", "see the trial's MLflow run")
                self.reporter.message(f"{mt}: trial {trial.number} failed: {reason}")
        done = min(counted_trials(study), self.targets[mt])
        self.reporter.trial_done(mt, done, best_or_none(study))

    def stop(self) -> None:
        """Interrupt every worker once, wait for them to clean up, kill stragglers."""
        self.reporter.stop()
        for worker in self.workers:
            if worker.process.poll() is None:
                worker.process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for worker in self.workers:
            remaining = max(0.1, deadline - time.monotonic())
            try:
                worker.process.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait()

    def _check_exits(self) -> None:
        """Say which workers failed; fail if none succeeded."""
        failed = [w for w in self.workers if w.process.returncode not in (0, None)]
        for worker in failed:
            tail = worker.log_path.read_text(errors="replace").strip().splitlines()[-3:]
            self.reporter.message(
                f"worker {worker.index} exited with code {worker.process.returncode} "
                f"(log {worker.log_path}): " + " | ".join(tail)
            )
        if failed and len(failed) == len(self.workers):
            raise WorkersFailed(
                f"all {len(failed)} workers failed; see their logs in {failed[0].log_path.parent}"
            )
