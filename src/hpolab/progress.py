"""Console output of a study: progress bars, messages and the final summary (rich)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    # rich.progress is imported when a bar starts: commands that only read a study
    # (hpolab status, studies, ...) import this module and should start fast.
    from rich.console import Console
    from rich.progress import Progress, TaskID


class Reporter(Protocol):
    """What a study run tells the user while it works."""

    def message(self, text: str) -> None: ...

    def start(self, model_type: str, total: int, done: int) -> None: ...

    def trial_done(self, model_type: str, done: int, best: float | None) -> None: ...

    def trial_finished(
        self,
        model_type: str,
        number: int,
        state: str,
        value: float | None,
        best: float | None,
        seconds: float | None,
    ) -> None:
        """Trial ``number`` ended in ``state`` (complete, pruned, fail) after ``seconds``.

        Optional: a reporter without it is told only the counts (:meth:`trial_done`).
        """

    def stop(self) -> None: ...


class QuietReporter:
    """Prints nothing (``--quiet``)."""

    def message(self, text: str) -> None:
        pass

    def start(self, model_type: str, total: int, done: int) -> None:
        pass

    def trial_done(self, model_type: str, done: int, best: float | None) -> None:
        pass

    def trial_finished(
        self,
        model_type: str,
        number: int,
        state: str,
        value: float | None,
        best: float | None,
        seconds: float | None,
    ) -> None:
        pass

    def stop(self) -> None:
        pass


class RichReporter:
    """Progress of a study on a rich console.

    On a terminal: a live bar per model type (trials done / total, best so far, elapsed,
    ETA). Elsewhere (CI logs, ``nohup``, ``| tee``) a bar cannot redraw and would show
    only once, at the end; there each model type's start and each finished trial is one
    plain line instead.
    """

    def __init__(self, console: Console | None = None) -> None:
        from rich.console import Console

        self.console = console or Console(file=sys.stdout, highlight=False)
        self._progress: Progress | None = None
        self._tasks: dict[str, TaskID] = {}

    @property
    def plain(self) -> bool:
        """Whether progress is written as plain lines (the console is not a terminal)."""
        return not self.console.is_terminal

    def message(self, text: str) -> None:
        # Messages carry paths and URLs: never break them across lines.
        self.console.print(text, soft_wrap=True)

    def start(self, model_type: str, total: int, done: int) -> None:
        if self.plain:
            self._line(f"{model_type}: {done}/{total} trials done, searching")
            return
        if self._progress is None:
            self._progress = _bar(self.console)
            self._progress.start()
        self._tasks[model_type] = self._progress.add_task(
            model_type, total=total, completed=done, best="-"
        )

    def trial_done(self, model_type: str, done: int, best: float | None) -> None:
        if self._progress is None or model_type not in self._tasks:
            return
        self._progress.update(self._tasks[model_type], completed=done, best=_number(best))

    def trial_finished(
        self,
        model_type: str,
        number: int,
        state: str,
        value: float | None,
        best: float | None,
        seconds: float | None,
    ) -> None:
        """One line per finished trial where there is no live bar to show it."""
        if not self.plain:
            return  # the bar already shows the count and the best value
        self._line(
            f"{model_type:<10} trial {number:>3}  {state:<8}  value {_number(value):<9}  "
            f"best {_number(best):<9}  {_seconds(seconds)}"
        )

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
            self._tasks.clear()

    def _line(self, text: str) -> None:
        # Plain text: model type names and numbers are not markup, nor to be colored.
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)


def _bar(console: Console) -> Progress:
    """The live display: per model type, trials done / total, best so far, elapsed, ETA."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[bold]{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("trials  best {task.fields[best]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


def _number(value: float | None) -> str:
    """A value or best value, as the bar shows it; ``-`` for none."""
    return "-" if value is None else f"{value:.4g}"


def _seconds(seconds: float | None) -> str:
    """``2.6s``, ``3m05s`` or ``1h02m``; ``-`` for unknown."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(round(seconds))
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
