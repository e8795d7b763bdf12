"""A pool of local worker processes searching one study (``--workers N``).

The launching process is worker 0: it sets the study up (storage, MLflow parent run,
Optuna studies), starts N - 1 more workers that only search (``hpolab worker
--no-finish``), searches alongside them (its progress display counts every worker's
trials), and finishes the study once they are done. Each worker gets a share of the cores
(thread limits) and, where GPUs are visible, its own device.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from hpolab.config import StudyConfig
from hpolab.errors import WorkersFailed
from hpolab.layout import Layout
from hpolab.progress import Reporter
from hpolab.search.workers import plan_devices, thread_budget, visible_gpus, worker_environment

# How long workers get to re-queue their trial and end their runs after Ctrl-C.
STOP_GRACE_SECONDS = 30.0
# Set in each started worker's environment (its index).
POOL_INDEX_ENV = "HPOLAB_WORKER_INDEX"
# Thread limits a user set in the environment win over the pool's plan.
_USER_SETTABLE = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS")


@functools.cache
def plan(n_workers: int) -> tuple[dict[str, str], ...]:
    """Environment of each local worker: its share of the cores and its GPU, if any.

    Planned once per process: this process takes its share first, then starts the others.
    """
    threads = thread_budget(n_workers)
    devices = plan_devices(n_workers, visible_gpus())
    envs = []
    for index in range(n_workers):
        env = worker_environment(index, n_workers, devices, threads)
        for key in _USER_SETTABLE:
            if key in os.environ:
                env[key] = os.environ[key]
        envs.append(env)
    return tuple(envs)


def limit_this_process(n_workers: int) -> None:
    """Give this process (worker 0) its share before TensorFlow starts its thread pools."""
    os.environ.update(plan(n_workers)[0])
    apply_thread_limits()


def apply_thread_limits() -> None:
    """Apply this worker's planned thread limits (from its environment) to TensorFlow."""
    from hpolab.training.fit import limit_threads

    intra = os.environ.get("TF_NUM_INTRAOP_THREADS")
    inter = os.environ.get("TF_NUM_INTEROP_THREADS", "1")
    if intra and intra.isdigit() and inter.isdigit():
        limit_threads(int(intra), int(inter))


@dataclass
class _Worker:
    index: int
    process: subprocess.Popen[bytes]
    log_path: Path
    log: IO[bytes]


@dataclass
class Pool:
    """The N - 1 local workers that join this process on a study."""

    cfg: StudyConfig
    layout: Layout
    reporter: Reporter
    track: bool = True
    workers: list[_Worker] = field(default_factory=list)

    def start(self) -> None:
        """Start workers 1 .. N - 1 on the study this process has set up."""
        n = self.cfg.study.workers
        folder = self.layout.results_dir(self.cfg.study.name) / "workers"
        folder.mkdir(parents=True, exist_ok=True)
        config_path = folder / "config.json"
        config_path.write_text(json.dumps(self._worker_config(), indent=1), encoding="utf-8")
        envs = plan(n)
        try:
            for index in range(1, n):
                self.workers.append(self._start(index, config_path, folder, envs[index]))
        except BaseException:
            self.stop()
            raise
        device = envs[0].get("CUDA_VISIBLE_DEVICES")
        note = (
            "" if device is None else f", GPUs {', '.join(e['CUDA_VISIBLE_DEVICES'] for e in envs)}"
        )
        self.reporter.message(
            f"{n} workers ({envs[0]['TF_NUM_INTRAOP_THREADS']} thread(s) each{note}): "
            f"this process and {n - 1} more; their logs in {folder}"
        )

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
        log = open(log_path, "ab")  # noqa: SIM115 - closed in wait() / stop()
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

    def wait(self) -> None:
        """Wait for every worker to exit; say which failed; fail if all did."""
        try:
            for worker in self.workers:
                worker.process.wait()
        except BaseException:
            self.stop()
            raise
        self._close_logs()
        failed = [w for w in self.workers if w.process.returncode != 0]
        for worker in failed:
            tail = worker.log_path.read_text(errors="replace").strip().splitlines()[-3:]
            self.reporter.message(
                f"worker {worker.index} exited with code {worker.process.returncode} "
                f"(log {worker.log_path}): " + " | ".join(tail)
            )
        if failed and len(failed) == len(self.workers):
            raise WorkersFailed(
                f"all {len(failed)} other workers failed; see their logs in "
                f"{failed[0].log_path.parent}"
            )

    def stop(self) -> None:
        """Interrupt every worker once, wait for them to clean up, kill stragglers."""
        for worker in self.workers:
            if worker.process.poll() is None:
                worker.process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for worker in self.workers:
            remaining = max(0.1, deadline - time.monotonic())
            try:
                worker.process.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                # Its running trial goes stale and is recovered by the next run.
                worker.process.kill()
                worker.process.wait()
        self._close_logs()

    def _close_logs(self) -> None:
        for worker in self.workers:
            worker.log.close()
