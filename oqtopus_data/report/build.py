"""`write_report`: check the selection against the export, run every section over one DuckDB connection, write
one self-contained HTML file (inline SVG, inline script, nothing fetched) in place atomically."""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from oqtopus_data import __version__
from oqtopus_data.dataset.storage import open_storage
from oqtopus_data.query.views import connect
from oqtopus_data.report.context import Context, Scope, Section
from oqtopus_data.report.fleet import devices, usage
from oqtopus_data.report.formats import day, minute
from oqtopus_data.report.jobtable import job_table
from oqtopus_data.report.overview import jobs_per_week, overview, success_rates, timings
from oqtopus_data.report.page import page
from oqtopus_data.report.results import drift, estimation, top_bitstrings
from oqtopus_data.times import to_utc

TABLE_ROWS = 2000  # jobs in the job table (the newest)
SECTIONS: tuple[Callable[[Context], Section], ...] = (
    overview, jobs_per_week, timings, success_rates, usage, devices, top_bitstrings, drift, estimation, job_table)


class SelectionError(ValueError):
    """The selection names a device, status or job type the export does not have, or selects no job at all."""


@dataclass(frozen=True)
class ReportSummary:
    """What `write_report` produced: the file, how many charts it drew and how many jobs it covers."""

    path: Path
    charts: int
    jobs: int


@dataclass(frozen=True)
class Rendered:
    """The page's text, its number of charts and the number of jobs it covers."""

    text: str
    charts: int
    jobs: int


def write_report(location: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], target: str | os.PathLike[str],
                 *, since: datetime | None = None,
                 until: datetime | None = None, devices: Sequence[str] = (), statuses: Sequence[str] = (),
                 job_types: Sequence[str] = (), top_jobs: int = 10, table_rows: int = TABLE_ROWS,
                 prices: str | os.PathLike[str] | None = None,
                 storage_options: dict[str, str] | None = None) -> ReportSummary:
    """Write the HTML report of the export at `location` to `target`, narrowed to a time range, devices, statuses
    and job types.

    `location` is a directory or an s3:// URL (read with `storage_options`), or a list of them read as one
    (oqtopus_data.connect); `since` and `until` bound `submitted_at`
    inclusively (naive times are UTC); `top_jobs` recent sampling jobs show their top outcomes; the job table lists
    the newest `table_rows` jobs; `prices` (a price table file) is handed to `connect` for the usage costs.
    Raises SelectionError when a device, status or job type is not in the export or nothing is selected,
    StoreError when `location` holds no export, ConfigError on a bad storage option, ValueError on a bad target.
    """
    target = Path(target)
    if not target.parent.is_dir():
        raise ValueError(f"cannot write the report to {target}: the directory {target.parent} does not exist")
    if target.is_dir():
        raise ValueError(f"cannot write the report to {target}: it is a directory; name a file such as report.html")
    if top_jobs < 0 or table_rows < 0:
        raise ValueError("top_jobs and table_rows must be 0 or more")
    scope = Scope(since and to_utc(since), until and to_utc(until), statuses=tuple(dict.fromkeys(statuses)),
                  job_types=tuple(dict.fromkeys(job_types)), devices=tuple(dict.fromkeys(devices)))
    if scope.since and scope.until and scope.since > scope.until:
        raise ValueError("since is after until")
    storages = [open_storage(where, **(storage_options or {}))
                for where in (location if isinstance(location, list | tuple) else [location])]
    con = _connect(storages if isinstance(location, list | tuple) else storages[0], prices)
    try:
        rendered = render(con, scope, ", ".join(s.uri() for s in storages), top_jobs=top_jobs,
                          table_rows=table_rows)
    finally:
        con.close()
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(rendered.text, encoding="utf-8")
    os.replace(tmp, target)
    return ReportSummary(path=target, charts=rendered.charts, jobs=rendered.jobs)


def _connect(storage: object, prices: str | os.PathLike[str] | None) -> duckdb.DuckDBPyConnection:
    return connect(storage, prices=prices)  # type: ignore[arg-type]


def render(con: duckdb.DuckDBPyConnection, scope: Scope, source: str, *, top_jobs: int = 10,
           table_rows: int = TABLE_ROWS) -> Rendered:
    """The report of the export behind `con` (a connection with the views, and any other views the sections
    read), for the jobs `scope` selects. Raises SelectionError when the selection has no job."""
    con.execute("SET enable_progress_bar = false")  # the report's queries must not draw on the terminal
    check_selection(con, scope)
    r = Context(con, scope, top_jobs=top_jobs, table_rows=table_rows)
    if not r.jobs:
        narrowed = scope.described()
        raise SelectionError(f"no jobs match this selection ({'; '.join(narrowed)}): nothing to report" if narrowed
                             else "this export holds no jobs: nothing to report")
    sections = [build(r) for build in SECTIONS]
    return Rendered(_page(source, scope, r, sections), sum(s.charts for s in sections), r.jobs)


def check_selection(con: duckdb.DuckDBPyConnection, scope: Scope) -> None:
    """Raise SelectionError naming each device, status or job type of `scope` the export has no job with, and
    the value it most likely meant ("did you mean Kawasaki?")."""
    problems = []
    for values, column, what in ((scope.devices, "device_id", "device"), (scope.statuses, "status", "status"),
                                 (scope.job_types, "job_type", "job type")):
        if not values:
            continue
        known = [v for (v,) in con.execute(f"SELECT DISTINCT {column} FROM jobs WHERE {column} IS NOT NULL "
                                           "ORDER BY 1").fetchall()]
        for value in values:
            if value not in known:
                problems.append(f"no job in this export has {what} {value!r}; " + _suggest(value, known, what))
    if problems:
        raise SelectionError("; ".join(problems))


def _suggest(value: str, known: list[str], what: str) -> str:
    """The value meant (same letters in another case; for devices, a close spelling), else the values there are.
    Statuses and job types are not guessed at: `cancelling` is not a misspelt `cancelled`."""
    same = [k for k in known if k.lower() == value.lower()]
    close = same or (difflib.get_close_matches(value.lower(), [k.lower() for k in known], n=1, cutoff=0.6)
                     if what == "device" else [])
    if close:
        guess = same[0] if same else next(k for k in known if k.lower() == close[0])
        return f"did you mean {guess}?"
    plural = "statuses" if what == "status" else f"{what}s"
    shown = ", ".join(known[:12]) + (f" and {len(known) - 12} more" if len(known) > 12 else "")
    return f"its {plural} are: {shown}" if known else "it has no jobs"


def _page(where: str, scope: Scope, r: Context, sections: list[Section]) -> str:
    narrowed = scope.described()
    span = f"Jobs submitted {day(r.first)} to {day(r.last)} (UTC)" if r.first else "No jobs"
    lines = [span + ("; narrowed to " + "; ".join(narrowed) if narrowed else "") + ".",
             f"Export {where}; report written {minute(datetime.now(UTC))} by oqtopus-data {__version__}."]
    return page(f"OQTOPUS job history: {where.rstrip('/').rsplit('/', 1)[-1]}", "OQTOPUS job history", lines,
                [(s.key, s.title, "".join(s.body)) for s in sections])
