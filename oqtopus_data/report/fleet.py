"""Sections on the devices and what was used: device snapshots and calibration history, usage per month.

They read the calibration views (`device_calibrations`, `job_calibration`) and the usage view (`usage_monthly`)
when the export's connection has them, by the columns those views promise and no others; without calibration
data the section says so, and without the usage view usage is computed from `jobs`.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from oqtopus_data.report import charts, relations
from oqtopus_data.report.charts import Point, Series
from oqtopus_data.report.context import Context, Section
from oqtopus_data.report.formats import day, esc, format_count, format_duration, legend, minute, number, table
from oqtopus_data.report.svg import duration_label, epoch

CALIBRATION = ("device_id", "calibrated_at", "n_qubits", "median_t1", "median_t2", "median_fidelity_1q",
               "median_fidelity_2q", "median_readout_error")
USAGE = ("month", "device_id", "job_type", "jobs", "shots", "execution_seconds", "wasted_jobs", "wasted_seconds")
NO_CALIBRATION = ("No calibration data in this export (run oqtopus-export --devices-only regularly to collect "
                  "it).")
#: How a calibration history starts (README's cron line): OQTOPUS shows only a device's current calibration.
HISTORY_HOW = ("OQTOPUS shows only a device's current calibration, so the history starts with this export: a device "
               "snapshot every 15 minutes between exports builds it, e.g. from cron: "
               "<code class=\"cmd\">*/15 * * * * oqtopus-export --devices-only --quiet OUT_DIR</code>.")
METRICS = (("median_t1", "median T1 (µs)"), ("median_t2", "median T2 (µs)"),
           ("median_fidelity_1q", "median 1-qubit fidelity"), ("median_fidelity_2q", "median 2-qubit fidelity"),
           ("median_readout_error", "median readout error"))


def devices(r: Context) -> Section:
    section = Section("devices", "Devices and calibration")
    wanted = list(r.scope.devices) or None
    snapshots = r.rows("""
        SELECT device_id, device_type, status, n_qubits, calibrated_at, snapshot_at FROM devices
        WHERE $wanted IS NULL OR list_contains($wanted, device_id)
        QUALIFY row_number() OVER (PARTITION BY device_id ORDER BY snapshot_at DESC) = 1
        ORDER BY device_id""", wanted=wanted)
    known = {row[0] for row in snapshots}
    snapshots += [(d, None, None, None, None, None) for d in r.devices if d not in known]
    if not snapshots:
        return section.empty("No device in this selection.")
    order = {d: i for i, d in enumerate(r.devices)}
    snapshots.sort(key=lambda row: (order.get(row[0], len(order)), row[0]))
    section.text(table(["device", "type", "status", "qubits", "calibrated at", "last snapshot"],
                       [[d, t or "-", s or "-", "-" if q is None else f"{q:,}", minute(c), minute(at)]
                        for d, t, s, q, c, at in snapshots], css="devices"))
    history = r.rows(f"""
        SELECT {', '.join(CALIBRATION)} FROM device_calibrations
        WHERE ($wanted IS NULL OR list_contains($wanted, device_id)) AND calibrated_at IS NOT NULL
        ORDER BY device_id, calibrated_at""", wanted=wanted)
    if not history:
        return section.empty(NO_CALIBRATION)
    history = [(*row[:3], *(None if v is None else float(v) for v in row[3:])) for row in history]  # DECIMAL too
    latest = {row[0]: row for row in history}  # ordered by time: the last row per device wins
    section.text(table(["device", "calibrated at", "qubits", "median T1 (µs)", "median T2 (µs)", "1q fidelity",
                        "2q fidelity", "readout error", "calibrations"],
                       [[d, minute(at), "-" if n is None else f"{n:,}", number(t1), number(t2), number(f1, 4),
                         number(f2, 4), number(ro, 3), f"{sum(h[0] == d for h in history):,}"]
                        for d, at, n, t1, t2, f1, f2, ro in latest.values()], numeric_from=2, css="calibration"))
    _known_calibration(r, section)
    since, until = r.scope.since, r.scope.until
    shown = [row for row in history if (since is None or row[1] >= since) and (until is None or row[1] <= until)]
    counts = {d: sum(row[0] == d for row in shown) for d in latest}
    single = [d for d in latest if counts[d] < 2]
    latest = {d: row for d, row in latest.items() if counts[d] >= 2}  # a history needs two calibrations
    if not latest:
        section.text(f'<p class="note">The table above is the current calibration of each device: one per device '
                     f"so far, so there is no history to draw yet. {HISTORY_HOW}</p>")
        return section
    if single:
        section.text(f'<p class="note">{esc(", ".join(single))}: one calibration so far (in the table above), not '
                     f"drawn. {HISTORY_HOW}</p>")
    colors = {d: r.colors.get(d) or charts.PALETTE[(len(r.colors) + i) % len(charts.PALETTE)]
              for i, d in enumerate(latest)}
    panels = []
    for k, (_column, label) in enumerate(METRICS, start=3):
        series = [Series(d, colors[d], line=True, points=[
            Point(epoch(row[1]), row[k], title=f"{d}, calibrated {minute(row[1])}: {label} {number(row[k], 4)}")
            for row in shown if row[0] == d and row[k] is not None]) for d in latest]
        series = [s for s in series if s.points]
        if series:
            panels.append(charts.series_panel(label, series, y_format=None))
    if panels:
        section.panels(panels, "Each device's calibrations over time (T1 and T2 in µs, fidelities and errors as "
                               "shares of 1). Hover a point for its calibration.",
                       legend([(d, colors[d]) for d in latest]))
    return section


def _known_calibration(r: Context, section: Section) -> None:
    """How many selected jobs ran under a known calibration (the `job_calibration` view)."""
    (known, total) = r.rows(f"""
        SELECT count(c.calibrated_at), count(*) FROM jobs AS j LEFT JOIN job_calibration AS c USING (job_id)
        WHERE {r.scope.where("j.")}""")[0]
    if known:
        section.text(f'<p class="note">{known:,} of the {total:,} selected jobs ran under a known calibration '
                     "(the <code>job_calibration</code> view joins each job to it).</p>")
        return
    section.text(f'<p class="note">None of the {total:,} selected jobs ran under a recorded calibration yet: the '
                 "<code>job_calibration</code> view joins a job to the newest calibration recorded at or before it "
                 "ran, and this export recorded its first calibrations after them. Jobs that run from now on, with "
                 "snapshots between exports, are joined.</p>")


def usage(r: Context) -> Section:
    section = Section("usage", "Usage")
    priced = relations.exists(r.con, "usage_monthly", ("cost", "currency"))  # connect() was given prices
    rows = _view_usage(r, priced)
    if not rows:
        return section.empty("No jobs in this selection.")
    months = sorted({row["month"] for row in rows})
    devices = [d for d in r.shown if any(r.group(row["device_id"]) == d for row in rows)]
    stacks = []
    for what, fmt in (("shots", format_count), ("execution_seconds", format_duration)):
        layers = []
        for device in devices:
            values = [sum(row[what] or 0 for row in rows if row["month"] == m and r.group(row["device_id"]) == device)
                      for m in months]
            layers.append((device, r.colors[device], values,
                           [f"{device}, {m}: {fmt(v)}" for m, v in zip(months, values, strict=True)]))
        stacks.append(layers)
    section.chart(charts.stacked_bars([("Shots requested", "per month"), ("Execution time", "per month")], months,
                                      stacks, formats=(format_count, duration_label), durations=(False, True)),
                  "Stacked by device; hover a bar for its numbers. Execution time is what the API reports. When one "
                  f"month is more than {charts.CLIP_RATIO} times the next tallest (a single huge job), the axis is "
                  "linear but clipped just above that next month: the taller bar is broken by a white band and its "
                  "total written over it, so the other months stay readable.",
                  legend([(d, r.colors[d]) for d in devices]))
    head = ["jobs", "shots", "execution time", "wasted jobs", "wasted time"] + (["cost"] if priced else [])
    by_month = _totals(rows, "month", priced)
    section.text(table(["month", *head], [[m, *cells] for m, cells in sorted(by_month.items())], numeric_from=1,
                       css="usage-months"))
    by_device = _totals(rows, "device_id", priced)
    section.text(table(["device", *head], [[d, *cells] for d, cells in by_device.items()], numeric_from=1,
                       css="usage-devices"))
    source = "the <code>usage_monthly</code> view (whole months; every status counted)"
    section.text(f'<p class="note">From {source}. Wasted = failed or cancelled jobs and their execution time.'
                 + ("" if priced else " Cost appears when a price table is given (<code>--prices</code>).") + "</p>")
    return section


def _month(value: Any) -> str:
    return value.strftime("%Y-%m") if isinstance(value, date | datetime) else str(value)


def _view_usage(r: Context, priced: bool) -> list[dict[str, Any]]:
    """usage_monthly rows in the selection's devices, job types and months (statuses cannot narrow it)."""
    extra = ", cost, currency" if priced else ""
    narrowing = {"devices": list(r.scope.devices) or None, "types": list(r.scope.job_types) or None}
    rows = r.con.execute(f"""
        SELECT {', '.join(USAGE)}{extra} FROM usage_monthly
        WHERE ($devices IS NULL OR list_contains($devices, device_id))
            AND ($types IS NULL OR list_contains($types, job_type))""", narrowing).fetchall()
    names = [*USAGE, *(("cost", "currency") if priced else ())]
    out = [dict(zip(names, row, strict=True)) for row in rows]
    for row in out:
        row["month"] = _month(row["month"])
    low = day(r.scope.since)[:7] if r.scope.since else None
    high = day(r.scope.until)[:7] if r.scope.until else None
    return [row for row in out if (low is None or row["month"] >= low) and (high is None or row["month"] <= high)]


def _totals(rows: list[dict[str, Any]], by: str, priced: bool) -> dict[str, list[str]]:
    sums: dict[str, dict[str, Any]] = {}
    for row in rows:
        s = sums.setdefault(row[by], {"jobs": 0, "shots": 0, "execution_seconds": 0.0, "wasted_jobs": 0,
                                      "wasted_seconds": 0.0, "cost": {}})
        for k in ("jobs", "shots", "execution_seconds", "wasted_jobs", "wasted_seconds"):
            s[k] += row[k] or 0
        if priced and row.get("cost") is not None:
            s["cost"][row["currency"] or ""] = s["cost"].get(row["currency"] or "", 0.0) + float(row["cost"])
    ordered = sorted(sums.items(), key=lambda kv: (-kv[1]["jobs"], kv[0])) if by != "month" else sums.items()
    return {key: [f"{s['jobs']:,}", f"{s['shots']:,}", format_duration(s["execution_seconds"]),
                  f"{s['wasted_jobs']:,}", format_duration(s["wasted_seconds"])]
            + ([" + ".join(f"{v:,.2f} {c}".strip() for c, v in sorted(s["cost"].items())) or "-"] if priced else [])
            for key, s in ordered}
