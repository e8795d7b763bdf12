"""Page layout of the PDF reports: blocks flow down A4 pages.

A :class:`PageFlow` places text, tables, charts and images one under the other and starts
a new page only when the next block does not fit in what is left of the current one, so
a short block never gets a page of its own. Positions are figure fractions.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; never open a window

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

A4 = (8.27, 11.69)
LEFT, WIDTH = 0.06, 0.88
TITLE_Y = 0.965  # baseline of a page title
TOP = 0.955  # first line of a page without a title
TOP_UNDER_TITLE = 0.925
BOTTOM = 0.035
# Line height per point of font size, and characters per line at 9.5 pt across WIDTH.
LINE_PER_PT = 0.0154 / 9.5
CHARS_AT_9_5 = 95
PARAGRAPH_GAP = 0.007
ROW = 0.022  # one table row
MUTED = "#555555"
IMAGE_WIDTH = 0.92
TITLE_ROOM = 0.025  # above an image, for its title
MIN_IMAGE_SCALE = 0.7  # an image shrinks this far to fit the rest of a page


class PageFlow:
    """A4 pages filled from the top; a block that does not fit moves to a new page."""

    def __init__(self) -> None:
        self.figures: list[Figure] = []
        self.y = BOTTOM  # no page yet: the first block opens one
        self._page_top = TOP

    @property
    def figure(self) -> Figure:
        """The page being filled (one is opened if there is none)."""
        if not self.figures:
            self.new_page()
        return self.figures[-1]

    @property
    def room(self) -> float:
        """Height left on the current page."""
        return self.y - BOTTOM if self.figures else 0.0

    def new_page(self, title: str | None = None) -> Figure:
        """Open a page, with ``title`` in large bold type if given."""
        figure = Figure(figsize=A4)  # not kept open by pyplot: a long report stays light
        self.figures.append(figure)
        self.y = TOP
        if title:
            figure.text(LEFT, TITLE_Y, title, fontsize=15, weight="bold", va="top")
            self.y = TOP_UNDER_TITLE
        self._page_top = self.y
        return figure

    def reserve(self, height: float) -> tuple[float, float]:
        """(bottom, top) of the next ``height``; on a new page when it does not fit here.

        A block taller than a whole page still goes on one page (it is clipped there)
        rather than leaving an empty page before it.
        """
        if not self.figures or (height > self.room and self.y < self._page_top):
            self.new_page()
        top = self.y
        self.y = top - height
        return self.y, top

    def skip(self, height: float) -> None:
        """Leave ``height`` blank (nothing happens at the top of a page)."""
        if self.figures and self.y < self._page_top:
            self.y = max(self.y - height, BOTTOM)

    def text(self, text: str, size: float = 9.5, **kw: Any) -> None:
        """Wrapped paragraphs; each line goes where there is room, across pages if need be."""
        width = int(CHARS_AT_9_5 * 9.5 / size)
        lines = [line for para in text.split("\n") for line in (textwrap.wrap(para, width) or [""])]
        for line in lines:
            _, top = self.reserve(LINE_PER_PT * size)
            self.figure.text(LEFT, top, line, fontsize=size, va="top", family="DejaVu Sans", **kw)
        self.skip(PARAGRAPH_GAP)

    def heading(self, text: str, keep_with: float = 0.08, size: float = 12) -> None:
        """A bold heading kept on one page with at least ``keep_with`` of what follows."""
        height = LINE_PER_PT * size + 0.006
        if self.room < height + keep_with:
            self.new_page()
        self.skip(0.006)
        self.text(text, size=size, weight="bold")

    def table(
        self,
        header: list[str],
        rows: list[list[str]],
        widths: list[float] | None = None,
        row_height: float = ROW,
    ) -> list[Axes]:
        """A table, split over pages (header repeated) when it is longer than the room left."""
        if not rows:
            self.text("(none)")
            return []
        drawn = []
        for chunk in self._chunks(rows, row_height):
            bottom, top = self.reserve(row_height * (len(chunk) + 1))
            ax = self.figure.add_axes((LEFT, bottom, WIDTH, top - bottom))
            ax.axis("off")
            _fill_table(ax, header, chunk, widths)
            drawn.append(ax)
            self.skip(0.02)
        return drawn

    def _chunks(self, rows: list[list[str]], row_height: float) -> Iterator[list[list[str]]]:
        """Rows in pieces that fit: here if three rows fit, else from a new page."""
        rest = rows
        while rest:
            fit = int(self.room / row_height) - 1
            if fit < min(3, len(rest)):
                self.new_page()
                fit = int(self.room / row_height) - 1
            yield rest[: max(fit, 1)]
            rest = rest[max(fit, 1) :]

    def axes(
        self,
        height: float,
        left: float = 0.14,
        width: float = 0.76,
        pad: tuple[float, float] = (0.05, 0.03),
    ) -> Axes:
        """Axes for a chart ``height`` tall including ``pad`` (below for labels, above
        for the title)."""
        below, above = pad
        bottom, top = self.reserve(height)
        return self.figure.add_axes((left, bottom + below, width, top - bottom - below - above))

    def image(self, png: Path, title: str) -> Axes:
        """A PNG at full width, as tall as its aspect ratio makes it, titled."""
        picture = plt.imread(png)
        aspect = picture.shape[0] / picture.shape[1]
        width = IMAGE_WIDTH
        height = width * A4[0] * aspect / A4[1]
        if self.y < self._page_top and height + TITLE_ROOM > self.room:
            # Slightly smaller rather than leaving the rest of the page empty.
            fit = (self.room - TITLE_ROOM) / height
            if fit >= MIN_IMAGE_SCALE:
                width, height = width * fit, height * fit
        bottom, _ = self.reserve(height + TITLE_ROOM)
        ax = self.figure.add_axes(((1 - width) / 2, bottom, width, height))
        ax.imshow(picture)
        ax.set_title(title, fontsize=10)
        ax.axis("off")
        self.skip(0.01)
        return ax


def _fill_table(ax: Axes, header: list[str], rows: list[list[str]], widths: Any) -> None:
    table = ax.table(
        cellText=rows,
        colLabels=header,
        colWidths=widths,
        bbox=(0, 0, 1, 1),
        cellLoc="left",
        colLoc="left",
    )
    table.auto_set_font_size(False)
    table.set_fontsize(7.5)
    for (row, _), cell in table.get_celld().items():
        if row == 0:
            cell.set_text_props(weight="bold")
            cell.set_facecolor("#e8eef7")
