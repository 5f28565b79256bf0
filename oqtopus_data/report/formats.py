"""Text of the report: numbers and durations for people, escaping for HTML, widths of text in charts.

Every string that comes from the data passes through `esc` (or is an `Html` built from escaped parts) on its way
into the page or an SVG.
"""

from __future__ import annotations

import html
import unicodedata
from collections.abc import Sequence
from datetime import datetime
from typing import Any


class Html(str):
    """Text that is already HTML (built from escaped parts): `table` and `cell` leave it as it is."""


def esc(value: Any) -> str:
    """Text for HTML or SVG (element content or a quoted attribute)."""
    return html.escape("" if value is None else str(value), quote=True)


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


def percent(p: float | None, digits: int = 1) -> str:
    """A share as a percentage (0.953 -> "95.3%"), or "-"."""
    return "-" if p is None else f"{100 * p:.{digits}f}%"


def number(value: float | None, digits: int = 3) -> str:
    """A measured value with `digits` significant digits, or "-"."""
    return "-" if value is None else f"{value:.{digits}g}"


def short_bits(bits: str, keep: int = 24) -> str:
    """A long bitstring cut in the middle so that it fits a column."""
    return bits if len(bits) <= keep else f"{bits[: keep // 2]}…{bits[-keep // 2:]}"


#: How the page reads a bitstring: as the API gives it, and which end is bit 0.
BIT_ORDER = ("Bitstrings are shown as the API gives them; read as a binary number (the SDK's integer form, the "
             "<code>outcome</code> column) the leftmost character is the most significant bit and the rightmost "
             "is bit 0. A long one is shortened in the middle (…, with its width); hover it for the whole value.")


def bits_html(bits: str, keep: int) -> str:
    """A bitstring on one line: a long one cut in the middle with its width, whole in its tooltip."""
    short = short_bits(bits, keep)
    if short == bits:
        return f'<span class="bits1">{esc(bits)}</span>'
    return f'<span class="bits1" title="{esc(bits)}">{esc(short)} <small>({len(bits)} bits)</small></span>'


def text_width(text: str, size: float) -> float:
    """About how wide `text` is drawn at font size `size` (wide East Asian characters count double)."""
    return size * sum(1.0 if unicodedata.east_asian_width(ch) in "WF" else 0.58 for ch in text)


def fit(text: Any, width: float, size: float) -> str:
    """`text` cut (with an ellipsis) so that it fits `width` at font size `size`."""
    out = "" if text is None else str(text)
    while out and text_width(out, size) > width:
        out = out[:-2] + "…" if len(out) > 2 else ""
    return out


def day(moment: datetime | None) -> str:
    """A UTC date, or "-"."""
    return moment.strftime("%Y-%m-%d") if moment else "-"


def minute(moment: datetime | None) -> str:
    """A UTC time to the minute, or "-"."""
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "-"


def seconds_cell(value: float | None) -> str:
    """A duration cell: readable text, the exact seconds in `data-seconds` and the tooltip."""
    if value is None:
        return "-"
    return Html(f'<span data-seconds="{value:.3f}" title="{value:.3f} s">{esc(format_duration(value))}</span>')


def table(head: Sequence[str], rows: Sequence[Sequence[str]], *, numeric_from: int = 99, css: str = "") -> str:
    """An HTML table; cells are escaped here unless they are already `Html`."""
    def cell(i: int, v: str) -> str:
        cls = ' class="num"' if i >= numeric_from else ""
        return f"<td{cls}>{v}</td>" if isinstance(v, Html) else f"<td{cls}>{esc(v)}</td>"

    top = "".join(f"<th>{esc(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(cell(i, v) for i, v in enumerate(row)) + "</tr>" for row in rows)
    return f'<table class="{css}"><thead><tr>{top}</tr></thead><tbody>{body}</tbody></table>'


def legend(items: Sequence[tuple[str, str]], css: str = "") -> str:
    """A line of coloured swatches with labels ((label, colour) pairs), as HTML above a chart."""
    spans = "".join(f'<span><i style="background:{esc(color)}"></i>{esc(label)}</span>' for label, color in items)
    return f'<div class="legend {css}">{spans}</div>'
