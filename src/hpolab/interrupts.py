"""Ctrl-C and service stops land between storage writes, never inside one.

Python raises ``KeyboardInterrupt`` wherever the main thread happens to be. Inside a
storage call (an Optuna trial update, a SQLite transaction of the study or of MLflow's
store) that can leave a transaction open, holding SQLite's write lock: the clean-up that
follows (failing and re-queueing the trial) then waits out the busy timeout and fails.

Within :func:`stops_as_interrupts`, SIGINT and SIGTERM raise ``KeyboardInterrupt`` as
before, except while the main thread is inside a call wrapped by :func:`shield`: there
the stop is held, and raised as soon as that call returns. Other threads (heartbeats)
never receive signals and are not affected.
"""

from __future__ import annotations

import _thread
import functools
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

_STOPS = (signal.SIGINT, signal.SIGTERM)


class _State:
    depth = 0  # shielded calls the main thread is inside
    pending = False  # a stop arrived during one
    delivered = 0  # stops raised by the signal handler so far


def _on_stop(signum: int, frame: object) -> None:
    if _State.depth and not _State.pending:
        _State.pending = True  # a second Ctrl-C while waiting does not wait
        return
    _State.pending = False
    _State.delivered += 1
    raise KeyboardInterrupt


def stops_delivered() -> int:
    """How many stops have been raised in this process (by the signal handler, or held
    and raised at the end of a shielded call).

    A stop raised while a library's native code calls back into Python (TensorFlow
    tracing a function, say) can come out of that library as its own error, not as
    ``KeyboardInterrupt``: comparing this count before and after tells such an error
    from a real failure.
    """
    return _State.delivered


def stops_seen() -> int:
    """Stops raised so far, plus one held for the end of a shielded call: a search that
    sees this count change and still returns normally had its stop swallowed."""
    return _State.delivered + int(_State.pending)


@contextmanager
def stops_as_interrupts() -> Iterator[None]:
    """Ctrl-C and SIGTERM (a service stop, ``timeout``, Kubernetes) raise
    ``KeyboardInterrupt`` in the main thread, outside shielded calls."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in _STOPS}
    previous_hook = sys.unraisablehook
    for sig in _STOPS:
        signal.signal(sig, _on_stop)
    sys.unraisablehook = _redeliver_swallowed(previous_hook)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sys.unraisablehook = previous_hook
        _State.pending = False


def _redeliver_swallowed(previous: Callable[[Any], Any]) -> Callable[[Any], None]:
    """An unraisable-exception hook that raises a swallowed stop again.

    A stop that arrives while a finalizer or weak-reference callback runs (garbage
    collection, any time) is raised there, and Python ignores exceptions raised there:
    the study would go on as if nothing had been pressed. The stop is delivered again, so
    it lands at the main thread's next step instead.
    """

    def hook(unraisable: Any) -> None:
        if isinstance(unraisable.exc_value, KeyboardInterrupt):
            # Later, from another thread: delivered within this hook (or while the timer
            # thread starts) it would be swallowed again.
            timer = threading.Timer(0.05, _thread.interrupt_main, args=(signal.SIGINT,))
            timer.daemon = True
            timer.start()
            return
        previous(unraisable)

    return hook


def shield(function: F) -> F:
    """``function``, during which a stop of the main thread waits for it to return."""

    @functools.wraps(function)
    def shielded(*args: Any, **kwargs: Any) -> Any:
        if threading.current_thread() is not threading.main_thread():
            return function(*args, **kwargs)
        _State.depth += 1
        try:
            return function(*args, **kwargs)
        finally:
            _State.depth -= 1
            if not _State.depth and _State.pending:
                _State.pending = False
                _State.delivered += 1
                raise KeyboardInterrupt  # the held stop, now that the call is complete

    return shielded  # type: ignore[return-value]


def unshielded(function: F) -> F:
    """``function``, run with stops delivered at once even inside a shielded call (the
    objective inside Optuna's trial bookkeeping); a stop already held is raised first."""

    @functools.wraps(function)
    def open_to_stops(*args: Any, **kwargs: Any) -> Any:
        if threading.current_thread() is not threading.main_thread():
            return function(*args, **kwargs)
        depth, _State.depth = _State.depth, 0
        try:
            if _State.pending:
                _State.pending = False
                _State.delivered += 1
                raise KeyboardInterrupt
            return function(*args, **kwargs)
        finally:
            _State.depth = depth

    return open_to_stops  # type: ignore[return-value]


def shield_methods(obj: Any, base: type) -> Any:
    """Shield every public method of ``base`` on the instance ``obj`` (a storage or a
    tracking client); isinstance checks and the class itself are untouched."""
    for name in dir(base):
        if name.startswith("_") or not callable(getattr(base, name, None)):
            continue
        method = getattr(obj, name, None)
        if callable(method) and not isinstance(method, type):
            setattr(obj, name, shield(method))
    return obj
