"""The report's charts: small aggregated rows in, inline SVG text out (one `<title>` tooltip per bar and point).

Full-width charts are `WIDE` units wide; small multiples are one `PANEL`-wide SVG each, laid out by the page's CSS
grid. Nothing here queries: the sections hand over rows that DuckDB already aggregated.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from oqtopus_data.enums import JobStatus
from oqtopus_data.report.formats import fit, format_count, format_duration, percent
from oqtopus_data.report.stats import BOX_QUANTILES
from oqtopus_data.report.svg import (
    FONT,
    MUTED,
    PANEL,
    WIDE,
    Frame,
    Scale,
    Svg,
    duration_label,
    duration_ticks,
    linear_duration_ticks,
    nice_ticks,
)

STATES = (JobStatus.SUCCEEDED.value, JobStatus.FAILED.value, JobStatus.CANCELLED.value, "in progress")
STATE_COLORS = dict(zip(STATES, ("#3b8f4f", "#d1495b", "#9a9a9a", "#edae49"), strict=True))
MARK_COLOR, MARK_TICK = "#8a5a00", 7  # recalibration ticks: brown, 7 units up from the time axis
PALETTE = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c", "#ccb974",
           "#64b5cd")


def device_colors(devices: Sequence[str]) -> dict[str, str]:
    """One stable colour per device, in the given order (busiest first), so every chart agrees."""
    return {device: PALETTE[i % len(PALETTE)] for i, device in enumerate(devices)}


@dataclass(frozen=True)
class Point:
    """One drawn value: x (epoch seconds or a number), y, its whisker (± err, or from low to high), its tooltip,
    and whether it is drawn faint (hollow and pale)."""

    x: float
    y: float
    err: float | None = None
    title: str = ""
    faint: bool = False
    low: float | None = None
    high: float | None = None

    @property
    def span(self) -> tuple[float, float]:
        """Where the whisker runs (the point itself when it has none)."""
        if self.low is not None and self.high is not None:
            return self.low, self.high
        return self.y - (self.err or 0), self.y + (self.err or 0)


@dataclass
class Series:
    """Points of one colour, joined by a line or not, with an optional trend drawn over them."""

    label: str
    color: str
    points: list[Point] = field(default_factory=list)
    line: bool = False
    dash: str = ""
    hollow: bool = False
    trend: list[tuple[float, float]] = field(default_factory=list)


@dataclass(frozen=True)
class Mark:
    """A tick on a panel's time axis at x (a recalibration), with its tooltip: ticks stay readable at any count,
    where lines across the panel became a barcode."""

    x: float
    title: str


def series_panel(title: str, series: Sequence[Series], *, note: str = "", time_x: bool = True,
                 y_range: tuple[float, float] | None = None, y_format: Callable[[float], str] | None = format_count,
                 y_name: str = "", log_y: bool = False, marks: Sequence[Mark] = (), width: float = PANEL,
                 height: float = 210, x_name: str = "", x_range: tuple[float, float] | None = None) -> str:
    """A panel of points (with error bars) and lines over time or over a number (steps); `x_range` fixes the
    x axis (so that panels side by side share it); `y_format` None labels ticks with the digits their step needs
    (never two alike)."""
    svg = Svg(width, height, title)
    frame = Frame(svg, 58 if y_name else 46, 30, width - 12, height - 24 - (14 if x_name else 0))
    frame.title(title, note)
    points = [p for s in series for p in s.points]
    if not points:
        frame.empty("no data")
        return svg.render()
    if y_range is None:
        y_range = (min(p.span[0] for p in points), max(p.span[1] for p in points))
    lo, hi = y_range
    if log_y:
        ticks, _ = duration_ticks(lo, hi)
        lo, hi = min(ticks[0], lo), max(ticks[-1], hi)
        frame.y_axis(lo, hi, ticks, y_format or duration_label, log=True, name=y_name)
    else:
        ticks = nice_ticks(lo, hi, max(3, int((frame.bottom - frame.top) // 38)))
        lo, hi = min(ticks[0], lo), max(ticks[-1], hi)
        frame.y_axis(lo, hi, ticks, y_format or step_format(ticks), name=y_name)
    xs = [p.x for p in points]
    if x_range is not None:
        xs += list(x_range)
    if time_x:
        frame.x_time(min(xs), max(xs))
    else:
        ticks = nice_ticks(min(xs), max(xs), max(2, int(frame.width // 60)))
        frame.x = Scale(ticks[0], ticks[-1], frame.left, frame.right)
        for t in ticks:
            svg.text(frame.x(t), frame.bottom + 4 + FONT, f"{t:g}", anchor="middle", color=MUTED)
        frame.baseline()
    if x_name:
        svg.text((frame.left + frame.right) / 2, height - 6, x_name, anchor="middle", color=MUTED)
    for mark in marks:
        x = frame.x(mark.x)
        if frame.left <= x <= frame.right:
            svg.line(x, frame.bottom - MARK_TICK, x, frame.bottom, color=MARK_COLOR, width=1.5, title=mark.title)
    for s in series:
        _draw_series(frame, s)
    return svg.render()


def step_format(ticks: Sequence[float]) -> Callable[[float], str]:
    """Tick labels with as many decimals as the ticks' step needs: 0.9985, 0.999, 0.9995 rather than 0.9989 twice."""
    step = min((b - a for a, b in itertools.pairwise(ticks) if b > a), default=1.0)
    decimals = next(d for d in range(13) if abs(round(step, d) - step) <= step * 1e-6)  # 2.5e-4: 5 decimals
    return lambda v: f"{v:.{decimals}f}"


def _draw_series(frame: Frame, s: Series) -> None:
    svg, x, y = frame.svg, frame.x, frame.y
    if s.line:
        svg.polyline([(x(p.x), y(p.y)) for p in s.points if not p.faint], color=s.color, dash=s.dash, width=1.2,
                     opacity=0.8)
    for p in s.points:
        px, py = x(p.x), y(p.y)
        alpha = 0.3 if p.faint else 1
        low, high = p.span
        if high > low:
            svg.line(px, y(low), px, y(high), color=s.color, opacity=0.6 * alpha)
        svg.circle(px, py, 2.6, color=s.color, title=p.title, opacity=alpha, hollow=s.hollow or p.faint)
    svg.polyline([(x(a), y(b)) for a, b in s.trend], color="#222", width=1.6, opacity=0.75)


def stacked_bars(frames: Sequence[tuple[str, str]], bands: Sequence[str],
                 stacks: Sequence[Sequence[tuple[str, str, Sequence[float], Sequence[str]]]], *,
                 formats: Sequence[Callable[[float], str]], height: float = 190, width: float = WIDE,
                 durations: Sequence[bool] = ()) -> str:
    """Side-by-side frames of bars stacked per band (month or week).

    frames: (title, note) per frame; stacks[k]: (label, colour, values per band, tooltip per band) per layer;
    durations[k]: frame k counts seconds (its ticks are round minutes or hours).
    """
    svg = Svg(width, height, " / ".join(t for t, _ in frames))
    each = width / len(frames)
    for k, ((title, note), layers, fmt) in enumerate(zip(frames, stacks, formats, strict=True)):
        ox = k * each
        frame = Frame(svg, ox + 52, 30, ox + each - 10, height - 22, outer=ox)
        totals = [sum(layer[2][i] for layer in layers) for i in range(len(bands))]
        cap = clip_at(totals)
        seconds = k < len(durations) and durations[k]
        ticks = linear_duration_ticks(max(totals) if cap is None else cap) if seconds else \
            nice_ticks(0, max(totals) if cap is None else cap, 4)
        cap = None if cap is None else ticks[-1]
        frame.title(title, note if cap is None else f"{note} · axis clipped at {fmt(cap)}")
        if not any(totals):
            frame.baseline()
            frame.empty("none reported")
            continue
        frame.y_axis(0, ticks[-1] * (1 if cap is None else 1.15), ticks, fmt)  # room above a cap for totals
        band = frame.x_bands(bands)
        bottom = [0.0] * len(bands)
        for _label, color, values, titles in layers:
            for i, v in enumerate(values):
                if v and (cap is None or bottom[i] < cap):
                    top = bottom[i] + v if cap is None else min(bottom[i] + v, cap)
                    svg.rect(frame.x(i) - band * 0.4, frame.y(top), band * 0.8, frame.y(bottom[i]) - frame.y(top),
                             color=color, title=titles[i])
                bottom[i] += v
        for i, total in enumerate(totals):
            if cap is not None and total > cap:  # a white break across the bar, its true total above it
                x, y = frame.x(i), frame.y(cap) + 6
                svg.line(x - band * 0.45, y + 2, x + band * 0.45, y - 2, color="#fff", width=3)
                svg.text(x, frame.y(cap) - 3, fmt(total), anchor="middle", bold=True)
    return svg.render()


CLIP_RATIO = 4  # a band more than this many times the next tallest clips the axis


def clip_at(totals: Sequence[float]) -> float | None:
    """Where to clip a bar chart's axis so that one heavy band (a 10-million-shot job) does not flatten the others:
    at the tallest of the other bands when the heaviest is CLIP_RATIO times taller than it; None to draw all."""
    ordered = sorted((t for t in totals if t > 0), reverse=True)
    if len(ordered) < 2 or ordered[0] <= CLIP_RATIO * ordered[1]:
        return None
    return ordered[1] * 1.15


def weekly_panels(rows: Sequence[tuple[str, str, str, int]], weeks: Sequence[str], devices: Sequence[str]) -> str:
    """Jobs per week (or month) per device, one strip each, stacked by status. rows: (band, device, state, jobs)."""
    strip = 104
    svg = Svg(WIDE, 16 + strip * len(devices), "jobs per week by device and status")
    index = {w: i for i, w in enumerate(weeks)}
    counts: dict[tuple[str, str], list[int]] = {}
    for band, device, state, n in rows:
        counts.setdefault((device, state), [0] * len(weeks))[index[band]] += n
    for d, device in enumerate(devices):
        frame = Frame(svg, 52, 28 + d * strip, WIDE - 10, (d + 1) * strip - 4)
        frame.title(device)
        totals = [sum(counts.get((device, s), [0] * len(weeks))[i] for s in STATES) for i in range(len(weeks))]
        ticks = [t for t in nice_ticks(0, max(max(totals), 1), 3) if float(t).is_integer()]
        frame.y_axis(0, max(ticks[-1], max(totals)), ticks, format_count)
        band = frame.x_bands(weeks) if d == len(devices) - 1 else _bands_only(frame, weeks)
        bottom = [0] * len(weeks)
        for state in STATES:
            values = counts.get((device, state))
            if values is None:
                continue
            for i, v in enumerate(values):
                if v:
                    top = bottom[i] + v
                    svg.rect(frame.x(i) - band * 0.42, frame.y(top), band * 0.84, frame.y(bottom[i]) - frame.y(top),
                             color=STATE_COLORS[state], title=f"{device}, {weeks[i]}: {v:,} {state} of {totals[i]:,}")
                    bottom[i] = top
    return svg.render()


def _bands_only(frame: Frame, labels: Sequence[str]) -> float:
    frame.x = Scale(-0.5, len(labels) - 0.5, frame.left, frame.right)
    frame.baseline()
    return frame.width / max(len(labels), 1)


def timing_boxes(stats: Sequence[dict], colors: dict[str, str]) -> str:
    """Queue and run time boxes per device from five quantiles (whisker, box, median, box, whisker: the report's
    `stats.BOX_QUANTILES`), medians written above the boxes.

    stats: {"device", "kind" ("queue" or "run"), "n", "q": [low whisker, p25, p50, p75, high whisker]}.
    """
    devices = list(dict.fromkeys(s["device"] for s in stats))
    row = 34
    height = 52 + row * len(devices)
    svg = Svg(WIDE, height, "queue and run time per device")
    label_width = 112
    for k, (kind, title) in enumerate((("queue", "Queue time (submitted → running)"),
                                       ("run", "Run time (running → ended)"))):
        ox = k * WIDE / 2
        frame = Frame(svg, ox + label_width, 34, ox + WIDE / 2 - 14, height - 22, outer=ox)
        frame.title(title)
        boxes = [s for s in stats if s["kind"] == kind and s["q"] is not None]
        if not boxes:
            frame.baseline()
            frame.empty(f"no {kind} times yet")
            continue
        ticks, log = duration_ticks(min(s["q"][0] for s in boxes), max(s["q"][4] for s in boxes))
        lo = min(ticks[0], min(s["q"][0] for s in boxes)) if log else 0
        hi = max(ticks[-1], max(s["q"][4] for s in boxes))
        frame.x = Scale(lo, hi, frame.left, frame.right, log)
        for t in ticks:
            x = frame.x(t)
            svg.line(x, frame.top, x, frame.bottom, color="#e6e6e6")
            svg.text(x, frame.bottom + 4 + FONT, duration_label(t), anchor="middle", color=MUTED)
        frame.baseline()
        for i, s in enumerate(sorted(boxes, key=lambda b: devices.index(b["device"]))):
            yc = frame.top + row * (i + 0.5) + 4
            low, p25, p50, p75, high = (frame.x(v) for v in s["q"])
            color = colors.get(s["device"], "#cccccc")
            tip = (f"{s['device']} {kind} time, {s['n']:,} jobs: median {format_duration(s['q'][2])}; 25–75 %: "
                   f"{format_duration(s['q'][1])}–{format_duration(s['q'][3])}; {_pct(BOX_QUANTILES[0])}–"
                   f"{_pct(BOX_QUANTILES[4])} %: {format_duration(s['q'][0])}–{format_duration(s['q'][4])}")
            svg.line(low, yc, high, yc, color="#555")
            svg.rect(p25, yc - 7, max(p75 - p25, 1), 14, color=color, opacity=0.8, stroke="#555", title=tip)
            svg.line(p50, yc - 7, p50, yc + 7, color="#000", width=2)
            svg.text(p50, yc - 9, format_duration(s["q"][2]), anchor="middle", bold=True)
            svg.text(ox + 4, yc + 4, fit(f"{s['device']} (n={format_count(s['n'])})", label_width - 8, FONT))
    return svg.render()


def _pct(q: float) -> str:
    return f"{100 * q:g}"


def month_lines(title: str, months: Sequence[str], series: Sequence[Series], *, log_y: bool,
                y_format: Callable[[float], str], y_name: str = "", note: str = "",
                y_range: tuple[float, float] | None = None, labels: dict[tuple[str, int], str] | None = None,
                height: float = 230, width: float = WIDE) -> str:
    """Points per month (x = month index, one band each) joined per series, with error bars; optional small labels
    under the points ((series label, month index) -> text), such as the number of jobs behind each."""
    svg = Svg(width, height, title)
    frame = Frame(svg, 60, 30, width - 12, height - 24 - (12 if labels else 0))
    frame.title(title, note)
    points = [p for s in series for p in s.points]
    if not points:
        frame.empty("no data")
        return svg.render()
    lo, hi = y_range or (min(p.span[0] for p in points), max(p.span[1] for p in points))
    if log_y:
        ticks, log = duration_ticks(lo, hi)
        frame.y_axis(min(ticks[0], lo) if log else 0, max(ticks[-1], hi), ticks, y_format, log=log, name=y_name)
    else:
        ticks = nice_ticks(lo, hi, 5)
        frame.y_axis(ticks[0], ticks[-1], ticks, y_format, name=y_name)
    band = frame.x_bands(months)
    if labels and band >= 20:
        svg.text(frame.left - 4, height - 8, "jobs", anchor="end", color=MUTED)
        for (label, i), text in labels.items():
            k = [s.label for s in series].index(label)
            dx = (k - (len(series) - 1) / 2) * min(band / max(len(series), 1), 30)
            svg.text(frame.x(i) + dx, height - 8, text, anchor="middle", color=MUTED, size=FONT)
    for k, s in enumerate(series):
        dx = (k - (len(series) - 1) / 2) * min(band * 0.8 / max(len(series), 1), 12)  # side by side, not on top
        shifted = Series(s.label, s.color, [replace(p, x=p.x + dx / max(band, 1e-9)) for p in s.points], s.line,
                         s.dash, s.hollow)
        _draw_series(frame, shifted)
    return svg.render()


def percent_label(v: float) -> str:
    """A tick label for a share 0..1."""
    return percent(v, 0)
