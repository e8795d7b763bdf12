"""Console output of a study: progress bars, messages and the final summary (rich)."""

from __future__ import annotations

import sys
from typing import Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class Reporter(Protocol):
    """What a study run tells the user while it works."""

    def message(self, text: str) -> None: ...

    def start(self, model_type: str, total: int, done: int) -> None: ...

    def trial_done(self, model_type: str, done: int, best: float | None) -> None: ...

    def stop(self) -> None: ...


class QuietReporter:
    """Prints nothing (``--quiet``)."""

    def message(self, text: str) -> None:
        pass

    def start(self, model_type: str, total: int, done: int) -> None:
        pass

    def trial_done(self, model_type: str, done: int, best: float | None) -> None:
        pass

    def stop(self) -> None:
        pass


class RichReporter:
    """A progress bar per model type: trials done / total, best so far, elapsed, ETA."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(file=sys.stdout, highlight=False)
        self._progress: Progress | None = None
        self._tasks: dict[str, TaskID] = {}

    def message(self, text: str) -> None:
        # Messages carry paths and URLs: never break them across lines.
        self.console.print(text, soft_wrap=True)

    def start(self, model_type: str, total: int, done: int) -> None:
        if self._progress is None:
            self._progress = Progress(
                TextColumn("[bold]{task.description:<10}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("trials  best {task.fields[best]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=self.console,
                transient=False,
            )
            self._progress.start()
        self._tasks[model_type] = self._progress.add_task(
            model_type, total=total, completed=done, best="-"
        )

    def trial_done(self, model_type: str, done: int, best: float | None) -> None:
        if self._progress is None or model_type not in self._tasks:
            return
        shown = "-" if best is None else f"{best:.4g}"
        self._progress.update(self._tasks[model_type], completed=done, best=shown)

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
            self._tasks.clear()
