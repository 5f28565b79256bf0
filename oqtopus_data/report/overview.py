"""Sections on how the jobs went: overview, jobs per week, queue and run times, success rates.

Each section is one or two DuckDB queries that aggregate down to a few hundred rows; Python only draws them.
"""

from __future__ import annotations

from datetime import date, timedelta

from oqtopus_data.enums import JobStatus
from oqtopus_data.report import charts
from oqtopus_data.report.charts import STATE_COLORS, STATES, Point, Series
from oqtopus_data.report.context import Context, Section
from oqtopus_data.report.formats import (
    Html,
    day,
    esc,
    format_count,
    format_duration,
    legend,
    percent,
    seconds_cell,
    table,
)
from oqtopus_data.report.stats import BOX_QUANTILES, HIGH, HIGH_NAME, wilson_interval
from oqtopus_data.report.svg import duration_label

FINISHED = [JobStatus.SUCCEEDED.value, JobStatus.FAILED.value, JobStatus.CANCELLED.value]
MAX_WEEKS = 104  # beyond two years, jobs are counted per month rather than per week
RATE_MEANS = ("The success rate is succeeded / (succeeded + failed): a cancelled job is the user's choice, not a "
              "device's failure, so it is counted beside the rate, not in it.")


def overview(r: Context) -> Section:
    section = Section("overview", "Overview")
    if not r.jobs:
        return section.empty("No jobs in this selection.")
    (errors,) = r.con.execute("SELECT count(*) FROM errors").fetchone()
    kinds = r.rows(f"SELECT job_type, count(*) FROM jobs WHERE {r.scope.where()} GROUP BY 1 ORDER BY 2 DESC, 1")
    shots = sum(row[5] or 0 for row in r.by_device)
    seconds = sum(row[6] for row in r.by_device if row[6] is not None) if any(row[6] for row in r.by_device) else None
    ok, failed, cancelled = (sum(row[k] for row in r.by_device) for k in (2, 3, 4))
    tiles = [("jobs", f"{r.jobs:,}"), ("devices", f"{len(r.devices)}"), ("shots requested", format_count(shots)),
             ("execution time", format_duration(seconds)),
             ("success rate", f"{percent(ok / (ok + failed))} of {ok + failed:,}" if ok + failed else "-"),
             ("cancelled", f"{cancelled:,}")]
    section.text('<div class="tiles">' + "".join(
        f'<div class="tile"><b>{esc(v)}</b><span>{esc(k)}</span></div>' for k, v in tiles) + "</div>")
    section.text("<p>By job type: " + ", ".join(f"{esc(k)} {n:,}" for k, n in kinds) + ". " + RATE_MEANS + "</p>")
    head = ["device", "jobs", "succeeded", "failed", "cancelled", "unfinished", "shots", "execution time",
            "first job", "last job"]
    body = [[d, f"{n:,}", f"{s:,}", f"{f:,}", f"{c:,}", f"{n - s - f - c:,}", format_count(sh),
             format_duration(ex), day(a), day(b)] for d, n, s, f, c, sh, ex, a, b in r.by_device]
    section.text(table(head, body, numeric_from=1, css="overview"))
    if errors:
        section.text(f'<p class="note">{errors:,} job(s) of this export could not be exported; see the '
                     "<code>errors</code> view.</p>")
    return section


def jobs_per_week(r: Context) -> Section:
    section = Section("jobs-per-week", "Jobs per week")
    if r.first is None:
        return section.empty("No submitted jobs in this selection.")
    weekly = (r.last - r.first).days <= 7 * MAX_WEEKS
    unit = "week" if weekly else "month"
    rows = r.rows(f"""
        SELECT date_trunc('{unit}', submitted_at)::DATE AS band, device_id,
               CASE WHEN list_contains($finished, status) THEN status ELSE 'in progress' END, count(*)
        FROM jobs WHERE {r.scope.where()} AND submitted_at IS NOT NULL GROUP BY ALL ORDER BY band""",
                  finished=FINISHED)
    bands = _bands(rows[0][0], rows[-1][0], weekly)
    fmt = "%Y-%m-%d" if weekly else "%Y-%m"
    merged: dict[tuple[str, str, str], int] = {}
    for band, dev, state, n in rows:
        key = (band.strftime(fmt), r.group(dev), state)
        merged[key] = merged.get(key, 0) + n
    section.title = "Jobs per week" if weekly else "Jobs per month"
    section.chart(charts.weekly_panels([(*k, n) for k, n in merged.items()], [b.strftime(fmt) for b in bands],
                                       r.shown),
                  f"Jobs submitted per {unit} ({'weeks start on Monday, ' if weekly else ''}UTC), one strip per "
                  "device, stacked by their status at export time. Hover a bar for its numbers.",
                  legend([(s, STATE_COLORS[s]) for s in STATES]))
    return section


def _bands(first: date, last: date, weekly: bool) -> list[date]:
    out = [first]
    while out[-1] < last:
        if weekly:
            out.append(out[-1] + timedelta(weeks=1))
        else:
            m = out[-1].year * 12 + out[-1].month  # the next month's first day
            out.append(date(m // 12, m % 12 + 1, 1))
    return out


def timings(r: Context) -> Section:
    section = Section("timings", "Queue and run times")
    quantiles = list(BOX_QUANTILES)
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
                  "All-time distributions: boxes span the 25th to 75th percentile, whiskers the 10th to 90th "
                  f"({HIGH_NAME}); the labelled line is the median. A log axis starts at 1 ms: 0 and negative "
                  "times (clock skew) are drawn there.")
    monthly = r.rows(f"""
        SELECT submitted_month, device_id, count(queue_seconds), median(queue_seconds),
               quantile_cont(queue_seconds, {HIGH})
        FROM job_timings WHERE {r.scope.where()} AND queue_seconds IS NOT NULL
        GROUP BY ALL ORDER BY 1, 2""")
    months = sorted({m for m, *_ in monthly})
    series = []
    for device in [d for d in r.shown if d in {row[1] for row in monthly}]:
        mine = [row for row in monthly if row[1] == device]
        for kind, k, dash in (("median", 3, ""), (HIGH_NAME, 4, "4 3")):
            series.append(Series(f"{device} {kind}", r.colors[device], line=True, dash=dash, hollow=bool(dash),
                                 points=[Point(months.index(m), v, None, f"{device}, {m}: {kind} queue time "
                                               f"{format_duration(v)} over {n:,} jobs")
                                         for m, _, n, *q in mine for v in [q[k - 3]]]))
    section.chart(charts.month_lines("Queue time per month", months, series, log_y=True, y_format=duration_label,
                                     y_name="queue time"),
                  "Queue time (submitted → running) per device and submission month: the median (filled points, "
                  f"solid line) and the 90th percentile, {HIGH_NAME} (hollow points, dashed). Only devices with their "
                  "own colour.",
                  legend([(d, r.colors[d]) for d in r.shown if d in {row[1] for row in monthly}]))
    head = ["device", "jobs started", "median queue", f"{HIGH_NAME} queue", "jobs ended", "median run",
            f"{HIGH_NAME} run"]
    body = [[dev, f"{nq:,}", seconds_cell(qq[2]), seconds_cell(qq[4]), f"{nr:,}",
             seconds_cell(qr[2] if qr else None), seconds_cell(qr[4] if qr else None)] for dev, nq, qq, nr, qr in rows]
    section.text(table(head, body, numeric_from=1, css="timings"))
    return section


def success_rates(r: Context) -> Section:
    section = Section("status-rates", "Success rates")
    rows = r.rows(f"""
        SELECT submitted_month, device_id, count(*) FILTER (status = '{JobStatus.SUCCEEDED}'),
               count(*) FILTER (status = '{JobStatus.FAILED}'), count(*) FILTER (status = '{JobStatus.CANCELLED}')
        FROM jobs WHERE {r.scope.where()} AND list_contains($finished, status)
        GROUP BY ALL ORDER BY 1, 2""", finished=FINISHED)
    if not rows:
        return section.empty("No finished (succeeded, failed or cancelled) jobs in this selection.")
    merged: dict[tuple[str, str], list[int]] = {}
    for month, dev, *counts in rows:
        total = merged.setdefault((month, r.group(dev)), [0, 0, 0])
        total[:] = [a + b for a, b in zip(total, counts, strict=True)]
    months = sorted({m for m, _ in merged})
    panels = []
    for device in [d for d in r.shown if any(k[1] == d for k in merged)]:
        points, labels = [], {}
        for i, month in enumerate(months):
            if (month, device) not in merged:
                continue
            ok, failed, cancelled = merged[month, device]
            labels[(device, i)] = format_count(ok + failed)
            if not ok + failed:
                continue  # only cancelled jobs: no rate
            low, high = wilson_interval(ok, ok + failed)
            points.append(Point(i, ok / (ok + failed), title=f"{device}, {month}: {ok:,} of {ok + failed:,} "
                                f"succeeded or failed jobs succeeded ({percent(ok / (ok + failed))}; 95% interval "
                                f"{percent(low)}–{percent(high)}); {cancelled:,} cancelled beside them",
                                low=low, high=high))
        panels.append(charts.month_lines(device, months, [Series(device, r.colors[device], points, line=True)],
                                         log_y=False, y_format=charts.percent_label, y_range=(0.0, 1.0),
                                         labels=labels, note="succeeded / (succeeded + failed)", width=charts.PANEL,
                                         height=220))
    section.panels(panels, "Success rate per device and submission month (UTC): succeeded / (succeeded + failed); "
                           "cancelled jobs are counted beside it, not in it (hover a point). The axis runs from 0 % "
                           "to 100 %; each whisker is the Wilson 95 % interval and the number under a point is how "
                           "many jobs succeeded or failed that month.")
    totals: dict[str, list[int]] = {}
    for _month, dev, *counts in rows:
        total = totals.setdefault(dev, [0, 0, 0])
        total[:] = [a + b for a, b in zip(total, counts, strict=True)]
    body = []
    for dev in sorted(totals, key=lambda d: (-sum(totals[d]), d)):
        ok, failed, cancelled = totals[dev]
        low, high = wilson_interval(ok, ok + failed)
        rate, interval = ((percent(ok / (ok + failed)), Html(f"{esc(percent(low))}–{esc(percent(high))}"))
                          if ok + failed else ("-", "-"))
        body.append([dev, f"{ok:,}", f"{failed:,}", f"{cancelled:,}", rate, interval])
    section.text(table(["device", "succeeded", "failed", "cancelled", "success rate", "95% interval"],
                       body, numeric_from=1, css="rates"))
    section.text(f'<p class="note">{RATE_MEANS}</p>')
    return section
