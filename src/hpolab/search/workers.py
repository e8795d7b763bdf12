"""Workers sharing a study: who each one is, and elections held in the study storage.

Several processes (on one host or many) may run trials of one study. Some steps must
happen exactly once whoever gets there first: creating the study's MLflow parent run,
retraining and registering the final model. They are decided by an election in the study
storage itself, so it works wherever the storage does (SQLite, PostgreSQL, Redis, gRPC),
unlike a file lock that only works on one host.

An election is a trial of a bookkeeping study ``<study>:hpolab``: each candidate adds a
claim (a waiting trial, never run), and Optuna gives trials unique numbers in the order
they are stored. The lowest-numbered live claim wins: a claim stored later can never beat
one already there, so every candidate reaches the same verdict without a lock. A claim is
live while it is not done and its holder beats it (a time stamp at least every
``CLAIM_BEAT`` seconds): the claim of a worker that died, on any host, lapses after
``CLAIM_GRACE`` seconds and the next candidate takes over.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

CLAIM = "hpolab_claim"
WORKER = "worker"
DONE = "done"
BEAT = "beat"
CLAIM_BEAT = 15.0
CLAIM_GRACE = 90.0


@dataclass(frozen=True)
class WorkerId:
    """Which process this is: host, pid and, for a planned pool, its index."""

    host: str
    pid: int
    index: int | None = None

    @classmethod
    def current(cls, index: int | None = None) -> WorkerId:
        """This process."""
        return cls(socket.gethostname(), os.getpid(), index)

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe form, as stored on trials and claims."""
        return asdict(self)

    def __str__(self) -> str:
        name = f"{self.host}:{self.pid}"
        return name if self.index is None else f"worker {self.index} ({name})"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WorkerId:
        """The worker stored as ``data`` (see :meth:`as_dict`)."""
        return cls(str(data.get("host", "?")), int(data.get("pid", 0)), data.get("index"))

    def is_alive(self) -> bool:
        """False only when the process is known to be gone (same host, no such pid)."""
        if self.host != socket.gethostname():
            return True  # cannot tell for another host: assume it is working
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def bookkeeping_study_name(study: str) -> str:
    """Name of the study's bookkeeping study (``:`` cannot occur in a study name)."""
    return f"{study}:hpolab"


class Elections:
    """Exactly-once steps of a study, decided in its storage (see the module docstring)."""

    def __init__(self, storage: BaseStorage, study: str, worker: WorkerId) -> None:
        self.storage = storage
        self.worker = worker
        self.name = bookkeeping_study_name(study)
        self.study_id = self._open()

    def _open(self) -> int:
        return optuna.create_study(
            study_name=self.name, storage=self.storage, load_if_exists=True
        )._study_id

    def claims(self, key: str | None = None) -> list[FrozenTrial]:
        """Every claim of ``key`` (default: of any key), oldest first."""
        try:
            trials = self.storage.get_all_trials(self.study_id, deepcopy=False)
        except KeyError:
            return []
        if key is None:
            return sorted(trials, key=lambda t: t.number)
        return sorted((t for t in trials if t.user_attrs.get(CLAIM) == key), key=lambda t: t.number)

    def claim(self, key: str) -> FrozenTrial:
        """Store this worker's claim of ``key``."""
        template = optuna.trial.create_trial(
            state=TrialState.WAITING,
            user_attrs={CLAIM: key, WORKER: self.worker.as_dict(), BEAT: time.time()},
        )
        try:
            trial_id = self.storage.create_new_trial(self.study_id, template_trial=template)
        except KeyError:  # removed by a worker that just closed it: start it anew
            self.study_id = self._open()
            trial_id = self.storage.create_new_trial(self.study_id, template_trial=template)
        return self.storage.get_trial(trial_id)

    def winner(self, key: str) -> FrozenTrial | None:
        """The lowest-numbered live claim of ``key`` (see the module docstring)."""
        now = time.time()
        for claim in self.claims(key):
            if claim.user_attrs.get(DONE):
                continue
            if now - float(claim.user_attrs.get(BEAT, now)) > CLAIM_GRACE:
                continue
            if WorkerId.from_dict(claim.user_attrs.get(WORKER, {})).is_alive():
                return claim
        return None

    @contextlib.contextmanager
    def holding(self, key: str) -> Iterator[None]:
        """While won ``key`` is acted on: keep its claim live, then mark it done."""
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(CLAIM_BEAT):
                with contextlib.suppress(Exception):  # a missed beat is made up next time
                    self.publish(key, BEAT, time.time())

        thread = threading.Thread(target=beat, name="hpolab-claim", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=5)
            self.done(key)

    def elect_or_wait(self, key: str, name: str) -> tuple[bool, Any]:
        """Whether this worker must produce ``name`` for ``key``, or the value another made.

        Waits while the winner works; if it dies first, the election is held again.
        """
        while True:
            value = self.published(key, name)
            if value is not None:
                return False, value
            won, _ = self.elect(key)
            if won:
                return True, None
            while self.winner(key) is not None:
                value = self.published(key, name)
                if value is not None:
                    return False, value
                time.sleep(0.2)

    def elect(self, key: str) -> tuple[bool, WorkerId]:
        """Claim ``key``; whether this worker won, and who did."""
        mine = self.claim(key)
        winner = WorkerId.from_dict((self.winner(key) or mine).user_attrs[WORKER])
        # An older claim of this same worker (an earlier run in this process) is its own.
        won = winner == self.worker
        if not won:
            self.done(key)  # a loser will not act: its claim must not hold up a later run
        return won, winner

    def publish(self, key: str, name: str, value: Any) -> None:
        """Attach ``name = value`` to this worker's claims of ``key``."""
        for claim in self.claims(key):
            if claim.user_attrs.get(WORKER) == self.worker.as_dict():
                self.storage.set_trial_user_attr(claim._trial_id, name, value)

    def done(self, key: str) -> None:
        """Mark this worker's claims of ``key`` as carried out."""
        self.publish(key, DONE, True)

    def close(self) -> None:
        """Remove the bookkeeping study once no other worker holds a live claim in it.

        Claims matter only while workers run together; removing them keeps the storage
        (and optuna-dashboard) showing the study's own model types only.
        """
        me = self.worker.as_dict()
        for claim in self.claims():
            worker = claim.user_attrs.get(WORKER, {})
            if claim.user_attrs.get(DONE) or worker == me:
                continue
            if WorkerId.from_dict(worker).is_alive():
                return
        with contextlib.suppress(KeyError):  # another worker removed it first
            optuna.delete_study(study_name=self.name, storage=self.storage)

    def published(self, key: str, name: str, newest: bool = False) -> Any:
        """The value of ``name`` from the oldest (or newest) claim of ``key`` that has one."""
        claims = self.claims(key)
        for claim in reversed(claims) if newest else claims:
            if claim.user_attrs.get(name) is not None:
                return claim.user_attrs[name]
        return None

    def release(self) -> None:
        """This worker is leaving: its claims are done; remove the study if nobody is left."""
        me = self.worker.as_dict()
        for claim in self.claims():
            if claim.user_attrs.get(WORKER) == me and not claim.user_attrs.get(DONE):
                with contextlib.suppress(Exception):
                    self.storage.set_trial_user_attr(claim._trial_id, DONE, True)
        self.close()


def thread_budget(n_workers: int, cores: int | None = None) -> int:
    """Threads each of ``n_workers`` local workers may use, so they share the cores."""
    if cores is None:
        cores = available_cores()
    return max(1, cores // max(1, n_workers))


def available_cores() -> int:
    """Cores this process may use: CPU affinity, capped by a container's CPU quota."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:  # cgroup v2: "<quota> <period>" or "max <period>"
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cores = min(cores or 1, max(1, int(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return cores or 1


def plan_devices(n_workers: int, visible: list[str]) -> list[str | None]:
    """The GPU each local worker sees (``CUDA_VISIBLE_DEVICES``), round robin.

    ``None`` leaves the variable as it is (no GPU visible to share out). With more workers
    than GPUs, workers share devices evenly.
    """
    if not visible:
        return [None] * n_workers
    return [visible[i % len(visible)] for i in range(n_workers)]


def visible_gpus(environ: dict[str, str] | None = None) -> list[str]:
    """GPUs this process may hand out: ``CUDA_VISIBLE_DEVICES``, else ``nvidia-smi -L``."""
    environ = dict(os.environ) if environ is None else environ
    listed = environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [d.strip() for d in listed.split(",") if d.strip() and d.strip() != "-1"]
    import shutil
    import subprocess

    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(
            ["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(out.splitlines()) if line.startswith("GPU ")]


def worker_environment(
    index: int, n_workers: int, devices: list[str | None], threads: int
) -> dict[str, str]:
    """Environment variables of local worker ``index``: thread limits and its device."""
    env = {
        "TF_NUM_INTRAOP_THREADS": str(threads),
        "TF_NUM_INTEROP_THREADS": "1" if threads <= 2 else "2",
        "OMP_NUM_THREADS": str(threads),
        "HPOLAB_WORKER_INDEX": str(index),  # pool.POOL_INDEX_ENV
    }
    device = devices[index] if index < len(devices) else None
    if device is not None:
        env["CUDA_VISIBLE_DEVICES"] = device
    return env
