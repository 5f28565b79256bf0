"""The report's drawing kit: an SVG canvas, scales, round ticks for numbers, durations and times, and plot frames.

Charts are written as SVG text directly (no plotting library): each bar and point carries its own `<title>`
tooltip, text keeps the page's fonts (a CJK font stack included), and a chart costs microseconds per element.
Sizes are in SVG units: a full-width chart is `WIDE` units wide, a small panel `PANEL`, so that text of `FONT`
units stays at least 10 px on screen in an 800 px window (tests/test_report_browser.py measures it).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from oqtopus_data.report.formats import esc, fit, format_duration, text_width
from oqtopus_data.times import to_utc

FONT = 11  # tick labels, notes
TITLE = 12  # panel titles
WIDE = 760  # width of a full-width chart
PANEL = 370  # width of a small panel (two side by side in an 800 px window, three in a wide one)
INK, MUTED, GRID = "#333", "#666", "#e6e6e6"
LOG_FLOOR = 1e-3  # a log scale's lowest value (seconds: 1 ms): 0 and negative values are drawn there


def _n(v: float) -> str:
    """A coordinate, short: one decimal at most."""
    out = f"{v:.1f}"
    return out[:-2] if out.endswith(".0") else out


class Svg:
    """An SVG drawing built element by element; `render()` gives the text to inline in the page."""

    def __init__(self, width: float, height: float, label: str) -> None:
        self.width, self.height, self.label = width, height, label
        self.parts: list[str] = []

    @staticmethod
    def _title(title: str | None) -> str:
        return f"<title>{esc(title)}</title>" if title else ""

    def text(self, x: float, y: float, text: str, *, size: float = FONT, anchor: str = "start",
             color: str = INK, bold: bool = False, rotate: bool = False, title: str | None = None) -> None:
        """Text with its baseline at y (escaped here)."""
        attrs = f' font-size="{_n(size)}"' + (f' text-anchor="{anchor}"' if anchor != "start" else "")
        attrs += f' fill="{color}"' if color != INK else ""
        attrs += ' font-weight="bold"' if bold else ""
        attrs += f' transform="rotate(-90 {_n(x)} {_n(y)})"' if rotate else ""
        self.parts.append(f'<text x="{_n(x)}" y="{_n(y)}"{attrs}>{self._title(title)}{esc(text)}</text>')

    def line(self, x1: float, y1: float, x2: float, y2: float, *, color: str = INK, width: float = 1,
             dash: str = "", opacity: float = 1, title: str | None = None) -> None:
        """A straight line; a `title` makes it a tooltip target (drawn wide and invisible around the line)."""
        style = f' stroke-dasharray="{dash}"' if dash else ""
        style += f' opacity="{opacity:g}"' if opacity < 1 else ""
        xy = f'x1="{_n(x1)}" y1="{_n(y1)}" x2="{_n(x2)}" y2="{_n(y2)}"'
        self.parts.append(f'<line {xy} stroke="{color}" stroke-width="{width:g}"{style}/>')
        if title:
            self.parts.append(f'<line class="hit" {xy} stroke="transparent" stroke-width="6">'
                              f"{self._title(title)}</line>")

    def rect(self, x: float, y: float, w: float, h: float, *, color: str, title: str | None = None,
             opacity: float = 1, stroke: str = "") -> None:
        """A filled rectangle (a bar, a box), with its tooltip."""
        style = f' opacity="{opacity:g}"' if opacity < 1 else ""
        style += f' stroke="{stroke}"' if stroke else ""
        body = self._title(title)
        tail = f">{body}</rect>" if body else "/>"
        self.parts.append(f'<rect x="{_n(x)}" y="{_n(y)}" width="{_n(max(w, 0))}" height="{_n(max(h, 0))}" '
                          f'fill="{color}"{style}{tail}')

    def circle(self, x: float, y: float, r: float, *, color: str, title: str | None = None, opacity: float = 1,
               hollow: bool = False) -> None:
        """A point, with its tooltip."""
        paint = f'fill="#fff" stroke="{color}"' if hollow else f'fill="{color}"'
        style = f' opacity="{opacity:g}"' if opacity < 1 else ""
        body = self._title(title)
        tail = f">{body}</circle>" if body else "/>"
        self.parts.append(f'<circle cx="{_n(x)}" cy="{_n(y)}" r="{r:g}" {paint}{style}{tail}')

    def polyline(self, points: Sequence[tuple[float, float]], *, color: str, width: float = 1.5, dash: str = "",
                 opacity: float = 1) -> None:
        """A line through points (no tooltip: the points carry them)."""
        if len(points) < 2:
            return
        style = f' stroke-dasharray="{dash}"' if dash else ""
        style += f' opacity="{opacity:g}"' if opacity < 1 else ""
        coords = " ".join(f"{_n(x)},{_n(y)}" for x, y in points)
        self.parts.append(f'<polyline points="{coords}" fill="none" stroke="{color}" stroke-width="{width:g}"'
                          f'{style}/>')

    def render(self) -> str:
        """The SVG element: scales with its container (width 100%), text in the page's fonts."""
        return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_n(self.width)} {_n(self.height)}" '
                f'role="img" aria-label="{esc(self.label)}">{"".join(self.parts)}</svg>')


# ---- scales and ticks ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Scale:
    """Maps a data interval [lo, hi] onto pixels [a, b], linearly or on a log scale."""

    lo: float
    hi: float
    a: float
    b: float
    log: bool = False

    def __call__(self, v: float) -> float:
        if self.log:  # 0 and negative values (a job started and ended in one second, clock skew) sit at the floor
            floor = self.lo if self.lo > 0 else LOG_FLOOR
            hi = max(self.hi, floor)
            lo, hi, v = math.log10(floor), math.log10(hi), math.log10(max(v, floor))
        else:
            lo, hi = self.lo, self.hi
        if hi == lo:
            return (self.a + self.b) / 2
        return self.a + (v - lo) / (hi - lo) * (self.b - self.a)


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round values (steps of 1, 2, 2.5 or 5 times a power of ten) covering [lo, hi], about `count` of them."""
    if hi <= lo:
        hi = lo + (abs(lo) or 1)
    raw = (hi - lo) / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.floor(lo / step + 1e-9) * step
    ticks = [round(first, 12)]
    while ticks[-1] < hi - step * 1e-9:  # the last tick at or above hi
        ticks.append(round(first + len(ticks) * step, 12))
    return ticks


_NICE_SECONDS = (0.001, 0.01, 0.1, 1, 10, 60, 600, 3600, 6 * 3600, 86400, 7 * 86400, 30 * 86400)


def duration_ticks(lo: float, hi: float) -> tuple[list[float], bool]:
    """Ticks for durations in seconds and whether the scale is logarithmic (wide ranges: 1 s, 1 min, 1 h, ...)."""
    lo = max(lo, LOG_FLOOR)
    if hi / lo > 30:
        ticks = [t for t in _NICE_SECONDS if lo / 3 <= t <= hi * 3]
        return ticks or [lo, hi], True
    return nice_ticks(0, hi), False


def linear_duration_ticks(hi: float, count: int = 4) -> list[float]:
    """Ticks from 0 for durations in seconds, round in the unit that suits `hi` (seconds, minutes or hours)."""
    unit = 3600 if hi >= 2 * 3600 else 60 if hi >= 120 else 1
    return [t * unit for t in nice_ticks(0, hi / unit, count)]


def duration_label(seconds: float) -> str:
    """A tick label for a duration: 0, 1 s, 10 min, 6 h (no .0)."""
    return "0" if seconds == 0 else format_duration(seconds).replace(".0 ", " ")


_MONTH = 31 * 86400
_TIME_STEPS = (3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 2 * 86400, 7 * 86400, 14 * 86400,
               _MONTH, 2 * _MONTH, 3 * _MONTH, 6 * _MONTH, 12 * _MONTH, 24 * _MONTH, 60 * _MONTH)


def time_ticks(t0: float, t1: float, width: float) -> list[tuple[float, str]]:
    """(epoch seconds, label) ticks on round UTC times between t0 and t1: the finest step whose labels fit `width`."""
    for step in _TIME_STEPS:
        chars = 4 if step >= 12 * _MONTH else 7 if step >= _MONTH else 10 if step >= 86400 else 11
        room = width // (text_width("0" * chars, FONT) + 16)  # labels that fit
        if (t1 - t0) / step > room + 1:  # far too many: do not even list them
            continue
        ticks = _time_ticks(t0, t1, step)
        if len(ticks) <= room:
            return ticks
    return _time_ticks(t0, t1, _TIME_STEPS[-1])


def _time_ticks(t0: float, t1: float, step: int) -> list[tuple[float, str]]:
    if step >= _MONTH:
        months = step // _MONTH
        start = datetime.fromtimestamp(t0, UTC)
        index = start.year * 12 + start.month - 1
        index += -index % months  # round month numbers, January first
        out = []
        while True:
            moment = datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)
            if moment.timestamp() > t1:
                return out
            if moment.timestamp() >= t0:
                out.append((moment.timestamp(), moment.strftime("%Y" if months >= 12 else "%Y-%m")))
            index += months
    offset = 4 * 86400 if step % (7 * 86400) == 0 else 0  # weeks start on Monday (1970-01-01 was a Thursday)
    first = math.ceil((t0 - offset) / step) * step + offset
    fmt = "%Y-%m-%d" if step >= 86400 else "%m-%d %H:%M"
    return [(t, datetime.fromtimestamp(t, UTC).strftime(fmt)) for t in _frange(first, t1, step)]


def _frange(first: float, last: float, step: float) -> list[float]:
    out = []
    k = 0
    while first + k * step <= last:
        out.append(first + k * step)
        k += 1
    return out


# ---- plot frames ------------------------------------------------------------------------------------------------
@dataclass
class Frame:
    """A plot area inside an `Svg`: its box, its scales once set, and helpers to draw axes and a title."""

    svg: Svg
    left: float
    top: float
    right: float
    bottom: float
    outer: float = 0  # where the frame's region starts on the left: titles and the y axis name go there
    x: Scale = field(init=False)
    y: Scale = field(init=False)

    @property
    def width(self) -> float:
        return self.right - self.left

    def title(self, text: str, note: str = "") -> None:
        """A bold title above the plot area, and a muted note after it (both cut to fit)."""
        room = self.right - self.outer - 4
        label = fit(text, room, TITLE)
        self.svg.text(self.outer + 4, self.top - 10, label, size=TITLE, bold=True)
        if note:
            used = text_width(label, TITLE) * 1.1 + 10  # bold text runs wider
            if room - used > 60:
                self.svg.text(self.outer + 4 + used, self.top - 10, fit(note, room - used, FONT), color=MUTED)

    def y_axis(self, lo: float, hi: float, ticks: Sequence[float], label: Callable[[float], str], *,
               log: bool = False, name: str = "") -> None:
        """Set the y scale and draw its grid lines and labels (and the axis name, rotated, on the left)."""
        self.y = Scale(lo, hi, self.bottom, self.top, log)
        for t in ticks:
            if lo - 1e-12 <= t <= hi + 1e-12:
                y = self.y(t)
                self.svg.line(self.left, y, self.right, y, color=GRID)
                self.svg.text(self.left - 4, y + FONT * 0.35, label(t), anchor="end", color=MUTED)
        if name:
            self.svg.text(self.outer + 12, (self.top + self.bottom) / 2, name, anchor="middle", color=MUTED,
                          rotate=True)

    def x_time(self, t0: float, t1: float) -> None:
        """Set a time x scale (epoch seconds, padded a little) and draw its ticks and labels."""
        pad = max((t1 - t0) * 0.03, 1800)
        self.x = Scale(t0 - pad, t1 + pad, self.left, self.right)
        for t, label in time_ticks(t0 - pad, t1 + pad, self.width):
            x = self.x(t)
            self.svg.line(x, self.bottom, x, self.bottom + 3, color=MUTED)
            self.svg.text(x, self.bottom + 4 + FONT, label, anchor="middle", color=MUTED)
        self.baseline()

    def x_bands(self, labels: Sequence[str], *, every: int | None = None) -> float:
        """Set a categorical x scale (one band per label, e.g. months) and label some bands; returns the band width."""
        band = self.width / max(len(labels), 1)
        self.x = Scale(-0.5, len(labels) - 0.5, self.left, self.right)
        widest = max((text_width(lab, FONT) for lab in labels), default=0) + 8
        step = every or max(1, math.ceil(widest / band))
        for i in range(0, len(labels), step):
            self.svg.text(self.x(i), self.bottom + 4 + FONT, labels[i], anchor="middle", color=MUTED)
        self.baseline()
        return band

    def baseline(self) -> None:
        self.svg.line(self.left, self.bottom, self.right, self.bottom, color="#999")

    def empty(self, text: str) -> None:
        """Say, in the middle of the plot area, that it has nothing to show."""
        self.svg.text((self.left + self.right) / 2, (self.top + self.bottom) / 2, text, anchor="middle",
                      color=MUTED)


def epoch(moment: datetime) -> float:
    """A datetime as epoch seconds (naive times are UTC)."""
    return to_utc(moment).timestamp()
