"""``console.log``: what a manual run reported, and the warnings libraries logged meanwhile.

Nothing here touches ``sys.stdout`` or ``sys.stderr``. The run's messages reach the log
through :class:`LoggedReporter`, which wraps the user's reporter; library warnings and
errors (TensorFlow, Keras, MLflow, ...), logged or raised with ``warnings.warn``, through
:class:`LibraryLogHandler`, a handler on the root logger for as long as the run works.
Keras itself prints nothing: the training core fits with ``verbose=0``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from rich.text import Text

from hpolab.progress import Reporter


class LoggedReporter:
    """Forwards everything to the user's reporter and writes messages, plain, to the log."""

    def __init__(self, inner: Reporter, log: TextIO) -> None:
        self.inner, self.log = inner, log

    def message(self, text: str) -> None:
        """Log ``text`` without its rich markup, then show it."""
        self.log.write(Text.from_markup(text).plain + "\n")
        self.log.flush()  # a killed run keeps what it said up to the kill
        self.inner.message(text)

    def start(self, model_type: str, total: int, done: int) -> None:
        self.inner.start(model_type, total, done)

    def trial_done(self, model_type: str, done: int, best: float | None) -> None:
        self.inner.trial_done(model_type, done, best)

    def stop(self) -> None:
        self.inner.stop()


class LibraryLogHandler(logging.Handler):
    """Copies log records of WARNING and above into the run's log.

    A record that no other handler shows would have gone to logging's last resort
    (stderr) had this handler not been there; it is passed on to it, so the terminal
    shows what it showed without the run's log.
    """

    def __init__(self, log: TextIO) -> None:
        super().__init__(logging.WARNING)
        self.log = log
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.log.write(self.format(record) + "\n")
            self.log.flush()
        except Exception:  # logging must never break the run
            self.handleError(record)
        last_resort = logging.lastResort
        if (
            last_resort is not None
            and record.levelno >= last_resort.level
            and not self._shown_elsewhere(record.name)
        ):
            last_resort.handle(record)

    def _shown_elsewhere(self, name: str) -> bool:
        """Whether another handler on the record's way up to the root handles it."""
        logger: logging.Logger | None = logging.getLogger(name)
        while logger is not None:
            if any(handler is not self for handler in logger.handlers):
                return True
            if not logger.propagate:
                break
            logger = logger.parent
        return False


@contextlib.contextmanager
def console_log(path: Path, append: bool) -> Iterator[TextIO]:
    """Open the run's log (appended to by a resume) and copy library warnings into it."""
    with path.open("a" if append else "w", encoding="utf-8") as log:
        if append:
            log.write(f"\n--- resumed {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M:%S} UTC\n")
        handler = LibraryLogHandler(log)
        logging.root.addHandler(handler)
        # Keras and TensorFlow warn through `warnings`; routed to logging, they reach the log.
        logging.captureWarnings(True)
        try:
            yield log
        finally:
            logging.captureWarnings(False)
            logging.root.removeHandler(handler)
