"""A trial's storage and tracking writes, in order, off the training thread.

Each epoch a trial reports its value to the Optuna storage and logs its metrics to
MLflow; each trial creates and ends an MLflow run. Every one of these is a database
commit of a few milliseconds, as long as an epoch of a small model. Submitted here, they
run one after the other on a single background thread while training goes on: the
curves still reach the storage and MLflow epoch by epoch, in the order they were made.

A trial waits for its writes (:meth:`Writes.wait`) before Optuna records its end, so a
finished trial's values and run are complete. A worker killed in between loses the
writes still queued, as it would have lost the epochs it had not trained: its trial is
recovered (failed and re-queued) and its run marked failed like any killed trial's.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any


class Writes:
    """Writes run in submission order on one background thread."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._pending: list[Future[Any]] = []

    def submit(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Future[Any]:
        """Queue ``function(*args, **kwargs)`` after every write submitted before it."""
        if self._pool is None:  # started on first use: a process that never writes has none
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hpolab-writes")
        future = self._pool.submit(function, *args, **kwargs)
        self._pending.append(future)
        return future

    def wait(self, raise_errors: bool = True) -> None:
        """Block until every write submitted so far is done; then raise the first error
        one of them raised (unless ``raise_errors`` is False: a caller already failing)."""
        pending, self._pending = self._pending, []
        error: BaseException | None = None
        for future in pending:
            exc = future.exception()
            error = error or exc
        if error is not None and raise_errors:
            raise error

    def close(self) -> None:
        """Finish the queued writes and stop the thread."""
        try:
            self.wait(raise_errors=False)
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None
