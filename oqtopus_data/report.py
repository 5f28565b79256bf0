"""`oqtopus-data report`: one self-contained HTML file (inline SVG charts, no network) summarising an export.

Every section is one DuckDB query that aggregates (GROUP BY, quantiles, window functions) down to a few hundred
rows at most; Python only draws those rows, so a million-job export takes seconds. Every string that comes from the
data is escaped on its way into the HTML.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from . import __version__
from . import report_charts as charts
from .report_charts import day, esc, minute, page, seconds_cell, table
from .storage import open_storage
from .views import connect

MAX_DEVICES = 8  # devices drawn one by one; the rest are summed as "other devices"
TOP_BITSTRINGS = 8  # outcomes listed per recent sampling job
DRIFT_MIN_RUNS = 5  # runs a (circuit, device) needs to get a drift line
DRIFT_SERIES = 8
DRIFT_SAMPLE = 25  # newest runs that decide a circuit's usual outcome
TRACE_SERIES = 6  # estimation series drawn
TRACE_RUNS = 4  # optimisation runs drawn per stepped series (the newest)
TRACE_POINTS = 200  # points drawn per time series (the newest)
OTHER = "other devices"


@dataclass(frozen=True)
class ReportSummary:
    """What `write_report` produced: the file, how many charts it drew and how many jobs it covers."""

    path: Path
    charts: int
    jobs: int


@dataclass(frozen=True)
class Scope:
    """The report's narrowing (submission time, inclusive at both ends, and devices) as SQL with parameters."""

    since: datetime | None = None
    until: datetime | None = None
    devices: tuple[str, ...] = ()

    def where(self, alias: str = "") -> str:
        """A condition on `submitted_at` and `device_id` of the relation named `alias` ("" or "j.")."""
        terms = ["TRUE"]
        if self.since is not None:
            terms.append(f"{alias}submitted_at >= $since")
        if self.until is not None:
            terms.append(f"{alias}submitted_at <= $until")
        if self.devices:
            terms.append(f"list_contains($devices, {alias}device_id)")
        return " AND ".join(terms)

    @property
    def params(self) -> dict[str, Any]:
        """The named parameters `where()` refers to."""
        out: dict[str, Any] = {}
        if self.since is not None:
            out["since"] = self.since
        if self.until is not None:
            out["until"] = self.until
        if self.devices:
            out["devices"] = list(self.devices)
        return out


@dataclass
class Section:
    """One titled part of the page: an explanation, then charts and tables, or a sentence saying there is no data."""

    key: str
    title: str
    body: list[str] = field(default_factory=list)
    charts: int = 0

    def chart(self, svg: str, caption: str) -> None:
        """Add a chart (inline SVG) with its caption."""
        self.body.append(f'<figure>{svg}<figcaption>{esc(caption)}</figcaption></figure>')
        self.charts += 1

    def empty(self, sentence: str) -> Section:
        """Say in a sentence that the section has no data."""
        self.body.append(f'<p class="empty">{esc(sentence)}</p>')
        return self


def write_report(location: str | os.PathLike[str], target: str | os.PathLike[str], *, since: datetime | None = None,
                 until: datetime | None = None, devices: Sequence[str] = (), top_jobs: int = 10,
                 storage_options: dict[str, str] | None = None) -> ReportSummary:
    """Write the HTML report of the export at `location` to `target`, narrowed to a time range and devices.

    `location` is a directory or an s3:// URL (read with `storage_options`); `since` and `until` bound `submitted_at`
    inclusively (naive times are UTC); `top_jobs` is how many recent sampling jobs show their top outcomes. Raises
    StoreError when `location` holds no export, ConfigError on a bad storage option, ValueError on a bad target.
    """
    target = Path(target)
    if not target.parent.is_dir():
        raise ValueError(f"cannot write the report to {target}: the directory {target.parent} does not exist")
    if target.is_dir():
        raise ValueError(f"cannot write the report to {target}: it is a directory; name a file such as report.html")
    if top_jobs < 0:
        raise ValueError("top_jobs must be 0 or more")
    scope = Scope(_utc(since), _utc(until), tuple(dict.fromkeys(devices)))
    if scope.since and scope.until and scope.since > scope.until:
        raise ValueError("since is after until")
    storage = open_storage(location, **(storage_options or {}))
    con = connect(storage)
    try:
        con.execute("SET enable_progress_bar = false")  # the report's queries must not draw on the terminal
        report = _Report(con, scope, top_jobs)
        sections = [build(report) for build in _SECTIONS]
        text = _page(storage.uri(), scope, report, sections)
    finally:
        con.close()
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, target)
    return ReportSummary(path=target, charts=sum(s.charts for s in sections), jobs=report.jobs)


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class _Report:
    """The connection, the scope and what several sections share: totals, device order and colours."""

    def __init__(self, con: duckdb.DuckDBPyConnection, scope: Scope, top_jobs: int) -> None:
        self.con, self.scope, self.top_jobs = con, scope, top_jobs
        self.by_device = self.rows(f"""
            SELECT device_id, count(*) AS jobs,
                   count(*) FILTER (status = 'succeeded'), count(*) FILTER (status = 'failed'),
                   count(*) FILTER (status = 'cancelled'), sum(shots), sum(execution_time),
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
        return self.con.execute(sql, {**self.scope.params, **params}).fetchall()

    def group(self, device: str) -> str:
        return device if device in self.colors else OTHER


def _overview(r: _Report) -> Section:
    section = Section("overview", "Overview")
    if not r.jobs:
        return section.empty("No jobs in this selection.")
    (errors,) = r.con.execute("SELECT count(*) FROM errors").fetchone()
    kinds = r.rows(f"SELECT job_type, count(*) FROM jobs WHERE {r.scope.where()} GROUP BY 1 ORDER BY 2 DESC, 1")
    shots = sum(row[5] or 0 for row in r.by_device)
    seconds = sum(row[6] for row in r.by_device if row[6] is not None) if any(row[6] for row in r.by_device) else None
    done = [sum(row[2:5]) for row in r.by_device]
    ok = sum(row[2] for row in r.by_device)
    tiles = [("jobs", f"{r.jobs:,}"), ("devices", f"{len(r.devices)}"), ("shots requested", charts.format_count(shots)),
             ("execution time", charts.format_duration(seconds)),
             ("succeeded", f"{100 * ok / sum(done):.1f}% of finished" if sum(done) else "-")]
    section.body.append('<div class="tiles">' + "".join(
        f'<div class="tile"><b>{esc(v)}</b><span>{esc(k)}</span></div>' for k, v in tiles) + "</div>")
    section.body.append("<p>By job type: " + ", ".join(f"{esc(k)} {n:,}" for k, n in kinds) + ".</p>")
    head = ["device", "jobs", "succeeded", "failed", "cancelled", "unfinished", "shots", "execution time",
            "first job", "last job"]
    body = [[d, f"{n:,}", f"{s:,}", f"{f:,}", f"{c:,}", f"{n - s - f - c:,}", charts.format_count(sh),
             charts.format_duration(ex), day(a), day(b)] for d, n, s, f, c, sh, ex, a, b in r.by_device]
    section.body.append(table(head, body, numeric_from=1))
    if errors:
        section.body.append(f'<p class="note">{errors:,} job(s) of this export could not be exported; see the '
                            "<code>errors</code> view.</p>")
    return section


def _jobs_per_week(r: _Report) -> Section:
    section = Section("jobs-per-week", "Jobs per week")
    rows = r.rows(f"""
        SELECT date_trunc('week', submitted_at) AS week, device_id,
               CASE WHEN status IN ('succeeded', 'failed', 'cancelled') THEN status ELSE 'in progress' END,
               count(*)
        FROM jobs WHERE {r.scope.where()} AND submitted_at IS NOT NULL GROUP BY ALL ORDER BY week""")
    if not rows:
        return section.empty("No submitted jobs in this selection.")
    rows = [(week, r.group(dev), state, n) for week, dev, state, n in rows]
    section.chart(charts.jobs_per_week(rows, r.shown),
                  "Jobs submitted per week (weeks start on Monday, UTC), stacked by their status at export time.")
    return section


def _timings(r: _Report) -> Section:
    section = Section("timings", "Queue and run times")
    quantiles = "[0.05, 0.25, 0.5, 0.75, 0.95]"
    rows = r.rows(f"""
        SELECT device_id, count(queue_seconds), quantile_cont(queue_seconds, {quantiles}),
               count(run_seconds), quantile_cont(run_seconds, {quantiles})
        FROM job_timings WHERE {r.scope.where()} GROUP BY device_id HAVING count(queue_seconds) > 0
        ORDER BY count(*) DESC, device_id""")
    if not rows:
        return section.empty("No job in this selection has started running, so there are no queue or run times.")
    # Boxes for the devices that have their own colour, in the same (busiest first) order as every other chart.
    drawn = sorted((row for row in rows if row[0] in r.colors), key=lambda row: r.shown.index(row[0]))
    stats = [{"device": dev, "kind": kind, "n": n, "q": q} for dev, nq, qq, nr, qr in drawn
             for kind, n, q in (("queue", nq, qq), ("run", nr, qr)) if n]
    section.chart(charts.timing_boxes(stats, r.colors),
                  "Boxes span the 25th to 75th percentile, whiskers the 5th to 95th; the labelled line is the median.")
    head = ["device", "jobs started", "median queue", "95th pct queue", "jobs ended", "median run", "95th pct run"]
    body = [[dev, f"{nq:,}", seconds_cell(qq[2]), seconds_cell(qq[4]), f"{nr:,}",
             seconds_cell(qr[2] if qr else None), seconds_cell(qr[4] if qr else None)] for dev, nq, qq, nr, qr in rows]
    section.body.append(table(head, body, numeric_from=1, css="timings"))
    return section


def _status_rates(r: _Report) -> Section:
    section = Section("status-rates", "Success, failure and cancel rates")
    rows = r.rows(f"""
        SELECT submitted_month, device_id, count(*) FILTER (status = 'succeeded'),
               count(*) FILTER (status = 'failed'), count(*) FILTER (status = 'cancelled')
        FROM jobs WHERE {r.scope.where()} AND status IN ('succeeded', 'failed', 'cancelled')
        GROUP BY ALL ORDER BY 1""")
    if not rows:
        return section.empty("No finished (succeeded, failed or cancelled) jobs in this selection.")
    merged: dict[tuple[str, str], list[int]] = {}
    for month, dev, *counts in rows:
        total = merged.setdefault((month, r.group(dev)), [0, 0, 0])
        total[:] = [a + b for a, b in zip(total, counts, strict=True)]
    section.chart(charts.status_rates([(m, d, *c) for (m, d), c in merged.items()], r.shown, r.colors),
                  "Share of each month's finished jobs per device (by submission month, UTC).")
    return section


def _usage(r: _Report) -> Section:
    section = Section("usage", "Shots and execution time per month")
    rows = r.rows(f"""
        SELECT submitted_month, device_id, sum(shots), sum(execution_time)
        FROM jobs WHERE {r.scope.where()} GROUP BY ALL ORDER BY 1""")
    if not rows:
        return section.empty("No jobs in this selection.")
    rows = [(m, r.group(dev), shots or 0, seconds or 0) for m, dev, shots, seconds in rows]
    section.chart(charts.usage(rows, r.shown, r.colors),
                  "Shots requested by all jobs and execution time reported by the API, per submission month.")
    return section


def _top_bitstrings(r: _Report) -> Section:
    section = Section("top-bitstrings", "Top outcomes of recent sampling jobs")
    if not r.top_jobs:
        return section.empty("Not asked for (top jobs = 0).")
    rows = r.rows(f"""
        WITH recent AS (
            SELECT job_id, name, device_id, submitted_at, shots, total_count, n_outcomes, submitted_month
            FROM jobs WHERE {r.scope.where()} AND job_type IN ('sampling', 'multi_manual') AND total_count > 0
            ORDER BY submitted_at DESC, job_id LIMIT $top),
        ranked AS (
            SELECT c.job_id, c.bitstring, c.count,
                   row_number() OVER (PARTITION BY c.job_id ORDER BY c.count DESC, c.bitstring) AS rank
            FROM counts AS c SEMI JOIN recent AS r ON c.job_id = r.job_id AND c.submitted_month = r.submitted_month)
        SELECT r.job_id, r.name, r.device_id, r.submitted_at, r.shots, r.n_outcomes, k.bitstring,
               k.count / r.total_count
        FROM recent AS r JOIN ranked AS k USING (job_id) WHERE k.rank <= $k
        ORDER BY r.submitted_at DESC, r.job_id, k.rank""", top=r.top_jobs, k=TOP_BITSTRINGS)
    if not rows:
        return section.empty("No sampling job with counts in this selection.")
    section.body.append(f"<p>The {TOP_BITSTRINGS} most frequent outcomes of the {r.top_jobs} most recent sampling and "
                        "multi_manual jobs (newest first); the bar is the share of all counted shots.</p>")
    cards: dict[str, list[tuple[Any, ...]]] = {}
    for row in rows:
        cards.setdefault(row[0], []).append(row)
    out = ['<div class="cards">']
    for job_id, outcomes in cards.items():
        _, name, device, submitted, shots, n_outcomes = outcomes[0][:6]
        out.append(f'<div class="card"><h3>{esc(name)}</h3><p class="meta">{esc(device)} · '
                   f'{esc(minute(submitted))} · {shots:,} shots · {n_outcomes:,} outcomes<br>'
                   f'<code>{esc(job_id)}</code></p><table class="bits">')
        for *_, bits, p in outcomes:
            out.append(f'<tr><td class="bitstring">{esc(bits)}</td><td class="barcell"><span class="bar" '
                       f'style="width:{100 * p:.1f}%"></span></td><td class="num">{100 * p:.1f}%</td></tr>')
        out.append("</table></div>")
    section.body.append("".join(out) + "</div>")
    return section


def _drift(r: _Report) -> Section:
    section = Section("drift", "Drift of repeated circuits")
    bucket = "day" if r.first is None or (r.last - r.first).days <= 400 else "week"
    rows = r.rows(f"""
        WITH runs AS (
            SELECT job_id, name, device_id, submitted_at, total_count, submitted_month
            FROM jobs WHERE {r.scope.where()} AND job_type = 'sampling' AND total_count > 0
                AND submitted_at IS NOT NULL),
        candidates AS (  -- more than needed: circuits of varying width are dropped below
            SELECT name, device_id, count(*) AS runs FROM runs GROUP BY ALL HAVING count(*) >= $min_runs
            ORDER BY runs DESC, name, device_id LIMIT 3 * $series),
        sample AS (  -- the usual outcome is found from the newest runs only: a few hundred jobs' counts
            SELECT r.job_id, r.submitted_month, r.name, r.device_id
            FROM runs AS r SEMI JOIN candidates USING (name, device_id)
            QUALIFY row_number() OVER (PARTITION BY name, device_id ORDER BY submitted_at DESC, job_id) <= $sample),
        tally AS (
            SELECT s.name, s.device_id, c.bitstring, any_value(c.n_bits) AS n_bits, sum(c.count) AS n
            FROM counts AS c JOIN sample AS s ON c.job_id = s.job_id AND c.submitted_month = s.submitted_month
            GROUP BY ALL),
        chosen AS (
            SELECT t.name, t.device_id, arg_max(t.bitstring, t.n) AS bitstring, any_value(k.runs) AS runs
            FROM tally AS t JOIN candidates AS k USING (name, device_id)
            GROUP BY ALL HAVING count(DISTINCT t.n_bits) = 1 ORDER BY runs DESC, name, device_id LIMIT $series),
        picked AS (SELECT r.*, s.bitstring, s.runs FROM runs AS r JOIN chosen AS s USING (name, device_id)),
        hits AS (
            SELECT c.job_id, c.count FROM counts AS c
            JOIN picked AS p ON c.job_id = p.job_id AND c.submitted_month = p.submitted_month
                AND c.bitstring = p.bitstring),
        probs AS (
            SELECT p.name, p.device_id, p.bitstring, p.runs, p.submitted_at,
                   coalesce(h.count, 0) / p.total_count AS probability
            FROM picked AS p LEFT JOIN hits AS h USING (job_id))
        SELECT name, device_id, bitstring, runs, date_trunc('{bucket}', submitted_at) AS t, avg(probability), count(*)
        FROM probs GROUP BY ALL ORDER BY runs DESC, name, device_id, t""", min_runs=DRIFT_MIN_RUNS,
                  series=DRIFT_SERIES, sample=DRIFT_SAMPLE)
    if not rows:
        return section.empty(f"No sampling circuit ran at least {DRIFT_MIN_RUNS} times on one device with a fixed "
                             "number of measured bits in this selection.")
    series: dict[tuple[str, str], dict[str, Any]] = {}
    for name, device, bits, runs, t, p, n in rows:
        label = f"{charts.clip(name, 40)} on {charts.clip(device, 20)}: P({charts.short_bits(bits)}), {runs} runs"
        series.setdefault((name, device), {"label": label, "points": []})["points"].append((t, p, n))
    section.chart(charts.drift(list(series.values())),
                  f"For each circuit name and device with at least {DRIFT_MIN_RUNS} runs: the probability of its usual "
                  f"outcome (the most frequent over its {DRIFT_SAMPLE} newest runs), averaged per {bucket} (UTC).")
    return section


def _estimation(r: _Report) -> Section:
    section = Section("estimation", "Estimation series")
    rows = r.rows(f"""
        WITH base AS (
            SELECT j.name, j.device_id, j.submitted_at, e.exp_value, e.stds,
                   regexp_extract(j.name, '^(.*?)[0-9]+$', 1) AS prefix,
                   TRY_CAST(regexp_extract(j.name, '([0-9]+)$', 1) AS BIGINT) AS step
            FROM estimations AS e JOIN jobs AS j USING (job_id)
            WHERE {r.scope.where("j.")} AND e.exp_value IS NOT NULL AND j.submitted_at IS NOT NULL),
        keyed AS (SELECT *, CASE WHEN prefix = '' THEN name ELSE prefix END AS series FROM base),
        top AS (
            SELECT series, count(*) AS n, count(DISTINCT step) >= 3 AS stepped, min(name) AS first_name,
                   count(DISTINCT name) AS names
            FROM keyed GROUP BY series HAVING count(*) >= 2 ORDER BY n DESC, series LIMIT $series),
        ordered AS (
            SELECT k.*, t.n, t.stepped, t.first_name, t.names,
                   lag(k.step) OVER (PARTITION BY k.series ORDER BY k.submitted_at, k.name) AS prev_step,
                   row_number() OVER (PARTITION BY k.series ORDER BY k.submitted_at DESC, k.name DESC) AS newest
            FROM keyed AS k JOIN top AS t USING (series)),
        runs AS (  -- a stepped series starts a new optimisation run whenever its step goes back
            SELECT *, sum(CASE WHEN step <= prev_step THEN 1 ELSE 0 END) OVER (
                       PARTITION BY series ORDER BY submitted_at, name ROWS UNBOUNDED PRECEDING) AS run
            FROM ordered),
        marked AS (SELECT *, max(run) OVER (PARTITION BY series) AS last_run FROM runs)
        SELECT series, n, stepped, first_name, names, run, device_id, submitted_at, step, exp_value, stds
        FROM marked
        WHERE newest <= $points * $runs AND (CASE WHEN stepped THEN run > last_run - $runs ELSE newest <= $points END)
        ORDER BY n DESC, series, submitted_at, name""", series=TRACE_SERIES, runs=TRACE_RUNS, points=TRACE_POINTS)
    if not rows:
        return section.empty("No estimation job series (at least two jobs with an exp_value) in this selection.")
    series: dict[str, dict[str, Any]] = {}
    for key, n, stepped, first_name, names, run, device, t, step, value, stds in rows:
        s = series.setdefault(key, {"label": f"{first_name if names == 1 else key + '*'} ({n:,} jobs)",
                                    "stepped": stepped, "runs": {}})
        if stepped:
            s["runs"].setdefault(run, (f"run from {minute(t)}", []))[1].append((step, value, stds))
        else:
            s["runs"].setdefault(device, (device, []))[1].append((t, value, stds))
    for s in series.values():
        s["runs"] = list(s["runs"].values())
    section.chart(charts.estimation_traces(list(series.values()), r.colors),
                  "exp_value ± stds. Jobs are grouped by name without its trailing number (vqe-h2-step-017 → "
                  f"vqe-h2-step-*). Numbered series are drawn by step, their {TRACE_RUNS} newest runs (a run restarts "
                  f"when the step goes back); other series by time and device, their {TRACE_POINTS} newest jobs.")
    return section


_SECTIONS: list[Callable[[_Report], Section]] = [_overview, _jobs_per_week, _timings, _status_rates, _usage,
                                                 _top_bitstrings, _drift, _estimation]


def _page(where: str, scope: Scope, r: _Report, sections: list[Section]) -> str:
    narrowed = []
    if scope.since:
        narrowed.append(f"submitted at or after {minute(scope.since)}")
    if scope.until:
        narrowed.append(f"submitted at or before {minute(scope.until)}")
    if scope.devices:
        narrowed.append("devices " + ", ".join(scope.devices))
    span = f"Jobs submitted {day(r.first)} to {day(r.last)} (UTC)" if r.first else "No jobs"
    lines = [span + ("; narrowed to " + "; ".join(narrowed) if narrowed else "") + ".",
             f"Export {where}; report written {minute(datetime.now(UTC))} by oqtopus-data {__version__}."]
    return page(f"OQTOPUS job history: {where.rstrip('/').rsplit('/', 1)[-1]}", "OQTOPUS job history", lines,
                [(s.key, s.title, "".join(s.body)) for s in sections])
