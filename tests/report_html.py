"""Reading the report's HTML in tests: its sections, tooltips and table rows as plain text."""

from __future__ import annotations

import html
import re


def sections(page: str) -> dict[str, str]:
    """Each `<section id=...>` of the page: id -> its inner HTML."""
    return dict(re.findall(r'<section id="([^"]+)">(.*?)</section>', page, flags=re.S))


def titles(part: str) -> list[str]:
    """The tooltips of a page part, unescaped."""
    return [html.unescape(t) for t in re.findall(r"<title>(.*?)</title>", part, flags=re.S)]


def table_rows(part: str, css: str) -> list[list[str]]:
    """The body rows of the table of class `css` in `part`, each cell's text unescaped."""
    body = re.search(rf'<table class="{css}">.*?<tbody>(.*?)</tbody>', part, flags=re.S).group(1)
    return [[html.unescape(re.sub(r"<[^>]+>", "", c)) for c in re.findall(r"<td[^>]*>(.*?)</td>", row, flags=re.S)]
            for row in re.findall(r"<tr>(.*?)</tr>", body, flags=re.S)]
