"""Charts and HTML pieces of `oqtopus-data report`: small aggregated rows in, inline SVG and HTML text out.

matplotlib is used through `Figure` objects only (never pyplot), so drawing touches no global backend and works
in any process. Text stays text in the SVG (`svg.fonttype: none`), which keeps files small and labels selectable.
"""

from __future__ import annotations

import html
import io
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import matplotlib
import matplotlib.dates as mdates
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MaxNLocator

STATES = ("succeeded", "failed", "cancelled", "in progress")
STATE_COLORS = {"succeeded": "#3b8f4f", "failed": "#d1495b", "cancelled": "#9a9a9a", "in progress": "#edae49"}
_PALETTE = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c", "#ccb974",
            "#64b5cd")
_RC = {
    "svg.fonttype": "none",
    "svg.hashsalt": "oqtopus-data-report",  # stable element ids: the same data gives the same file
    "font.family": "sans-serif",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "legend.frameon": False,
}


def device_colors(devices: Sequence[str]) -> dict[str, str]:
    """One stable colour per device, in the given order (busiest first), so every chart agrees."""
    return {device: _PALETTE[i % len(_PALETTE)] for i, device in enumerate(devices)}


def format_duration(seconds: float | None) -> str:
    """A duration for people: 850 ms, 12.3 s, 4.2 min, 3.1 h, 2.5 d."""
    if seconds is None:
        return "-"
    s = float(seconds)
    if abs(s) < 1:
        return f"{s * 1000:.0f} ms"
    if abs(s) < 60:
        return f"{s:.1f} s"
    if abs(s) < 3600:
        return f"{s / 60:.1f} min"
    if abs(s) < 2 * 86400:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} d"


def format_count(n: float | None) -> str:
    """A large number for people: 950, 12.3K, 4.5M, 1.2G."""
    if n is None:
        return "-"
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= limit:
            return f"{n / limit:.1f}{suffix}"
    return f"{n:.0f}" if float(n).is_integer() else f"{n:.2f}"


def plain(text: Any, limit: int = 60) -> str:
    """Data text safe for matplotlib and short enough for a legend: `$` would start mathtext, a leading `_` hides
    a legend entry."""
    out = clip(text, limit).replace("$", r"\$")
    return "\u200b" + out if out.startswith("_") else out


def clip(text: Any, limit: int) -> str:
    """Text cut to `limit` characters, with an ellipsis when it was longer."""
    out = str(text)
    return out if len(out) <= limit else out[: limit - 1] + "…"


def short_bits(bits: str, keep: int = 24) -> str:
    """A long bitstring cut in the middle so that a legend stays readable."""
    return bits if len(bits) <= keep else f"{bits[: keep // 2]}…{bits[-keep // 2:]}"


@contextmanager
def _figure(width: float, height: float) -> Iterator[Figure]:
    with matplotlib.rc_context(_RC):
        yield Figure(figsize=(width, height), layout="constrained")


def _svg(fig: Figure) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    return text[text.index("<svg"):]  # drop the XML prolog and DOCTYPE: the SVG is inlined into HTML


def _date_axis(ax: Any) -> None:
    locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def _month_axis(ax: Any, months: Sequence[str], labels: int = 6) -> None:
    step = max(1, -(-len(months) // labels))
    ticks = list(range(0, len(months), step))
    ax.set_xticks(ticks, [months[i] for i in ticks])
    ax.set_xlim(-0.6, len(months) - 0.4)


_NICE_SECONDS = (0.001, 0.01, 0.1, 1, 10, 60, 600, 3600, 6 * 3600, 86400, 7 * 86400)


def _duration_axis(ax: Any, low: float, high: float) -> None:
    """Log scale with ticks on round durations (1 s, 10 s, 1 min, 10 min, 1 h, ...) when the range is wide, else a
    linear scale in the unit that suits the longest duration."""
    if low > 0 and high / low > 30:
        ax.set_xscale("log")
        ax.set_xticks([t for t in _NICE_SECONDS if low / 2 <= t <= high * 2])
        ax.minorticks_off()
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: format_duration(v).replace(".0 ", " ")))
        return
    name, per = next((u for u in (("hours", 3600), ("minutes", 60)) if high >= 2 * u[1]), ("seconds", 1))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v / per:.4g}"))
    ax.set_xlabel(name)


def jobs_per_week(rows: Sequence[tuple[datetime, str, str, int]], devices: Sequence[str]) -> str:
    """Weekly job counts, one panel per device, stacked by final status. rows: (week start, device, state, jobs)."""
    first, last = min(r[0] for r in rows), max(r[0] for r in rows)
    weeks = [first + timedelta(weeks=k) for k in range((last - first).days // 7 + 2)]  # every week, and the end
    index = {w: i for i, w in enumerate(weeks)}
    counts: dict[tuple[str, str], np.ndarray] = {}
    for week, device, state, n in rows:
        counts.setdefault((device, state), np.zeros(len(weeks) - 1))[index[week]] += n
    edges = mdates.date2num(weeks)
    with _figure(11, 0.6 + 1.7 * len(devices)) as fig:
        axes = fig.subplots(len(devices), 1, sharex=True, squeeze=False)[:, 0]
        for ax, device in zip(axes, devices, strict=True):
            bottom = np.zeros(len(weeks) - 1)
            for state in STATES:
                if (device, state) in counts:  # one filled step outline per state: cheap for years of weeks
                    top = bottom + counts[device, state]
                    ax.stairs(top, edges, baseline=bottom, fill=True, color=STATE_COLORS[state], linewidth=0)
                    bottom = top
            ax.set_title(plain(device), loc="left")
            ax.set_ylabel("jobs")
            ax.set_ylim(0, max(bottom.max(), 1) * 1.05)
            ax.yaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))
        _date_axis(axes[-1])
        handles = [Patch(color=STATE_COLORS[s], label=s) for s in STATES]
        fig.legend(handles=handles, loc="outside upper right", ncols=len(STATES))
        return _svg(fig)


def timing_boxes(stats: Sequence[dict[str, Any]], colors: dict[str, str]) -> str:
    """Queue and run time box plots per device from precomputed quantiles (5/25/50/75/95 %), medians labelled.

    stats: {"device", "kind" ("queue" or "run"), "n", "q": [p5, p25, p50, p75, p95]}.
    """
    kinds = [("queue", "Queue time (submitted → running)"), ("run", "Run time (running → ended)")]
    devices = list(dict.fromkeys(s["device"] for s in stats))
    with _figure(11, 1.2 + 0.55 * len(devices)) as fig:
        axes = fig.subplots(1, 2)
        for ax, (kind, title) in zip(axes, kinds, strict=True):
            boxes = [s for s in stats if s["kind"] == kind and s["q"] is not None]
            boxes.sort(key=lambda s: -devices.index(s["device"]))  # busiest device on top
            if not boxes:
                ax.set_axis_off()
                ax.text(0.5, 0.5, f"no {kind} times yet", ha="center", transform=ax.transAxes)
                continue
            ax.bxp([{"label": f"{plain(s['device'])} (n={format_count(s['n'])})", "whislo": s["q"][0],
                     "q1": s["q"][1], "med": s["q"][2], "q3": s["q"][3], "whishi": s["q"][4]} for s in boxes],
                   orientation="horizontal", showfliers=False, widths=0.6, patch_artist=True,
                   medianprops={"color": "black"})
            for patch, s in zip(ax.patches, boxes, strict=True):
                patch.set_facecolor(colors.get(s["device"], "#cccccc"))
                patch.set_alpha(0.75)
            _duration_axis(ax, min(s["q"][0] for s in boxes), max(s["q"][4] for s in boxes))
            for y, s in enumerate(boxes, start=1):  # above the box, clear of its edge
                ax.annotate(format_duration(s["q"][2]), (s["q"][2], y + 0.3), xytext=(0, 2),
                            textcoords="offset points", ha="center", va="bottom", fontsize=8, fontweight="bold")
            ax.set_ylim(0.5, len(boxes) + 0.85)
            ax.set_title(title, loc="left")
            ax.grid(axis="y", visible=False)
        return _svg(fig)


def status_rates(rows: Sequence[tuple[str, str, int, int, int]], devices: Sequence[str],
                 colors: dict[str, str]) -> str:
    """Monthly success, failure and cancel rates (% of finished jobs), a line per device.

    rows: (month "YYYY-MM", device, succeeded, failed, cancelled).
    """
    months = sorted({r[0] for r in rows})
    index = {m: i for i, m in enumerate(months)}
    with _figure(11, 3.2) as fig:
        axes = fig.subplots(1, 3, sharex=True)
        for k, (ax, state) in enumerate(zip(axes, STATES[:3], strict=False)):
            for device in devices:
                points = sorted((index[m], 100 * counts[k] / sum(counts))
                                for m, dev, *counts in rows if dev == device and sum(counts))
                if points:
                    xs, ys = zip(*points, strict=True)
                    ax.plot(xs, ys, marker="o", markersize=3.5, linewidth=1.4, color=colors.get(device),
                            label=plain(device))
            ax.set_title(f"{state} (% of finished jobs)", loc="left")
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:.0f}%"))
            _month_axis(ax, months, labels=5)
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside upper right", ncols=min(len(labels), 6))
        return _svg(fig)


def usage(rows: Sequence[tuple[str, str, float, float]], devices: Sequence[str], colors: dict[str, str]) -> str:
    """Shots and execution time per month, bars stacked by device. rows: (month, device, shots, seconds)."""
    months = sorted({r[0] for r in rows})
    index = {m: i for i, m in enumerate(months)}
    totals = np.zeros((2, len(devices), len(months)))  # (shots | seconds, device, month)
    for month, device, shots, seconds in rows:
        totals[:, devices.index(device), index[month]] += (shots or 0, seconds or 0)
    longest = totals[1].sum(axis=0).max(initial=0)
    unit, per = ("hours", 3600) if longest >= 2 * 3600 else ("minutes", 60) if longest >= 120 else ("seconds", 1)
    with _figure(11, 3.2) as fig:
        axes = fig.subplots(1, 2)
        for k, (ax, title, scale) in enumerate(zip(axes, ("Shots requested", f"Execution time, {unit}"), (1, per),
                                                   strict=True)):
            ax.set_title(title, loc="left")
            _month_axis(ax, months, labels=8)
            ax.grid(axis="x", visible=False)
            if not totals[k].any():
                ax.text(0.5, 0.5, "none reported yet", ha="center", transform=ax.transAxes)
                ax.set_yticks([])
                continue
            bottom = np.zeros(len(months))
            for d, device in enumerate(devices):
                ax.bar(range(len(months)), totals[k, d] / scale, bottom=bottom, color=colors.get(device),
                       label=plain(device), width=0.8, linewidth=0)
                bottom += totals[k, d] / scale
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: format_count(v)))
        handles = [Patch(color=colors.get(device), label=plain(device)) for device in devices]
        fig.legend(handles=handles, loc="outside upper right", ncols=min(len(devices), 6))
        return _svg(fig)


def drift(series: Sequence[dict[str, Any]]) -> str:
    """Probability of each circuit's usual outcome over time, a line per (circuit, device).

    series: {"label", "points": [(time, mean probability, runs)]}.
    """
    with _figure(11, 4.2) as fig:
        ax = fig.subplots()
        for k, s in enumerate(series):
            xs = [p[0] for p in s["points"]]
            ys = [p[1] for p in s["points"]]
            ax.plot(xs, ys, marker="o" if len(xs) <= 60 else None, markersize=3, linewidth=1.2,
                    color=_PALETTE[k % len(_PALETTE)],
                    label=plain(s["label"], limit=100))
        ax.set_ylabel("probability of the usual outcome")
        values = [p[1] for s in series for p in s["points"]]
        ax.set_ylim(max(0.0, min(values) - 0.05), min(1.02, max(values) + 0.05))  # drift shows; 0..1 bounds it
        _date_axis(ax)
        fig.legend(loc="outside right upper", fontsize=8)
        return _svg(fig)


def estimation_traces(series: Sequence[dict[str, Any]], colors: dict[str, str]) -> str:
    """exp_value ± stds per estimation series, one panel each (2 columns).

    series: {"label", "stepped", "runs": [(run label, [(x, y, err)])] } where x is a step or a time and runs of a
    time series are devices.
    """
    cols = 2 if len(series) > 1 else 1
    nrows = -(-len(series) // cols)
    with _figure(11, 0.4 + 3.0 * nrows) as fig:
        axes = fig.subplots(nrows, cols, squeeze=False).ravel()
        for ax, s in zip(axes, series, strict=False):
            for k, (label, points) in enumerate(s["runs"]):
                xs, ys, errs = zip(*points, strict=True)
                color = colors.get(label) if not s["stepped"] else _PALETTE[k % len(_PALETTE)]
                ax.errorbar(xs, ys, yerr=[e or 0 for e in errs], fmt="o-" if s["stepped"] else "o",
                            markersize=3, linewidth=1, elinewidth=0.8, capsize=2, color=color, label=plain(label))
            ax.set_title(plain(s["label"]), loc="left")
            ax.set_ylabel("exp_value")
            if s["stepped"]:
                ax.set_xlabel("step")
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            else:
                _date_axis(ax)
            ax.legend(fontsize=7, loc="best")
        for ax in axes[len(series):]:
            ax.set_axis_off()
        return _svg(fig)


# ---- HTML pieces ------------------------------------------------------------------------------------------
def esc(value: Any) -> str:
    """Text for HTML (element content or a quoted attribute)."""
    return html.escape("" if value is None else str(value), quote=True)


def page(title: str, heading: str, lines: Sequence[str], sections: Sequence[tuple[str, str, str]]) -> str:
    """The whole HTML document: escaped title and header lines, a contents line, then (id, title, html) sections."""
    nav = " · ".join(f'<a href="#{esc(key)}">{esc(name)}</a>' for key, name, _ in sections)
    parts = "".join(f'<section id="{esc(key)}"><h2>{esc(name)}</h2>{body}</section>' for key, name, body in sections)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body><header>"
            f"<h1>{esc(heading)}</h1>{''.join(f'<p>{esc(line)}</p>' for line in lines)}"
            f"<nav>{nav}</nav></header>{parts}</body></html>\n")


def table(head: Sequence[str], rows: Sequence[Sequence[str]], *, numeric_from: int = 99, css: str = "") -> str:
    """An HTML table; cells are escaped here unless they are already `Html`."""
    def cell(i: int, v: str) -> str:
        cls = ' class="num"' if i >= numeric_from else ""
        return f"<td{cls}>{v}</td>" if isinstance(v, Html) else f"<td{cls}>{esc(v)}</td>"

    top = "".join(f"<th>{esc(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(cell(i, v) for i, v in enumerate(row)) + "</tr>" for row in rows)
    return f'<table class="{css}"><thead><tr>{top}</tr></thead><tbody>{body}</tbody></table>'


class Html(str):
    """A table cell that is already HTML."""


def seconds_cell(value: float | None) -> str:
    """A duration cell: readable text, the exact seconds in `data-seconds` and the tooltip."""
    if value is None:
        return "-"
    return Html(f'<span data-seconds="{value:.3f}" title="{value:.3f} s">{esc(format_duration(value))}</span>')


def day(moment: datetime | None) -> str:
    """A UTC date, or "-"."""
    return moment.strftime("%Y-%m-%d") if moment else "-"


def minute(moment: datetime | None) -> str:
    """A UTC time to the minute, or "-"."""
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "-"


CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#222;max-width:1180px;margin:0 auto;
padding:16px 24px;background:#fff}
h1{font-size:24px;margin:8px 0 4px}h2{font-size:18px;border-bottom:2px solid #e4e4e4;padding-bottom:4px;margin-top:36px}
h3{font-size:14px;margin:0 0 2px;word-break:break-all}header p{margin:2px 0;color:#555}
nav{margin:10px 0;font-size:13px}a{color:#3465a4}figure{margin:12px 0}figure svg{width:100%;height:auto}
figcaption,.note,.meta{color:#666;font-size:12.5px}.empty{color:#8a5a00;background:#fff7e6;padding:8px 12px;
border-radius:4px}table{border-collapse:collapse;margin:10px 0;font-size:13px}th,td{padding:3px 10px;
text-align:left;border-bottom:1px solid #eee}th{background:#f6f6f6}td.num{text-align:right;
font-variant-numeric:tabular-nums}.tiles{display:flex;gap:12px;flex-wrap:wrap;margin:12px 0}.tile{background:#f4f7fb;
border-radius:6px;padding:8px 16px;min-width:120px}.tile b{display:block;font-size:20px}.tile span{color:#666;
font-size:12px}.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));gap:12px}
.card{border:1px solid #e4e4e4;border-radius:6px;padding:10px 12px}.card table{width:100%;margin:6px 0 0}
.card td{border:0;padding:1px 4px}.bitstring{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;
word-break:break-all;width:45%}.barcell{width:40%}.bar{display:block;height:10px;background:#4c72b0;border-radius:2px;
min-width:1px}code{font-size:12px}
"""
