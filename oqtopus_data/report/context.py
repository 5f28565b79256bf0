"""What every section of the report shares: the selection as SQL (`Scope`), the page part a section builds
(`Section`), and the connection with the totals, device order and colours several sections use (`Context`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import duckdb

from oqtopus_data.enums import JobStatus
from oqtopus_data.report import charts
from oqtopus_data.report.formats import esc
from oqtopus_data.selection import Filters

MAX_DEVICES = 8  # devices drawn one by one; the rest are summed as "other devices"
OTHER = "other devices"


@dataclass(frozen=True)
class Scope(Filters):
    """The report's selection (the export's `Filters`: submission time inclusive at both ends, statuses, job types,
    devices) as SQL over the jobs columns and as words."""

    def where(self, alias: str = "") -> str:
        """A condition on the jobs columns of the relation named `alias` ("" or "j.")."""
        terms = ["TRUE"]
        if self.since is not None:
            terms.append(f"{alias}submitted_at >= $since")
        if self.until is not None:
            terms.append(f"{alias}submitted_at <= $until")
        for name, column in (("devices", "device_id"), ("statuses", "status"), ("job_types", "job_type")):
            if getattr(self, name):
                terms.append(f"list_contains(${name}, {alias}{column})")
        return " AND ".join(terms)

    @property
    def params(self) -> dict[str, Any]:
        """The named parameters `where()` refers to."""
        out: dict[str, Any] = {}
        for name in ("since", "until"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        for name in ("devices", "statuses", "job_types"):
            if getattr(self, name):
                out[name] = list(getattr(self, name))
        return out

    def described(self) -> list[str]:
        """The narrowing in words, one phrase per kind ([] when nothing narrows)."""
        out = []
        if self.since:
            out.append(f"submitted at or after {self.since.strftime('%Y-%m-%d %H:%M UTC')}")
        if self.until:
            out.append(f"submitted at or before {self.until.strftime('%Y-%m-%d %H:%M UTC')}")
        for label, values in (("devices", self.devices), ("statuses", self.statuses),
                              ("job types", self.job_types)):
            if values:
                out.append(f"{label} " + ", ".join(values))
        return out


@dataclass
class Section:
    """One titled part of the page: an explanation, then charts and tables, or a sentence saying there is no data."""

    key: str
    title: str
    body: list[str] = field(default_factory=list)
    charts: int = 0

    def chart(self, svg: str, caption: str, legend: str = "") -> None:
        """Add a chart (inline SVG) with its caption and an optional HTML legend above it."""
        self.body.append(f"<figure>{legend}{svg}<figcaption>{esc(caption)}</figcaption></figure>")
        self.charts += 1

    def panels(self, svgs: list[str], caption: str, legend: str = "") -> None:
        """Add small multiples (one SVG each, laid out in a grid) as one chart with one caption."""
        cells = "".join(f'<div class="panel">{svg}</div>' for svg in svgs)
        self.body.append(f'<figure>{legend}<div class="panels">{cells}</div>'
                         f"<figcaption>{esc(caption)}</figcaption></figure>")
        self.charts += 1

    def text(self, html: str) -> None:
        """Add HTML built from escaped parts (a paragraph, a table)."""
        self.body.append(html)

    def empty(self, sentence: str) -> Section:
        """Say in a sentence that the section (or a part of it) has no data."""
        self.body.append(f'<p class="empty">{esc(sentence)}</p>')
        return self


class Context:
    """The connection, the selection, the options and what several sections share: totals, devices, colours."""

    def __init__(self, con: duckdb.DuckDBPyConnection, scope: Scope, *, top_jobs: int = 10,
                 table_rows: int = 2000) -> None:
        self.con, self.scope, self.top_jobs, self.table_rows = con, scope, top_jobs, table_rows
        self.by_device = self.rows(f"""
            SELECT device_id, count(*) AS jobs,
                   count(*) FILTER (status = '{JobStatus.SUCCEEDED}'), count(*) FILTER (status = '{JobStatus.FAILED}'),
                   count(*) FILTER (status = '{JobStatus.CANCELLED}'), sum(shots), sum(execution_time),
                   min(submitted_at), max(submitted_at)
            FROM jobs WHERE {scope.where()} GROUP BY device_id ORDER BY jobs DESC, device_id""")
        self.jobs = sum(r[1] for r in self.by_device)
        self.devices = [r[0] for r in self.by_device]
        # Busiest devices get their own colour and panel; the rest share one.
        self.shown = self.devices[:MAX_DEVICES] + ([OTHER] if len(self.devices) > MAX_DEVICES else [])
        self.colors = charts.device_colors(self.shown)
        firsts = [r[7] for r in self.by_device if r[7] is not None]
        lasts = [r[8] for r in self.by_device if r[8] is not None]
        self.first, self.last = (min(firsts), max(lasts)) if firsts else (None, None)

    def rows(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        """Run `sql` with the selection's parameters (and `params`), those it names, and fetch every row."""
        given = {**self.scope.params, **params}
        return self.con.execute(sql, {k: v for k, v in given.items() if f"${k}" in sql}).fetchall()

    def group(self, device: str) -> str:
        """The device, or "other devices" when it has no colour of its own."""
        return device if device in self.colors else OTHER
